"""Webhooks: subscriptions, and delivery of the outbox with retries and Standard Webhooks signatures.

Every decision that changes a member writes webhook messages to the outbox in its own transaction
(state_store.webhook_messages). Delivery has two steps, both safe to run in several processes:

1. dispatch: each pending outbox message of a webhook kind becomes one `webhook_deliveries` row per
   active subscription that wants its kind (unique per message and subscription), and the outbox
   row is marked delivered (handed over);
2. send: due delivery rows are claimed with a guarded update (a lease), POSTed, and marked
   delivered, or scheduled again after 1m, 5m, 30m, 2h, 6h, 12h and 24h, then `dead`.

Delivery is at least once: the `webhook-id` header is the same on every try of a message (and on a
manual re-delivery), so a receiver that keeps the ids it has seen gets each message exactly once.
Signatures follow the Standard Webhooks scheme: `webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">`, keyed by the base64 part of the subscription's `whsec_` secret.

SSRF: a URL whose host resolves to an address that is not global (private, loopback, link-local,
reserved...) is refused when the subscription is made and again before each try, unless the
address is allowed by PERKFLOW_WEBHOOK_ALLOW (comma separated addresses or networks). Redirects
are never followed (a 3xx counts as a failure).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine, delete, insert, select, update

from perkflow.storage import tables as t

from .problems import FieldError, Problem, invalid, not_found
from .state_store import WEBHOOK_KINDS

RETRY_AFTER = (
    timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
    timedelta(hours=6), timedelta(hours=12), timedelta(hours=24),
)
"""The wait after each failed try; after the last, the delivery is dead (8 tries over 44.6 hours)."""
LEASE = timedelta(minutes=2)  # a claimed delivery is not picked again by another worker meanwhile
TIMEOUT = 5.0  # seconds per request
BATCH = 100

Resolver = Callable[[str], list[str]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks signature header value for one message."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def parse_allow(text: str | None) -> tuple[Network, ...]:
    """PERKFLOW_WEBHOOK_ALLOW: addresses or networks that webhooks may reach though not global."""
    out = []
    for part in (text or "").split(","):
        if part.strip():
            out.append(ipaddress.ip_network(part.strip(), strict=False))
    return tuple(out)


def _resolve(host: str) -> list[str]:
    return sorted({info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})


@dataclass(frozen=True)
class DeliveryRun:
    dispatched: int  # outbox messages handed to subscriptions
    delivered: int
    failed: int  # tries that failed and will be retried
    dead: int

    def to_dict(self) -> dict[str, int]:
        return {"dispatched": self.dispatched, "delivered": self.delivered, "failed": self.failed, "dead": self.dead}


class Webhooks:
    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        *,
        allow: Iterable[Network] | None = None,
        resolver: Resolver = _resolve,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.engine, self.clock, self.resolver, self.transport = engine, clock, resolver, transport
        self.allow = tuple(allow) if allow is not None else parse_allow(os.environ.get("PERKFLOW_WEBHOOK_ALLOW"))

    # --- subscriptions -------------------------------------------------------------------------

    def check_url(self, url: Any) -> str | None:
        """Why a URL may not receive webhooks, or None when it may."""
        if not isinstance(url, str) or len(url) > 2000:
            return "a URL is text of at most 2000 characters"
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "the URL must be http:// or https:// with a host"
        try:
            addresses = self.resolver(parts.hostname)
        except (OSError, UnicodeError):
            return f"the host '{parts.hostname}' does not resolve"
        if not addresses:
            return f"the host '{parts.hostname}' does not resolve"
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if address.is_global or any(address in network for network in self.allow):
                continue
            return f"the host '{parts.hostname}' resolves to {address}, which is not a public address (allow it with PERKFLOW_WEBHOOK_ALLOW)"
        return None

    def _fields(self, body: Any, *, partial: bool) -> dict[str, Any] | Problem:
        if not isinstance(body, dict):
            return invalid("a subscription is a JSON object", [FieldError("", "wrong_type", "send a JSON object")], code="wrong_type")
        unknown = sorted(set(body) - {"url", "kinds", "description", "active"})
        if unknown:
            return invalid(f"unknown field '{unknown[0]}'", [FieldError(f"/{unknown[0]}", "unknown_field", "url, kinds, description, active")], code="unknown_field")
        values: dict[str, Any] = {}
        if "url" in body or not partial:
            why = self.check_url(body.get("url"))
            if why is not None:
                return invalid(why, [FieldError("/url", "url_not_allowed", why)], code="url_not_allowed")
            values["url"] = body["url"]
        if "kinds" in body:
            kinds = body["kinds"]
            if not isinstance(kinds, list) or any(k not in WEBHOOK_KINDS for k in kinds):
                message = f"kinds is a list of {', '.join(WEBHOOK_KINDS)} (empty: all)"
                return invalid(message, [FieldError("/kinds", "unknown_kind", message)], code="unknown_kind")
            values["kinds"] = sorted(set(kinds))
        if "description" in body:
            if not isinstance(body["description"], str) or len(body["description"]) > 500:
                return invalid("description is text of at most 500 characters", [FieldError("/description", "wrong_type", "text")], code="wrong_type")
            values["description"] = body["description"]
        if "active" in body:
            if not isinstance(body["active"], bool):
                return invalid("active is true or false", [FieldError("/active", "wrong_type", "true or false")], code="wrong_type")
            values["active"] = body["active"]
        return values

    def create(self, body: Any) -> dict[str, Any] | Problem:
        """A new subscription; its secret is in the answer (and in `get`, for the integrator)."""
        values = self._fields(body, partial=False)
        if isinstance(values, Problem):
            return values
        now = self.clock()
        with self.engine.begin() as conn:
            new_id = conn.execute(
                insert(t.webhook_subscriptions).values(
                    url=values["url"], kinds=values.get("kinds", []), secret=new_secret(),
                    description=values.get("description", ""), active=values.get("active", True), created_at=now, updated_at=now,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        found = self.get(new_id)
        assert not isinstance(found, Problem)
        return found

    def list(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.webhook_subscriptions).order_by(t.webhook_subscriptions.c.id)).mappings().all()
        return [_subscription(row, secret=False) for row in rows]

    def get(self, subscription_id: int) -> dict[str, Any] | Problem:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.webhook_subscriptions).where(t.webhook_subscriptions.c.id == subscription_id)).mappings().first()
        return not_found("webhook", str(subscription_id)) if row is None else _subscription(row, secret=True)

    def update(self, subscription_id: int, body: Any) -> dict[str, Any] | Problem:
        values = self._fields(body, partial=True)
        if isinstance(values, Problem):
            return values
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.webhook_subscriptions).where(t.webhook_subscriptions.c.id == subscription_id).values(**values, updated_at=self.clock())
            )
        return not_found("webhook", str(subscription_id)) if done.rowcount == 0 else self.get(subscription_id)

    def delete(self, subscription_id: int) -> None | Problem:
        """Remove a subscription; its pending deliveries are dead, its delivery log stays."""
        with self.engine.begin() as conn:
            done = conn.execute(delete(t.webhook_subscriptions).where(t.webhook_subscriptions.c.id == subscription_id))
            if done.rowcount == 0:
                return not_found("webhook", str(subscription_id))
            d = t.webhook_deliveries.c
            conn.execute(
                update(t.webhook_deliveries).where(d.subscription_id == subscription_id, d.status == "pending")
                .values(status="dead", last_error="subscription deleted")
            )
        return None

    def deliveries(self, subscription_id: int, *, limit: int = 100) -> list[dict[str, Any]] | Problem:
        """The delivery log of a subscription, newest first."""
        d = t.webhook_deliveries.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.webhook_deliveries).where(d.subscription_id == subscription_id).order_by(d.id.desc()).limit(limit)
            ).mappings().all()
        return [_delivery(row) for row in rows]

    def redeliver(self, delivery_id: int) -> dict[str, Any] | Problem:
        """Send a delivery again at the next run, whatever its state, with a fresh retry schedule
        and the same webhook-id."""
        d = t.webhook_deliveries.c
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.webhook_deliveries).where(d.id == delivery_id)
                .values(status="pending", attempts=0, next_attempt_at=self.clock(), last_error="")
            )
            if done.rowcount == 0:
                return not_found("delivery", str(delivery_id))
            row = conn.execute(select(t.webhook_deliveries).where(d.id == delivery_id)).mappings().one()
        return _delivery(row)

    # --- delivery ------------------------------------------------------------------------------

    def run(self, *, limit: int = BATCH) -> DeliveryRun:
        """One pass: hand new outbox messages to subscriptions, then try every due delivery."""
        dispatched = self.dispatch(limit=limit)
        delivered = failed = dead = 0
        for outcome in self.send_due(limit=limit):
            if outcome == "delivered":
                delivered += 1
            elif outcome == "dead":
                dead += 1
            else:
                failed += 1
        return DeliveryRun(dispatched, delivered, failed, dead)

    def dispatch(self, *, limit: int = BATCH) -> int:
        o = t.outbox.c
        now = self.clock()
        handed = 0
        with self.engine.begin() as conn:
            subscriptions = conn.execute(
                select(t.webhook_subscriptions.c.id, t.webhook_subscriptions.c.kinds).where(t.webhook_subscriptions.c.active.is_(True))
            ).all()
            rows = conn.execute(
                select(o.id, o.kind).where(o.status == "pending", o.kind.in_(WEBHOOK_KINDS)).order_by(o.id).limit(limit)
            ).all()
            for row in rows:
                claimed = conn.execute(update(t.outbox).where(o.id == row.id, o.status == "pending").values(status="delivered", attempts=1))
                if claimed.rowcount != 1:
                    continue  # another worker handed it over
                for sub in subscriptions:
                    if sub.kinds and row.kind not in sub.kinds:
                        continue
                    conn.execute(
                        insert(t.webhook_deliveries).values(
                            subscription_id=sub.id, outbox_id=row.id, message_id=f"msg_{row.id}", kind=row.kind,
                            status="pending", attempts=0, next_attempt_at=now, last_error="", created_at=now,
                        )
                    )
                handed += 1
        return handed

    def send_due(self, *, limit: int = BATCH) -> list[str]:
        d = t.webhook_deliveries.c
        now = self.clock()
        with self.engine.connect() as conn:
            due = conn.execute(
                select(d.id, d.next_attempt_at).where(d.status == "pending", d.next_attempt_at <= now).order_by(d.next_attempt_at, d.id).limit(limit)
            ).all()
        outcomes = []
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False, trust_env=False, transport=self.transport) as client:
            for item in due:
                with self.engine.begin() as conn:  # the lease: only one worker wins each try
                    claimed = conn.execute(
                        update(t.webhook_deliveries)
                        .where(d.id == item.id, d.status == "pending", d.next_attempt_at == item.next_attempt_at)
                        .values(next_attempt_at=now + LEASE)
                    )
                if claimed.rowcount != 1:
                    continue
                outcomes.append(self._try(client, item.id))
        return outcomes

    def _try(self, client: httpx.Client, delivery_id: int) -> str:
        d = t.webhook_deliveries.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.webhook_deliveries, t.outbox.c.payload, t.outbox.c.created_at.label("message_at"),
                       t.webhook_subscriptions.c.url, t.webhook_subscriptions.c.secret)
                .select_from(
                    t.webhook_deliveries.join(t.outbox, t.outbox.c.id == d.outbox_id)
                    .outerjoin(t.webhook_subscriptions, t.webhook_subscriptions.c.id == d.subscription_id)
                )
                .where(d.id == delivery_id)
            ).mappings().one()
        now = self.clock()
        status: int | None = None
        if row["url"] is None:
            error = "subscription deleted"
        elif (why := self.check_url(row["url"])) is not None:
            error = why
        else:
            body = json.dumps(
                {"type": row["kind"], "timestamp": row["message_at"].isoformat(), "data": row["payload"]},
                sort_keys=True, ensure_ascii=False, separators=(",", ":"),
            ).encode()
            stamp = int(now.timestamp())
            headers = {
                "content-type": "application/json",
                "user-agent": "Perkflow-Webhooks/1",
                "webhook-id": row["message_id"],
                "webhook-timestamp": str(stamp),
                "webhook-signature": sign(row["secret"], row["message_id"], stamp, body),
            }
            try:
                response = client.post(row["url"], content=body, headers=headers)
                status = response.status_code
                error = "" if 200 <= status < 300 else f"HTTP {status}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
        attempts = row["attempts"] + 1
        values: dict[str, Any] = {"attempts": attempts, "last_attempt_at": now, "last_status": status, "last_error": error[:500]}
        if not error:
            values.update(status="delivered", delivered_at=now, next_attempt_at=None)
            outcome = "delivered"
        elif attempts > len(RETRY_AFTER) or row["url"] is None:
            values.update(status="dead", next_attempt_at=None)
            outcome = "dead"
        else:
            values.update(next_attempt_at=now + RETRY_AFTER[attempts - 1])
            outcome = "failed"
        with self.engine.begin() as conn:
            conn.execute(update(t.webhook_deliveries).where(d.id == delivery_id).values(**values))
        return outcome


def _subscription(row: Any, *, secret: bool) -> dict[str, Any]:
    out = {
        "id": row["id"], "url": row["url"], "kinds": list(row["kinds"] or []), "description": row["description"],
        "active": row["active"], "created_at": row["created_at"].isoformat(), "updated_at": row["updated_at"].isoformat(),
    }
    if secret:
        out["secret"] = row["secret"]
    return out


def _delivery(row: Any) -> dict[str, Any]:
    def at(name: str) -> str | None:
        return row[name].isoformat() if row[name] else None

    return {
        "id": row["id"], "subscription_id": row["subscription_id"], "message_id": row["message_id"], "kind": row["kind"],
        "status": row["status"], "attempts": row["attempts"], "next_attempt_at": at("next_attempt_at"),
        "last_attempt_at": at("last_attempt_at"), "last_status": row["last_status"], "last_error": row["last_error"],
        "created_at": at("created_at"), "delivered_at": at("delivered_at"),
    }


__all__ = ["RETRY_AFTER", "DeliveryRun", "Webhooks", "new_secret", "parse_allow", "sign"]
