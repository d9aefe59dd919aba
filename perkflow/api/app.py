"""The rule API as a Starlette app: the routes under /api/v1, health at the root, and the lists of
middleware and exception handlers that make every answer carry a request id and every error a
problem+json."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from perkflow.service.core import Service
from perkflow.service.problems import Problem
from perkflow.settings import Settings

from . import (
    openapi,
    routes_codes,
    routes_coupons,
    routes_events,
    routes_holds,
    routes_members,
    routes_reports,
    routes_versions,
    routes_webhooks,
)
from .bodies import service
from .metrics import Metrics, RequestTimer, metrics_endpoint
from .middleware import BodyLimit, RequestId
from .problems import EXCEPTION_HANDLERS, problem_response
from .ratelimit import Limit, RateLimit


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    ready, detail = await run_in_threadpool(service(request).ready)
    if not ready:
        return problem_response(Problem(503, "not_ready", "Not ready", detail), request)
    return JSONResponse({"status": "ready"})


def create_api(svc: Service, settings: Settings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        svc.engine.dispose()

    api_routes = [
        *routes_events.routes,
        *routes_members.routes,
        *routes_holds.routes,
        *routes_coupons.routes,
        *routes_codes.routes,
        *routes_versions.routes,
        *routes_webhooks.routes,
        *routes_reports.routes,
        *openapi.routes,
    ]
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Mount("/api/v1", routes=api_routes),
    ]
    # Nothing is counted unless someone may read it: without a metrics token the event path
    # carries no instrumentation at all.
    metrics = Metrics(svc.engine) if settings.metrics_token else None
    timer: list[Middleware] = []
    if metrics is not None:
        svc.events.observers.append(metrics.event_result)
        timer = [Middleware(RequestTimer, metrics=metrics)]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestId),
            *timer,
            Middleware(
                RateLimit,
                per_key=Limit(settings.rate_per_key, settings.burst_per_key),
                per_address=Limit(settings.rate_per_address, settings.burst_per_address),
            ),
            Middleware(BodyLimit, limit=settings.max_body),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.service, app.state.settings, app.state.openapi, app.state.metrics = svc, settings, {}, metrics
    return app
