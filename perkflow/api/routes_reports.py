"""Reports: GET /api/v1/reports/{name} with the filters as query values, answered as JSON."""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import authorize
from .bodies import answer, service


async def get_report(request: Request) -> Response:
    principal = await authorize(request, "reports:read")
    query = {key: request.query_params.getlist(key) for key in request.query_params}
    run = partial(service(request).reports.run, request.path_params["name"], query, allowed=principal.stores)
    return await answer(request, run)


routes = [Route("/reports/{name}", get_report, methods=["GET"])]
