"""Two small ASGI middlewares: a request id on every response, and the request body size limit."""

from __future__ import annotations

import re
import uuid

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from perkflow import logs

from .problems import BodyTooLarge, problem_response, too_large

_GOOD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestId:
    """Take the caller's X-Request-Id when it is a plain token, else make one; answer with it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        rid = given if _GOOD_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        logs.request_id.set(rid)  # each request runs in its own context: nothing to reset

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", rid.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyLimit:
    """Refuse a body larger than `limit` bytes: at once when Content-Length says so, and by
    counting the bytes as they stream in otherwise (a chunked body, or a lying header)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _drain(receive, 16 * self.limit)
            response = problem_response(too_large(self.limit), Request(scope), {"Connection": "close"})
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


async def _drain(receive: Receive, most: int) -> None:
    """Read and drop an oversized body (up to `most` bytes), so that a client that sends the
    whole body before reading the answer still reads the 413 instead of a reset connection."""
    read = 0
    while read <= most:
        message = await receive()
        if message["type"] != "http.request":
            return
        read += len(message.get("body", b""))
        if not message.get("more_body", False):
            return
