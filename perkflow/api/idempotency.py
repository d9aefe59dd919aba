"""`Idempotency-Key` for the API's POSTs (perkflow/service/idempotency.py holds the rules).

`once(request, principal, call)` runs `call` (a service call) at most once per key: a repeat
replays the first answer with `Idempotent-Replayed: true`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from perkflow.service.access import Principal
from perkflow.service.idempotency import Replay, request_hash
from perkflow.service.problems import Problem

from .bodies import answer, outcome, reply, service
from .problems import ApiError


async def once(
    request: Request, principal: Principal, call: Callable[[], Any], status: int = 200
) -> Response:
    """`answer(request, call, status)`, at most once per Idempotency-Key of this principal."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return await answer(request, call, status)
    keys = service(request).idempotency
    digest = request_hash(request.method, request.url.path, await request.body())
    claimed = await run_in_threadpool(keys.claim, key, principal.name, digest)
    if isinstance(claimed, Problem):
        raise ApiError(claimed)
    if isinstance(claimed, Replay):
        return JSONResponse(claimed.body, status_code=claimed.status, headers={"Idempotent-Replayed": "true"})
    try:
        result = outcome(await run_in_threadpool(call), status)
    except BaseException:
        await run_in_threadpool(keys.release, key, principal.name)
        raise
    if isinstance(result, Problem):
        await run_in_threadpool(keys.release, key, principal.name)
    else:
        await run_in_threadpool(keys.finish, key, principal.name, *result)
    return reply(result, request)


def request_key(request: Request) -> str | None:
    """The Idempotency-Key, which also names what the request creates (an adjustment, a redemption)."""
    return request.headers.get("idempotency-key")
