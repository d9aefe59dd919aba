"""Scheme versions: list, read (JSON or the YAML file), submit, approve, return, diff, roll back.

Four eyes: the API key that submits a version is its author, and only another principal with
`schemes:approve` can approve it (the service refuses the author with a 403).
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from perkflow.service.problems import FieldError, Problem

from .auth import authorize
from .bodies import answer, json_body, parse, service
from .idempotency import once
from .problems import ApiError, problem_response
from .schemas import CommentIn, VersionIn

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
NOT_UTF8 = Problem(
    400,
    "not_utf8",
    "Malformed body",
    "the YAML file is not UTF-8",
    (FieldError("", "not_utf8", "send UTF-8 text"),),
)
NO_QUERY = Problem(
    422,
    "missing_query",
    "The request is not valid",
    "pass ?from=<version>&to=<version>",
    (FieldError("", "missing_query", "pass ?from= and ?to="),),
)


async def _comment(request: Request) -> CommentIn:
    """An optional JSON body {comment}."""
    return parse(CommentIn, await json_body(request) if (await request.body()).strip() else {})


async def _submission(request: Request) -> VersionIn:
    """A version as YAML text (Content-Type: application/yaml), or as JSON {content, comment, effective_at}."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() not in YAML_TYPES:
        return parse(VersionIn, await json_body(request))
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(NOT_UTF8) from None
    return VersionIn(content=text, comment=request.query_params.get("comment", ""))


def _detail(found: Any) -> Any:
    return found if isinstance(found, Problem) else {**found[0].to_dict(), "content": json.loads(found[1])}


async def list_versions(request: Request) -> Response:
    await authorize(request, "schemes:read")
    versions = service(request).versions.list
    return await answer(
        request, lambda: {"items": [v.to_dict() for v in versions(status=request.query_params.get("status"))]}
    )


async def get_version(request: Request) -> Response:
    await authorize(request, "schemes:read")
    ref, versions = request.path_params["ref"], service(request).versions
    if request.query_params.get("format") != "yaml" and "yaml" not in request.headers.get("accept", ""):
        return await answer(request, lambda: _detail(versions.find(ref)))
    text = await run_in_threadpool(versions.yaml, ref)
    return (
        problem_response(text, request)
        if isinstance(text, Problem)
        else Response(text, media_type="application/yaml; charset=utf-8")
    )


async def diff_versions(request: Request) -> Response:
    await authorize(request, "schemes:read")
    old, new = request.query_params.get("from"), request.query_params.get("to")
    if not old or not new:
        raise ApiError(NO_QUERY)
    return await answer(request, partial(service(request).versions.compare, old, new))


async def post_version(request: Request) -> Response:
    principal = await authorize(request, "schemes:publish")
    body = await _submission(request)
    text = body.content if isinstance(body.content, str) else json.dumps(body.content)
    submit = partial(
        service(request).versions.submit,
        author=principal.name,
        comment=body.comment,
        effective_at=body.effective_at,
    )
    return await once(request, principal, partial(submit, text), status=201)


async def approve_version(request: Request) -> Response:
    principal = await authorize(request, "schemes:approve")
    approve = partial(service(request).versions.approve, approver=principal.name)
    return await once(request, principal, partial(approve, request.path_params["version_id"]))


async def return_version(request: Request) -> Response:
    principal = await authorize(request, "schemes:approve")
    body = await _comment(request)
    send_back = partial(service(request).versions.send_back, approver=principal.name, comment=body.comment)
    return await once(request, principal, partial(send_back, request.path_params["version_id"]))


async def rollback_version(request: Request) -> Response:
    principal = await authorize(request, "schemes:publish")
    body = await _comment(request)
    rollback = partial(service(request).versions.rollback, author=principal.name, comment=body.comment)
    return await once(request, principal, partial(rollback, request.path_params["number"]), status=201)


routes = [
    Route("/versions", list_versions, methods=["GET"]),
    Route("/versions", post_version, methods=["POST"]),
    Route("/versions/diff", diff_versions, methods=["GET"]),
    Route("/versions/{ref}", get_version, methods=["GET"]),
    Route("/versions/{version_id:id}/approve", approve_version, methods=["POST"]),
    Route("/versions/{version_id:id}/return", return_version, methods=["POST"]),
    Route("/versions/{number:id}/rollback", rollback_version, methods=["POST"]),
]
