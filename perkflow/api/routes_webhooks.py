"""Webhook subscriptions: create, list, read, change, remove; the delivery log; re-delivery.

All under the scope `webhooks:admin`. The secret is shown when a subscription is made and when it
is read alone, never in the list.
"""

from __future__ import annotations

from functools import partial

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from perkflow.service.problems import Problem

from .auth import authorize
from .bodies import answer, json_body, parse, service
from .problems import problem_response
from .schemas import WebhookIn, WebhookPatchIn

SCOPE = "webhooks:admin"


async def list_webhooks(request: Request) -> Response:
    await authorize(request, SCOPE)
    hooks = service(request).webhooks
    return await answer(request, lambda: {"items": hooks.list()})


async def create_webhook(request: Request) -> Response:
    await authorize(request, SCOPE)
    body = parse(WebhookIn, await json_body(request)).model_dump()
    return await answer(request, partial(service(request).webhooks.create, body), status=201)


async def get_webhook(request: Request) -> Response:
    await authorize(request, SCOPE)
    return await answer(request, partial(service(request).webhooks.get, request.path_params["subscription_id"]))


async def patch_webhook(request: Request) -> Response:
    await authorize(request, SCOPE)
    body = parse(WebhookPatchIn, await json_body(request)).model_dump(exclude_none=True)
    return await answer(request, partial(service(request).webhooks.update, request.path_params["subscription_id"], body))


async def delete_webhook(request: Request) -> Response:
    await authorize(request, SCOPE)
    done = await run_in_threadpool(service(request).webhooks.delete, request.path_params["subscription_id"])
    if isinstance(done, Problem):
        return problem_response(done, request)
    return Response(status_code=204)


async def list_deliveries(request: Request) -> Response:
    await authorize(request, SCOPE)
    hooks, subscription = service(request).webhooks, request.path_params["subscription_id"]
    raw = request.query_params.get("limit", "100")
    limit = min(max(int(raw), 1), 1000) if raw.isdigit() else 100

    def call() -> object:
        found = hooks.get(subscription)
        return found if isinstance(found, Problem) else {"items": hooks.deliveries(subscription, limit=limit)}

    return await answer(request, call)


async def redeliver(request: Request) -> Response:
    await authorize(request, SCOPE)
    return await answer(request, partial(service(request).webhooks.redeliver, request.path_params["delivery_id"]))


routes = [
    Route("/webhooks", list_webhooks, methods=["GET"]),
    Route("/webhooks", create_webhook, methods=["POST"]),
    Route("/webhooks/{subscription_id:id}", get_webhook, methods=["GET"]),
    Route("/webhooks/{subscription_id:id}", patch_webhook, methods=["PATCH"]),
    Route("/webhooks/{subscription_id:id}", delete_webhook, methods=["DELETE"]),
    Route("/webhooks/{subscription_id:id}/deliveries", list_deliveries, methods=["GET"]),
    Route("/webhooks/deliveries/{delivery_id:id}/redeliver", redeliver, methods=["POST"]),
]
