"""The API's description: OpenAPI 3.1 generated from the pydantic models, and a docs page.

`OPERATIONS` lists every operation once: its path, scope, body and answers. The JSON schemas come
from perkflow/api/schemas.py; the event body is generated from the scheme version in force, so the
reference shows each event type with its attributes. `/api/v1/docs` renders the same document as
plain HTML on the server: no script, no CDN, nothing fetched from elsewhere.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from perkflow.engine import Program

from . import schemas as s
from .auth import SCOPES
from .bodies import MAX_ID, service

PREFIX = "/api/v1"
REF = "#/components/schemas/{model}"
PROBLEMS = {
    400: "Malformed JSON (the problem says where), a body that is not UTF-8, or one nested more than 32 deep",
    401: "No API key, or an unknown, forged or revoked one (WWW-Authenticate: Bearer)",
    403: "The API key lacks the scope, or is bound to other stores; four eyes (an author approving)",
    404: "No such resource, or one of a store the key is not bound to",
    409: "Conflict: an event id or Idempotency-Key reused, a request with the same key still running, a state that forbids it",
    413: "The body is larger than the limit (1 MiB unless configured)",
    422: "The request is not valid: every wrong field is named by a JSON pointer in `errors`",
    429: "Too many requests from this API key or address: Retry-After says when to try again",
    500: "A bug: the answer carries the request id under which it was logged",
    503: "Not ready: the database is unreachable or migrations are pending",
}


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    summary: str
    tag: str
    scope: str | None = None
    body: type[BaseModel] | str | None = None  # a model, or "event" / "events" / "version"
    answers: tuple[tuple[int, type[BaseModel] | None], ...] = ((200, None),)
    problems: tuple[int, ...] = ()
    query: tuple[tuple[str, str, str], ...] = ()  # (name, JSON type, description)
    idempotent: bool = False
    description: str = ""
    limited: bool = True  # under the rate limits (everything under /api/v1)


OPERATIONS = (
    Op(
        "post",
        "/events",
        "Post an event; the answer is the decision",
        "events",
        "events:write",
        "event",
        ((201, s.DecisionOut), (200, s.DecisionOut)),
        (400, 409, 413, 422),
        (("dry_run", "boolean", "Evaluate without writing anything"),),
        description="A retry with the same id and body answers the stored decision (200); the same id with another body is a 409 naming the fields that differ.",
    ),
    Op(
        "post",
        "/events:batch",
        "Post up to 1000 events, each applied on its own",
        "events",
        "events:write",
        "events",
        ((200, s.BatchItemOut),),
        (400, 413, 422),
        (("dry_run", "boolean", "Evaluate without writing anything"),),
        description="A bulk import: each event is independent and idempotent by its id; the answer is a list of {id, status, body|problem} in the order sent.",
    ),
    Op(
        "get",
        "/events/{event_id}",
        "An applied event, its stored decision and trace",
        "events",
        "events:read",
        None,
        ((200, s.StoredEventOut),),
        (404,),
    ),
    Op(
        "get",
        "/members",
        "Look members up by phone or email (blind index)",
        "members",
        "members:read",
        None,
        ((200, s.MemberListOut),),
        (422,),
        (("phone", "string", "A phone number"), ("email", "string", "An email address")),
    ),
    Op(
        "post",
        "/members:lookup",
        "Look members up by phone or email, sent in the body",
        "members",
        "members:read",
        s.LookupIn,
        ((200, s.MemberListOut),),
        (400, 413, 422),
        description="The same answer as GET /members?phone=, without the phone number or email in the URL, where access logs and proxies would keep it. Prefer it.",
    ),
    Op(
        "put",
        "/members/{member_id}",
        "Create or update a member by your id for it",
        "members",
        "members:write",
        s.MemberIn,
        ((201, s.MemberOut), (200, s.MemberOut)),
        (400, 403, 404, 413, 422),
    ),
    Op(
        "get",
        "/members/{member_id}",
        "A member: balances, lots, tier, coupons, counters, achievements, referral code (no personal data)",
        "members",
        "members:read",
        None,
        ((200, s.MemberOut),),
        (404,),
    ),
    Op(
        "get",
        "/members/{member_id}/ledger",
        "A member's ledger, newest first, by pages",
        "members",
        "members:read",
        None,
        ((200, s.LedgerOut),),
        (404, 422),
        (
            ("after", "integer", "The `next` cursor of the previous page"),
            ("limit", "integer", "Rows per page, 1 to 500 (50)"),
        ),
    ),
    Op(
        "get",
        "/members/{member_id}/progress",
        "What the member still needs for each tier, reward and coupon (in English and Chinese)",
        "members",
        "members:read",
        None,
        ((200, s.ProgressOut),),
        (404, 422),
        (("order_amount", "integer", "An order amount in minor units: each coupon says how much more to spend to use it"),),
        description="Pending and expired units do not count. A key bound to stores sees only its stores' members.",
    ),
    Op(
        "post",
        "/members/{member_id}/adjustments",
        "Adjust a balance by hand, with a reason (audited)",
        "members",
        "members:write",
        s.AdjustmentIn,
        ((201, s.DecisionOut), (200, s.DecisionOut)),
        (400, 404, 409, 413, 422),
        idempotent=True,
        description="The Idempotency-Key, when sent, is the adjustment's id.",
    ),
    Op(
        "get",
        "/members/{member_id}/payment-quote",
        "How much of an order points and stored value may pay (积分抵现, 储值消费)",
        "holds",
        "members:read",
        None,
        ((200, s.QuoteOut),),
        (404, 422),
        (("order_amount", "integer", "The bill before points and stored value pay, after coupons, in minor units (required)"),),
        description="Each paying balance within its order_payment limits and what the member can spend now, less what active holds reserve. Nothing is written.",
    ),
    Op(
        "post",
        "/members/{member_id}/holds",
        "Hold points and stored value for an order at the till",
        "holds",
        "events:write",
        s.HoldIn,
        ((201, s.HoldOut),),
        (400, 404, 409, 413, 422),
        idempotent=True,
        description="The hold reserves the units until it expires, is cancelled, or a purchase naming it in attributes.hold (with the hold's `pay` as its attributes) captures it. Two tills never reserve the same units.",
    ),
    Op(
        "get",
        "/members/{member_id}/holds/{hold_id}",
        "A hold and its status",
        "holds",
        "members:read",
        None,
        ((200, s.HoldOut),),
        (404, 422),
    ),
    Op(
        "post",
        "/members/{member_id}/holds/{hold_id}/cancel",
        "Release a hold",
        "holds",
        "events:write",
        None,
        ((200, s.HoldOut),),
        (404, 409, 422),
        idempotent=True,
        description="Cancelling a cancelled or expired hold changes nothing; a captured hold is a 409 (refund the purchase instead).",
    ),
    Op(
        "post",
        "/members/{member_id}/tier-override",
        "Hold a member's tier by hand: at least a tier (floor) or exactly one (fixed), with a reason (audited)",
        "members",
        "members:write",
        s.TierOverrideIn,
        ((201, s.DecisionOut), (200, s.DecisionOut)),
        (400, 404, 409, 413, 422),
        idempotent=True,
        description="Replaces any override the member has. The tier moves at once as far as the override requires; at `until` it ends by itself.",
    ),
    Op(
        "delete",
        "/members/{member_id}/tier-override",
        "End a member's tier override now (audited); the tier it gave is reviewed",
        "members",
        "members:write",
        None,
        ((201, s.DecisionOut), (200, s.DecisionOut)),
        (404, 409, 422),
        idempotent=True,
    ),
    Op(
        "post",
        "/members/{member_id}/merge",
        "Merge another member into this one (audited)",
        "members",
        "members:write",
        s.MergeIn,
        ((200, s.MemberOut),),
        (400, 404, 409, 413, 422),
        idempotent=True,
        description="Balances and lots, coupons, earnings and history move to this member; the other keeps its id with status merged. Merging again is a no-op.",
    ),
    Op(
        "get",
        "/members/{member_id}/profile",
        "A member's personal data, masked",
        "members",
        "members:read",
        None,
        ((200, s.ProfileOut),),
        (404,),
        description="Phone 138****0000, email a***@example.com, name 王**, birthday ****-05-17: what support staff, store managers and auditors see.",
    ),
    Op(
        "post",
        "/members/{member_id}/reveal",
        "Show a member's personal data in full, for a reason (audited)",
        "members",
        "members:reveal",
        s.RevealIn,
        ((200, s.ProfileOut),),
        (400, 404, 413, 422),
        description="The reason and the fields shown go to the audit log; a reason holding a phone number or an email address is refused (422).",
    ),
    Op(
        "post",
        "/members/{member_id}/export",
        "Everything held on one member, for a subject access request (audited)",
        "members",
        "members:reveal",
        s.ReasonIn,
        ((200, s.SubjectExportOut),),
        (400, 404, 413, 422),
        description="The member's personal data in full, balances, lots, ledger, coupons, tier history, events with their decisions and outbox messages, as one JSON document.",
    ),
    Op(
        "post",
        "/members/{member_id}/erase",
        "Erase a member's personal data; the ledger stays under a pseudonym (audited)",
        "members",
        "members:erase",
        s.ReasonIn,
        ((200, s.ErasedOut),),
        (400, 404, 413, 422),
        description="Phone, email, name, birthday and attributes are removed; the member's id becomes a pseudonym in the member, its events and outbox; outbox payloads and webhook delivery errors are blanked. Balances, ledger, lots, coupons and decisions stay. The erasure is registered and applied again after a restore from an older backup.",
    ),
    Op(
        "post",
        "/coupons/validate",
        "Which coupons apply to an order, in what order, and why not",
        "coupons",
        "coupons:write",
        s.CouponValidationIn,
        ((200, s.CouponValidationOut),),
        (400, 404, 413, 422),
    ),
    Op(
        "post",
        "/coupon-codes",
        "Generate a batch of coupon codes",
        "coupons",
        "coupons:write",
        s.CodeBatchIn,
        ((201, s.CodeBatchOut),),
        (400, 413, 422),
        description="Uniformly random from a cryptographic source, in 31 characters without look-alikes, never equal to a stored code. Audited.",
    ),
    Op(
        "post",
        "/coupon-codes:import",
        "Import coupon codes from CSV",
        "coupons",
        "coupons:write",
        s.CodeImportIn,
        ((200, s.CodeImportOut),),
        (400, 413, 422),
        description="Each refused line is reported with its reason; the others are imported. Audited.",
    ),
    Op(
        "get",
        "/coupon-codes/{code}",
        "What a code stands for and how many uses are left",
        "coupons",
        "coupons:write",
        None,
        ((200, s.CodeOut),),
        (404, 429),
        description="Rate-limited per API key and per client address (429 with Retry-After), so codes cannot be enumerated.",
    ),
    Op(
        "post",
        "/coupon-codes/{code}/claim",
        "A member claims a code (领取): the coupon is issued",
        "coupons",
        "coupons:write",
        s.CodeClaimIn,
        ((201, s.DecisionOut), (200, s.DecisionOut)),
        (400, 403, 404, 409, 413, 422, 429),
        description="Within the policy's per-member cap and budget; one use of the code is taken in the same transaction. Claiming again answers the first claim (200). Rate-limited like a look-up.",
    ),
    Op(
        "post",
        "/coupons/{coupon_id}/redeem",
        "Use a coupon outside a purchase",
        "coupons",
        "coupons:write",
        s.CouponRedeemIn,
        ((201, s.DecisionOut), (200, s.DecisionOut)),
        (400, 403, 404, 409, 413, 422),
        idempotent=True,
        description="Posts a `coupon_redemption` event for the coupon's holder. In a purchase, list the coupon in the event's `coupons` instead.",
    ),
    Op(
        "post",
        "/coupons/{coupon_id}/void",
        "Void an unused coupon (audited)",
        "coupons",
        "coupons:write",
        s.CouponVoidIn,
        ((200, s.CouponOut),),
        (400, 404, 409, 413, 422),
        idempotent=True,
    ),
    Op(
        "post",
        "/rewards/{reward_id}/redeem",
        "Redeem a catalogue reward for a member",
        "rewards",
        "rewards:write",
        s.RewardRedeemIn,
        ((201, s.DecisionOut), (200, s.DecisionOut)),
        (400, 403, 409, 413, 422),
        idempotent=True,
        description="Posts a `reward_redemption` event: the reward's cost is spent and what it grants is given.",
    ),
    Op(
        "get",
        "/versions",
        "Scheme versions",
        "versions",
        "schemes:read",
        None,
        ((200, s.VersionListOut),),
        (),
        (("status", "string", "submitted, published or returned"),),
    ),
    Op(
        "post",
        "/versions",
        "Submit a scheme version (four eyes) or publish it",
        "versions",
        "schemes:publish",
        "version",
        ((201, s.VersionOut),),
        (400, 409, 413, 422),
        (("comment", "string", "With a YAML body: the version's comment"),),
        idempotent=True,
        description="While the scheme requires approval it waits as `submitted` for an approver other than its author.",
    ),
    Op(
        "get",
        "/versions/diff",
        "The semantic diff of two versions",
        "versions",
        "schemes:read",
        None,
        ((200, s.DiffOut),),
        (404, 422),
        (
            ("from", "string", "A version: 3, v:3, id:7 or a content hash"),
            ("to", "string", "Another version"),
        ),
    ),
    Op(
        "get",
        "/versions/{ref}",
        "A version with its content; the YAML file with Accept: application/yaml or ?format=yaml",
        "versions",
        "schemes:read",
        None,
        ((200, s.VersionDetailOut),),
        (404,),
        (("format", "string", "yaml for the rule file"),),
    ),
    Op(
        "post",
        "/versions/{version_id}/approve",
        "Approve a submitted version (not one's own)",
        "versions",
        "schemes:approve",
        None,
        ((200, s.VersionOut),),
        (403, 404, 409),
        idempotent=True,
    ),
    Op(
        "post",
        "/versions/{version_id}/return",
        "Send a submitted version back to its author",
        "versions",
        "schemes:approve",
        s.CommentIn,
        ((200, s.VersionOut),),
        (400, 404, 409, 422),
        idempotent=True,
    ),
    Op(
        "post",
        "/versions/{number}/rollback",
        "Publish an earlier version's content again (four eyes apply)",
        "versions",
        "schemes:publish",
        s.CommentIn,
        ((201, s.VersionOut),),
        (400, 404, 409, 422),
        idempotent=True,
    ),
    Op("get", "/webhooks", "Webhook subscriptions (without secrets)", "webhooks", "webhooks:admin", None, ((200, s.WebhookListOut),)),
    Op(
        "post", "/webhooks", "Subscribe a URL to webhooks", "webhooks", "webhooks:admin", s.WebhookIn,
        ((201, s.WebhookOut),), (400, 413, 422),
        description="The answer holds the secret that signs every message (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature). "
        "Delivery is at least once with a stable webhook-id; failed tries are retried after 1m, 5m, 30m, 2h, 6h, 12h and 24h.",
    ),
    Op("get", "/webhooks/{subscription_id}", "A subscription, with its secret", "webhooks", "webhooks:admin", None, ((200, s.WebhookOut),), (404,)),
    Op("patch", "/webhooks/{subscription_id}", "Change a subscription", "webhooks", "webhooks:admin", s.WebhookPatchIn, ((200, s.WebhookOut),), (400, 404, 413, 422)),
    Op("delete", "/webhooks/{subscription_id}", "Remove a subscription (its delivery log stays)", "webhooks", "webhooks:admin", None, ((204, None),), (404,)),
    Op(
        "get", "/webhooks/{subscription_id}/deliveries", "The delivery log of a subscription, newest first", "webhooks", "webhooks:admin", None,
        ((200, s.DeliveryListOut),), (404,), (("limit", "integer", "How many, 1 to 1000 (default 100)"),),
    ),
    Op(
        "post", "/webhooks/deliveries/{delivery_id}/redeliver", "Send a delivery again, with the same webhook-id", "webhooks", "webhooks:admin", None,
        ((200, s.DeliveryOut),), (404,),
    ),
    Op(
        "get", "/reports/{name}", "A report: liability, flows, tiers, coupons, rewards, campaigns, retention or rfm", "reports",
        "reports:read", None, ((200, s.ReportOut),), (403, 404, 409, 422),
        (
            ("from", "string", "The first local day of the period, YYYY-MM-DD (default: 11 months before today's month)"),
            ("to", "string", "The last local day of the period, included (default: today)"),
            ("store", "string", "Members of these home stores (repeat, or separate by commas); a key bound to stores gets only its own"),
            ("channel", "string", "Events made through this channel (flows, rewards)"),
            ("tier", "string", "Members now in this tier"),
            ("campaign", "string", "The rules of this campaign (flows, coupons) or this campaign only (campaigns)"),
            ("bucket", "string", "day, week or month (default month), in the scheme's timezone"),
            ("limit", "integer", "Rows of per-member tables, 1 to 10000 (default 100)"),
        ),
        description="Figures are computed in the database on request. A key bound to stores that names another store gets a 403.",
    ),
    Op("get", "/openapi.json", "This document", "reference"),
    Op("get", "/docs", "This reference as a web page", "reference"),
)
ROOT_OPERATIONS = (
    Op("get", "/healthz", "The process answers", "health", answers=((200, s.HealthOut),), limited=False),
    Op(
        "get",
        "/readyz",
        "The database answers and its migrations are applied",
        "health",
        answers=((200, s.HealthOut),),
        problems=(503,),
        limited=False,
    ),
    Op(
        "get",
        "/metrics",
        "Prometheus metrics (text exposition format)",
        "health",
        problems=(401, 404),
        limited=False,
        description="Needs `Authorization: Bearer <PERKFLOW_METRICS_TOKEN>`, a setting of the server rather than an API key, "
        "so metrics still answer while the database is down; 404 while no token is set.",
    ),
)

_STATIC = (
    s.MemberIn,
    s.AdjustmentIn,
    s.TierOverrideIn,
    s.MergeIn,
    s.LookupIn,
    s.RevealIn,
    s.ReasonIn,
    s.CouponValidationIn,
    s.CouponRedeemIn,
    s.CouponVoidIn,
    s.RewardRedeemIn,
    s.VersionIn,
    s.CommentIn,
    s.ProblemOut,
    s.DecisionOut,
    s.BatchItemOut,
    s.StoredEventOut,
    s.MemberOut,
    s.MemberListOut,
    s.ProfileOut,
    s.SubjectExportOut,
    s.ErasedOut,
    s.LedgerOut,
    s.ProgressOut,
    s.HoldIn,
    s.QuoteOut,
    s.HoldOut,
    s.CouponValidationOut,
    s.CodeBatchOut,
    s.CodeImportOut,
    s.CodeOut,
    s.CouponOut,
    s.VersionOut,
    s.VersionDetailOut,
    s.VersionListOut,
    s.DiffOut,
    s.HealthOut,
    s.WebhookIn,
    s.WebhookPatchIn,
    s.WebhookOut,
    s.WebhookListOut,
    s.DeliveryOut,
    s.DeliveryListOut,
    s.ReportOut,
)


def _ref(model: type[BaseModel] | str) -> dict[str, str]:
    return {"$ref": REF.format(model=model if isinstance(model, str) else model.__name__)}


def _parameters(op: Op) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": (
                {"type": "integer", "minimum": 0, "maximum": MAX_ID}
                if name in ("version_id", "number", "subscription_id", "delivery_id")
                else {"type": "string"}
            ),
        }
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    params += [
        {"name": n, "in": "query", "required": False, "schema": {"type": t}, "description": d}
        for n, t, d in op.query
    ]
    if op.idempotent:
        params.append({"$ref": "#/components/parameters/IdempotencyKey"})
    return params


def _request_body(op: Op) -> dict[str, Any] | None:
    if op.body is None:
        return None
    if op.body == "event":
        content = {"application/json": {"schema": _ref("EventBody")}}
    elif op.body == "events":
        content = {
            "application/json": {"schema": {"type": "array", "maxItems": 1000, "items": _ref("EventBody")}}
        }
    elif op.body == "version":
        content = {
            "application/json": {"schema": _ref(s.VersionIn)},
            "application/yaml": {"schema": {"type": "string", "description": "The scheme file"}},
        }
    else:
        assert not isinstance(op.body, str)
        content = {"application/json": {"schema": _ref(op.body)}}
    return {"required": True, "content": content}


def _responses(op: Op) -> dict[str, Any]:
    headers = {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}}
    out: dict[str, Any] = {}
    for status, model in op.answers:
        answer: dict[str, Any] = {"description": {200: "OK", 201: "Created", 204: "Done"}.get(status, "OK"), "headers": headers}
        if model is not None:
            schema = {"type": "array", "items": _ref(model)} if model is s.BatchItemOut else _ref(model)
            answer["content"] = {"application/json": {"schema": schema}}
            if model is s.VersionDetailOut:
                answer["content"]["application/yaml"] = {"schema": {"type": "string"}}
        elif op.path == "/docs":
            answer["content"] = {"text/html": {"schema": {"type": "string"}}}
        elif op.path == "/metrics":
            answer["content"] = {"text/plain": {"schema": {"type": "string"}}}
        out[str(status)] = answer
    problems = set(op.problems) | {500} | ({429} if op.limited else set())
    if op.idempotent:
        problems |= {422}  # an Idempotency-Key that is malformed, or reused with another body
    if op.scope is not None:
        problems |= {401, 403}
    for status in sorted(problems):
        out[str(status)] = {"$ref": f"#/components/responses/Problem{status}"}
    return out


def _operation(op: Op) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": op.method
        + "".join(p.capitalize() for p in re.split(r"[^a-z]+", op.path.replace("{", "by_")) if p),
        "summary": op.summary,
        "tags": [op.tag],
        "responses": _responses(op),
    }
    description = op.description + (f"\n\nNeeds the scope `{op.scope}`." if op.scope else "")
    if description.strip():
        operation["description"] = description.strip()
    if params := _parameters(op):
        operation["parameters"] = params
    if (body := _request_body(op)) is not None:
        operation["requestBody"] = body
    operation["security"] = [{"bearerAuth": [op.scope]}] if op.scope else []
    return operation


def openapi(program: Program | None) -> dict[str, Any]:
    """The OpenAPI 3.1 document, with the event types of `program` (the version in force)."""
    events = s.event_models(program)
    _, top = models_json_schema(
        [(m, "validation") for m in (*_STATIC, s.EventEnvelope, *events.values())], ref_template=REF
    )
    schemas = dict(top.get("$defs", {}))
    schemas["EventBody"] = _ref(s.EventEnvelope)
    if events:
        schemas["EventBody"] = {
            "oneOf": [_ref(m) for m in events.values()],
            "discriminator": {
                "propertyName": "type",
                "mapping": {name: REF.format(model=m.__name__) for name, m in events.items()},
            },
            "description": "An event; its `attributes` depend on its `type`.",
        }
    paths: dict[str, dict[str, Any]] = {}
    for prefix, ops in ((PREFIX, OPERATIONS), ("", ROOT_OPERATIONS)):
        for op in ops:
            paths.setdefault(prefix + op.path, {})[op.method] = _operation(op)
    problem = {"application/problem+json": {"schema": _ref(s.ProblemOut)}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Perkflow rule API",
            "version": "1",
            "description": "Post business events and get decisions; read members; redeem coupons and rewards; manage scheme versions. "
            "Money is an integer of minor units. Every error is application/problem+json with a stable `code`."
            + (f" Event types are those of scheme version {program.version}." if program else ""),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                f"Problem{code}": {"description": text, "content": problem} for code, text in PROBLEMS.items()
            },
            "parameters": {
                "IdempotencyKey": {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                    "description": "A repeat replays the first answer; the same key with another body is a 422; while the first runs, a 409.",
                }
            },
            "headers": {
                "RequestId": {
                    "description": "The request's id, also in the server's log.",
                    "schema": {"type": "string"},
                }
            },
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key (`perkflow keys create`). Scopes: "
                    + "; ".join(f"`{k}` {v}" for k, v in SCOPES.items())
                    + ".",
                }
            },
        },
    }


async def _document(request: Request) -> dict[str, Any]:
    program = await run_in_threadpool(service(request).versions.active)
    cache: dict[str, dict[str, Any]] = request.app.state.openapi
    key = program.version if program else ""
    if key not in cache:
        cache[key] = await run_in_threadpool(openapi, program)
    return cache[key]


async def openapi_json(request: Request) -> Response:
    return JSONResponse(await _document(request))


def render_html(spec: dict[str, Any]) -> str:
    """The reference page: every operation with its parameters, body and answers; every schema."""
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Perkflow rule API</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}"
        "code,pre{font:13px ui-monospace,monospace}pre{background:#f6f6f6;padding:.6em;overflow:auto}"
        ".m{display:inline-block;min-width:4.5em;font-weight:600}.op{border-top:1px solid #ddd;padding:.4em 0}"
        "h3{margin:.2em 0}</style></head><body>",
        f"<h1>{e(spec['info']['title'])}</h1><p>{e(spec['info']['description'])}</p>",
        "<p>The machine-readable description is <a href='openapi.json'>openapi.json</a> (OpenAPI 3.1).</p><h2>Operations</h2>",
    ]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            parts.append(
                f"<div class='op' id='{e(op['operationId'])}'><h3><span class='m'>{method.upper()}</span> <code>{e(path)}</code></h3>"
            )
            parts.append(f"<p>{e(op['summary'])}</p>")
            if op.get("description"):
                parts.append(f"<p>{e(op['description'])}</p>")
            params = [p for p in op.get("parameters", []) if "name" in p]
            if op.get("parameters") and any("$ref" in p for p in op["parameters"]):
                params.append(
                    {"name": "Idempotency-Key", "in": "header", "description": "replays the first answer"}
                )
            if params:
                parts.append(
                    "<p>Parameters: "
                    + ", ".join(
                        f"<code>{e(p['name'])}</code> ({e(p['in'])}) {e(p.get('description', ''))}"
                        for p in params
                    )
                    + "</p>"
                )
            if "requestBody" in op:
                bodies = [
                    f"{e(t)}: {_schema_link(c['schema'])}" for t, c in op["requestBody"]["content"].items()
                ]
                parts.append("<p>Body: " + "; ".join(bodies) + "</p>")
            answers = []
            for status, answer in op["responses"].items():
                if "$ref" in answer:
                    answers.append(f"{status} problem")
                else:
                    schema = next(iter(answer.get("content", {}).values()), {}).get("schema")
                    answers.append(f"{status} " + (_schema_link(schema) if schema else ""))
            parts.append("<p>Answers: " + ", ".join(answers) + "</p></div>")
    parts.append("<h2>Schemas</h2>")
    for name, schema in spec["components"]["schemas"].items():
        parts.append(
            f"<h3 id='schema-{e(name)}'>{e(name)}</h3><pre>{e(json.dumps(schema, indent=2, ensure_ascii=False))}</pre>"
        )
    parts.append("</body></html>")
    return "".join(parts)


def _schema_link(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
    if ref is None:
        return html.escape(schema.get("type", ""))
    name = ref.rsplit("/", 1)[-1]
    link = f"<a href='#schema-{html.escape(name)}'>{html.escape(name)}</a>"
    return f"list of {link}" if "items" in schema else link


async def docs_page(request: Request) -> Response:
    page = render_html(await _document(request))
    return HTMLResponse(
        page, headers={"Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'"}
    )


routes = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs_page, methods=["GET"]),
]
