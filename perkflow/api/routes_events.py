"""Events: post one, post a batch (bulk import), read a stored decision."""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import authorize
from .bodies import answer, json_body, query_flag, service


async def post_event(request: Request) -> Response:
    principal = await authorize(request, "events:write")
    raw = await json_body(request)
    post = service(request).events.post
    return await answer(
        request, partial(post, raw, dry_run=query_flag(request, "dry_run"), stores=principal.stores)
    )


async def post_batch(request: Request) -> Response:
    principal = await authorize(request, "events:write")
    raws = await json_body(request)
    post_batch = service(request).events.post_batch
    return await answer(
        request, partial(post_batch, raws, dry_run=query_flag(request, "dry_run"), stores=principal.stores)
    )


async def get_event(request: Request) -> Response:
    principal = await authorize(request, "events:read")
    get = service(request).events.get
    return await answer(request, partial(get, request.path_params["event_id"], stores=principal.stores))


routes = [
    Route("/events", post_event, methods=["POST"]),
    Route("/events:batch", post_batch, methods=["POST"]),
    Route("/events/{event_id:path}", get_event, methods=["GET"]),
]
