"""Paying at the till: quote, hold, cancel (perkflow/service/holds.py). A purchase event that
names the hold in `attributes.hold` captures it."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from perkflow.service.problems import FieldError, invalid

from .auth import authorize
from .bodies import answer, json_body, parse, query_int, service
from .idempotency import once
from .problems import ApiError
from .schemas import MAX_INTEGER, HoldIn

NO_ORDER = invalid(
    "a quote is for an order",
    [FieldError("", "missing_query", "pass the order amount in minor units: ?order_amount=")],
    code="missing_query",
)


async def get_quote(request: Request) -> Response:
    principal = await authorize(request, "members:read")
    order_amount = query_int(request, "order_amount", None)
    if order_amount is None:
        raise ApiError(NO_ORDER)
    if order_amount > MAX_INTEGER:
        raise ApiError(invalid("order_amount is too large", [FieldError("", "number_too_large", f"whole numbers go up to {MAX_INTEGER}")], code="number_too_large"))
    quote = service(request).holds.quote
    return await answer(request, partial(quote, request.path_params["member_id"], order_amount, stores=principal.stores))


async def post_hold(request: Request) -> Response:
    principal = await authorize(request, "events:write")
    body = parse(HoldIn, await json_body(request))
    place = partial(
        service(request).holds.place,
        request.path_params["member_id"],
        body.order_amount,
        {"points_paid": body.points_paid, "stored_value_paid": body.stored_value_paid},
        ttl=timedelta(seconds=body.ttl_seconds),
        store=body.store,
        stores=principal.stores,
    )
    return await once(request, principal, place, status=201)


async def get_hold(request: Request) -> Response:
    principal = await authorize(request, "members:read")
    get = service(request).holds.get
    params = request.path_params
    return await answer(request, partial(get, params["member_id"], params["hold_id"], stores=principal.stores))


async def cancel_hold(request: Request) -> Response:
    principal = await authorize(request, "events:write")
    cancel = service(request).holds.cancel
    params = request.path_params
    return await once(request, principal, partial(cancel, params["member_id"], params["hold_id"], stores=principal.stores))


routes = [
    Route("/members/{member_id}/payment-quote", get_quote, methods=["GET"]),
    Route("/members/{member_id}/holds", post_hold, methods=["POST"]),
    Route("/members/{member_id}/holds/{hold_id}", get_hold, methods=["GET"]),
    Route("/members/{member_id}/holds/{hold_id}/cancel", cancel_hold, methods=["POST"]),
]
