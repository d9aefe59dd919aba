"""Who is asking: `Authorization: Bearer <API key>`, checked against the scope an endpoint needs.

No key, or a key that is unknown, forged or revoked, is a 401 with `WWW-Authenticate: Bearer`; a
valid key without the scope is a 403 that names the scope. A key bound to stores is passed on as
`Principal.stores`, and the service hides other stores' members (a 404, as if absent).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from perkflow.service.access import Principal
from perkflow.service.problems import Problem

from .problems import ApiError

SCOPES = {
    "events:write": "post events",
    "events:read": "read stored events and their decisions",
    "members:read": "read members, look them up, read their ledgers",
    "members:write": "create and update members, adjust balances, set tier overrides, merge members",
    "members:reveal": "show a member's personal data in full and export everything held on them, for a reason (audited)",
    "members:erase": "erase a member's personal data, keeping their ledger under a pseudonym (audited)",
    "coupons:write": "validate, redeem and void coupons",
    "rewards:write": "redeem rewards",
    "schemes:read": "read, export and diff scheme versions",
    "schemes:publish": "submit scheme versions and roll back",
    "schemes:approve": "approve or return submitted versions (never one's own)",
    "webhooks:admin": "manage webhook subscriptions, read their delivery logs, re-deliver",
    "reports:read": "read reports (liability, flows, tiers, coupons, rewards, campaigns, retention, RFM); a key bound to stores sees only theirs",
}


async def authorize(request: Request, scope: str) -> Principal:
    """The principal behind the request, if it holds `scope`; else an ApiError (401 or 403)."""
    kind, _, token = request.headers.get("authorization", "").partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise ApiError(
            Problem(
                401,
                "unauthenticated",
                "Authentication required",
                "send an API key: Authorization: Bearer <key>",
            ),
            {"WWW-Authenticate": 'Bearer realm="perkflow"'},
        )
    access = request.app.state.service.access
    # A key seen moments ago is answered here, without a trip to a worker thread.
    principal = access.remembered(token.strip()) or await run_in_threadpool(access.authenticate, token.strip())
    if principal is None:
        raise ApiError(
            Problem(
                401,
                "invalid_token",
                "Authentication required",
                "the API key is unknown, malformed or revoked",
            ),
            {"WWW-Authenticate": 'Bearer realm="perkflow", error="invalid_token"'},
        )
    if not principal.can(scope):
        raise ApiError(
            Problem(
                403,
                "insufficient_scope",
                "Not allowed",
                f"this API key lacks the scope '{scope}' ({SCOPES[scope]})",
                extra={"scope": scope},
            ),
            {"WWW-Authenticate": f'Bearer realm="perkflow", error="insufficient_scope", scope="{scope}"'},
        )
    return principal
