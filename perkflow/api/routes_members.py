"""Members: create or update by external id, read, look up, page the ledger, progress, adjust, merge;
their personal data masked, revealed for a reason, exported, erased (perkflow/service/subjects.py)."""

from __future__ import annotations

import uuid
from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from perkflow.service.masking import ERASE, REVEAL
from perkflow.service.problems import FieldError, invalid

from .auth import authorize
from .bodies import answer, json_body, parse, query_int, service
from .idempotency import once, request_key
from .problems import ApiError
from .schemas import LookupIn, MergeIn

NO_QUERY = invalid(
    "look members up by phone or by email",
    [FieldError("", "missing_query", "pass one of phone or email (?phone= or ?email=, or in the body of POST /members:lookup)")],
    code="missing_query",
)


async def put_member(request: Request) -> Response:
    principal = await authorize(request, "members:write")
    body = await json_body(request)
    put = service(request).members.put
    return await answer(
        request,
        partial(put, request.path_params["member_id"], body, actor=principal.name, stores=principal.stores),
    )


async def get_member(request: Request) -> Response:
    principal = await authorize(request, "members:read")
    get = service(request).members.get
    return await answer(request, partial(get, request.path_params["member_id"], stores=principal.stores))


async def find_members(request: Request) -> Response:
    principal = await authorize(request, "members:read")
    phone, email = request.query_params.get("phone"), request.query_params.get("email")
    if (phone is None) == (email is None):
        raise ApiError(NO_QUERY)
    find = service(request).members.find
    return await answer(
        request,
        lambda: {"items": [{"id": i} for i in find(phone=phone, email=email, stores=principal.stores)]},
    )


async def lookup_members(request: Request) -> Response:
    principal = await authorize(request, "members:read")
    body = parse(LookupIn, await json_body(request))
    if (body.phone is None) == (body.email is None):
        raise ApiError(NO_QUERY)
    find = service(request).members.find
    return await answer(
        request,
        lambda: {"items": [{"id": i} for i in find(phone=body.phone, email=body.email, stores=principal.stores)]},
    )


async def get_ledger(request: Request) -> Response:
    principal = await authorize(request, "members:read")
    after, limit = query_int(request, "after", None), query_int(request, "limit", 50) or 50
    ledger = service(request).members.ledger
    return await answer(
        request,
        partial(ledger, request.path_params["member_id"], after=after, limit=limit, stores=principal.stores),
    )


async def get_progress(request: Request) -> Response:
    principal = await authorize(request, "members:read")
    order_amount = query_int(request, "order_amount", None)
    progress = service(request).members.progress
    return await answer(
        request,
        partial(progress, request.path_params["member_id"], order_amount=order_amount, stores=principal.stores),
    )


async def post_adjustment(request: Request) -> Response:
    principal = await authorize(request, "members:write")
    body = await json_body(request)
    adjustment_id = request_key(request) or uuid.uuid4().hex  # the key names the adjustment
    adjust = partial(
        service(request).members.adjust,
        actor=principal.name,
        adjustment_id=adjustment_id,
        stores=principal.stores,
    )
    return await once(request, principal, partial(adjust, request.path_params["member_id"], body))


async def post_tier_override(request: Request) -> Response:
    principal = await authorize(request, "members:write")
    body = await json_body(request)
    override_id = request_key(request) or uuid.uuid4().hex  # the key names the override
    set_override = partial(service(request).members.set_tier_override, actor=principal.name, override_id=override_id, stores=principal.stores)
    return await once(request, principal, partial(set_override, request.path_params["member_id"], body))


async def delete_tier_override(request: Request) -> Response:
    principal = await authorize(request, "members:write")
    request_id = request_key(request) or uuid.uuid4().hex
    end = partial(service(request).members.end_tier_override, actor=principal.name, request_id=request_id, stores=principal.stores)
    return await once(request, principal, partial(end, request.path_params["member_id"]))


async def post_merge(request: Request) -> Response:
    principal = await authorize(request, "members:write")
    body = parse(MergeIn, await json_body(request))
    merge = partial(service(request).members.merge, actor=principal.name, stores=principal.stores)
    return await once(request, principal, partial(merge, request.path_params["member_id"], body.from_))


async def get_profile(request: Request) -> Response:
    principal = await authorize(request, "members:read")
    profile = service(request).subjects.profile
    return await answer(request, partial(profile, request.path_params["member_id"], principal=principal))


async def post_reveal(request: Request) -> Response:
    principal = await authorize(request, REVEAL)
    body = await json_body(request)
    reveal = service(request).subjects.reveal
    return await answer(request, partial(reveal, request.path_params["member_id"], body, principal=principal))


async def post_export(request: Request) -> Response:
    principal = await authorize(request, REVEAL)
    body = await json_body(request)
    export = service(request).subjects.export
    return await answer(request, partial(export, request.path_params["member_id"], body, principal=principal))


async def post_erase(request: Request) -> Response:
    principal = await authorize(request, ERASE)
    body = await json_body(request)
    erase = service(request).subjects.erase
    return await answer(request, partial(erase, request.path_params["member_id"], body, principal=principal))


routes = [
    Route("/members", find_members, methods=["GET"]),
    Route("/members:lookup", lookup_members, methods=["POST"]),
    Route("/members/{member_id}", put_member, methods=["PUT"]),
    Route("/members/{member_id}", get_member, methods=["GET"]),
    Route("/members/{member_id}/ledger", get_ledger, methods=["GET"]),
    Route("/members/{member_id}/progress", get_progress, methods=["GET"]),
    Route("/members/{member_id}/adjustments", post_adjustment, methods=["POST"]),
    Route("/members/{member_id}/tier-override", post_tier_override, methods=["POST"]),
    Route("/members/{member_id}/tier-override", delete_tier_override, methods=["DELETE"]),
    Route("/members/{member_id}/merge", post_merge, methods=["POST"]),
    Route("/members/{member_id}/profile", get_profile, methods=["GET"]),
    Route("/members/{member_id}/reveal", post_reveal, methods=["POST"]),
    Route("/members/{member_id}/export", post_export, methods=["POST"]),
    Route("/members/{member_id}/erase", post_erase, methods=["POST"]),
]
