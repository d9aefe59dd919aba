"""Request rate limits under /api/v1: a token bucket per API key and one per client address.

A bucket holds up to `burst` tokens and gains `rate` tokens a second; each request takes one, and a
request that finds its bucket empty is answered 429 problem+json with Retry-After (whole seconds
until a token is back). A request with a bearer token is counted against that token's bucket and
its address's; one without, against its address's only. Tokens are kept as digests, never as
given. The buckets live in the process: with N workers, a client gets up to N times the rate
(docs/operations.md). Health, readiness and metrics are never limited, so probes always answer.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from perkflow.service.problems import Problem

from .problems import problem_response

SWEEP_EVERY = 4096  # new buckets between sweeps of the full ones, so idle clients do not pile up


@dataclass(frozen=True)
class Limit:
    rate: float  # tokens a second; 0 turns the limit off
    burst: int  # the bucket's size: requests allowed at once after a quiet spell


class Buckets:
    """Token buckets by key, refilled lazily from the clock when a key is seen."""

    def __init__(self, limit: Limit, clock: Callable[[], float]) -> None:
        self.limit, self.clock = limit, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)
        self._new = 0

    def take(self, key: str) -> float:
        """Take a token for `key`: 0.0 when there was one, else the seconds until there is."""
        now = self.clock()
        rate, burst = self.limit.rate, self.limit.burst
        tokens, then = self._buckets.get(key, (float(burst), now))
        if key not in self._buckets:
            self._new += 1
            if self._new >= SWEEP_EVERY:
                self._sweep(now)
        tokens = min(float(burst), tokens + (now - then) * rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / rate

    def _sweep(self, now: float) -> None:
        full = self.limit.burst / self.limit.rate
        self._buckets = {k: (n, t) for k, (n, t) in self._buckets.items() if now - t < full}
        self._new = 0

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimit:
    """The ASGI middleware: only paths under `prefix` are counted."""

    def __init__(
        self,
        app: ASGIApp,
        per_key: Limit,
        per_address: Limit,
        prefix: str = "/api/",
    ) -> None:
        self.app, self.prefix = app, prefix
        clock = monotonic  # looked up when the app starts, so a test can set the time
        self.keys = Buckets(per_key, clock) if per_key.rate > 0 else None
        self.addresses = Buckets(per_address, clock) if per_address.rate > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        wait, who, limit = 0.0, "", None
        if self.keys is not None and (token := _bearer(scope)):
            wait, who, limit = self.keys.take(hashlib.sha256(token).hexdigest()), "this API key", self.keys.limit
        if not wait and self.addresses is not None:
            client = scope.get("client")
            wait, who, limit = self.addresses.take(client[0] if client else ""), "this address", self.addresses.limit
        if wait and limit is not None:
            seconds = max(1, math.ceil(wait))
            problem = Problem(
                429,
                "rate_limited",
                "Too many requests",
                f"{who} may make {limit.rate:g} requests a second, in bursts of {limit.burst}: retry in {seconds} s",
                extra={"retry_after": seconds},
            )
            await problem_response(problem, Request(scope), {"Retry-After": str(seconds)})(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _bearer(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"authorization":
            kind, _, token = value.partition(b" ")
            return token.strip() if kind.lower() == b"bearer" else b""
    return b""
