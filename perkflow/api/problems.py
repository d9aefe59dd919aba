"""Every error the API answers is RFC 9457 `application/problem+json`, built from a service Problem.

Refusals found at the edge (authentication, a malformed or oversized body, a bad query) are raised
as `ApiError` so that endpoints stay a few lines; the exception handlers here turn them, and
Starlette's own 404 and 405, into problem+json. An unexpected exception is a bug: it is logged with
the request id and answered as a 500 problem that carries the same id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from perkflow.service.problems import FieldError, Problem

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("perkflow.api")


class ApiError(Exception):
    """A request refused before (or instead of) calling the service."""

    def __init__(self, problem: Problem, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(problem.detail)
        self.problem, self.headers = problem, dict(headers or {})


class BodyTooLarge(Exception):
    """Raised while a request body streams in past the limit (see middleware.py)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def problem_response(
    problem: Problem, request: Request | None = None, headers: Mapping[str, str] | None = None
) -> Response:
    body: dict[str, Any] = problem.to_dict()
    if request is not None:
        body["instance"] = request.url.path
        if rid := request_id(request):
            body.setdefault("request_id", rid)  # every error names the request, as the logs do
    return JSONResponse(
        body, status_code=problem.status, media_type=PROBLEM_JSON, headers=dict(headers or {})
    )


def too_large(limit: int) -> Problem:
    return Problem(
        413,
        "body_too_large",
        "Request body too large",
        f"the request body is larger than {limit} bytes",
        (FieldError("", "body_too_large", f"send at most {limit} bytes; split a batch into smaller ones"),),
    )


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return problem_response(exc.problem, request, exc.headers)


async def on_body_too_large(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLarge)
    return problem_response(too_large(exc.limit), request, {"Connection": "close"})


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    method, path = request.method, request.url.path
    if exc.status_code == 404:
        problem = Problem(
            404,
            "not_found",
            "Not found",
            f"no such resource: {method} {path} (the API reference is /api/v1/docs)",
        )
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        problem = Problem(
            405,
            "method_not_allowed",
            "Method not allowed",
            f"{method} is not allowed on {path} (allowed: {allowed})",
        )
    else:
        problem = Problem(exc.status_code, "http_error", str(exc.detail), str(exc.detail))
    return problem_response(problem, request, exc.headers)


async def on_server_error(request: Request, exc: Exception) -> Response:
    rid = request_id(request)
    log.error("unexpected error in %s %s (request %s)", request.method, request.url.path, rid, exc_info=exc)
    problem = Problem(
        500,
        "internal_error",
        "Internal error",
        f"an unexpected error occurred; it was logged with request id {rid}: please report it",
        extra={"request_id": rid},
    )
    return problem_response(problem, request, {"X-Request-Id": rid})


EXCEPTION_HANDLERS = {
    ApiError: on_api_error,
    BodyTooLarge: on_body_too_large,
    HTTPException: on_http_exception,
    500: on_server_error,
}
