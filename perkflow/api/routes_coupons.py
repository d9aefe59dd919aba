"""Coupons and rewards: validate coupons before checkout, redeem or void one, redeem a reward."""

from __future__ import annotations

import uuid
from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import authorize
from .bodies import answer, json_body, parse, service
from .idempotency import once, request_key
from .schemas import CouponRedeemIn, CouponValidationIn, CouponVoidIn, RewardRedeemIn


async def validate_coupons(request: Request) -> Response:
    principal = await authorize(request, "coupons:write")
    body = parse(CouponValidationIn, await json_body(request))
    validate = partial(service(request).coupons.validate, at=body.at, stores=principal.stores)
    return await answer(request, partial(validate, body.member_id, body.order_amount, body.coupons))


async def redeem_coupon(request: Request) -> Response:
    principal = await authorize(request, "coupons:write")
    body = parse(CouponRedeemIn, await json_body(request))
    request_id = request_key(request) or uuid.uuid4().hex  # the key names the redemption event
    redeem = partial(service(request).coupons.redeem, request_id=request_id, stores=principal.stores)
    return await once(
        request, principal, partial(redeem, request.path_params["coupon_id"], **body.model_dump())
    )


async def void_coupon(request: Request) -> Response:
    principal = await authorize(request, "coupons:write")
    body = parse(CouponVoidIn, await json_body(request))
    void = partial(service(request).coupons.void, actor=principal.name, stores=principal.stores)
    return await once(request, principal, partial(void, request.path_params["coupon_id"], body.reason))


async def redeem_reward(request: Request) -> Response:
    principal = await authorize(request, "rewards:write")
    body = parse(RewardRedeemIn, await json_body(request))
    request_id = request_key(request) or uuid.uuid4().hex  # the key names the redemption event
    redeem = partial(service(request).rewards.redeem, request_id=request_id, stores=principal.stores)
    return await once(
        request, principal, partial(redeem, request.path_params["reward_id"], **body.model_dump())
    )


routes = [
    Route("/coupons/validate", validate_coupons, methods=["POST"]),
    Route("/coupons/{coupon_id:path}/redeem", redeem_coupon, methods=["POST"]),
    Route("/coupons/{coupon_id:path}/void", void_coupon, methods=["POST"]),
    Route("/rewards/{reward_id}/redeem", redeem_reward, methods=["POST"]),
]
