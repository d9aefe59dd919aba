"""Coupon codes: generate a batch, import CSV, look one up, claim one for a member."""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from perkflow.service.codes import Caller
from perkflow.service.problems import Problem

from .auth import Principal, authorize
from .bodies import answer, json_body, parse, service
from .problems import ApiError
from .schemas import CodeBatchIn, CodeClaimIn, CodeImportIn


def _caller(request: Request, principal: Principal) -> Caller:
    return Caller(principal.name, request.client.host if request.client else "", principal.stores)


def _limited(result: object) -> object:
    """A rate-limited answer carries Retry-After."""
    if isinstance(result, Problem) and result.status == 429:
        raise ApiError(result, {"Retry-After": str(result.extra["retry_after"])})
    return result


async def generate_codes(request: Request) -> Response:
    principal = await authorize(request, "coupons:write")
    body = parse(CodeBatchIn, await json_body(request))
    generate = partial(service(request).codes.generate, body.policy, body.count, actor=principal.name)
    return await answer(request, generate, status=201)


async def import_codes(request: Request) -> Response:
    principal = await authorize(request, "coupons:write")
    body = parse(CodeImportIn, await json_body(request))
    return await answer(request, partial(service(request).codes.import_csv, body.policy, body.csv, actor=principal.name))


async def get_code(request: Request) -> Response:
    principal = await authorize(request, "coupons:write")
    lookup = partial(service(request).codes.lookup, request.path_params["code"], _caller(request, principal))
    return await answer(request, lambda: _limited(lookup()))


async def claim_code(request: Request) -> Response:
    principal = await authorize(request, "coupons:write")
    body = parse(CodeClaimIn, await json_body(request))
    claim = partial(service(request).codes.claim, request.path_params["code"], body.member_id, _caller(request, principal))
    return await answer(request, lambda: _limited(claim(store=body.store, channel=body.channel)))


routes = [
    Route("/coupon-codes", generate_codes, methods=["POST"]),
    Route("/coupon-codes:import", import_codes, methods=["POST"]),
    Route("/coupon-codes/{code}", get_code, methods=["GET"]),
    Route("/coupon-codes/{code}/claim", claim_code, methods=["POST"]),
]
