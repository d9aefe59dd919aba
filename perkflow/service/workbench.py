"""What the editor may ask of the service, each action checked against the signed-in user's roles.

The editor (builder_ui) calls nothing else that reads or changes data: this is the single place
where a role's permissions are enforced for people, as perkflow/api/auth.py does for API keys. A
store manager's lookups are limited to their stores here too, so a crafted request gets "not found".
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from perkflow.engine import Program, compile, evaluate
from perkflow.engine.events import parse_event
from perkflow.engine.simulate import Replay
from perkflow.engine.state import new_member
from perkflow.storage import tables as t
from perkflow.storage.reports.result import Report

from .access import Principal
from .core import Service
from .drafts import Draft, check
from .events import member_row
from .masking import role_scopes
from .problems import FieldError, Problem, invalid, not_found
from .staff import Staff
from .state_store import load_state
from .versions import Version


@dataclass(frozen=True)
class Comparison:
    draft: dict[str, Any]
    active: dict[str, Any] | None
    events: int
    draft_cost: int = 0  # minor units: units issued at each balance's `value`, coupons at face value
    active_cost: int | None = None


def cost(program: Program, report: dict[str, Any]) -> int:
    """What a replay gave away, in minor units of the currency: units issued in each balance at
    its declared `value` (balances without one count nothing), and coupons issued at their face
    value (amount off, or a free item's value; a percent off has no face value before an order)."""
    scheme = program.scheme
    total = Decimal(0)
    for balance, flows in report["totals"]["balances"].items():
        value = scheme.balances[balance].value if balance in scheme.balances else None
        if value is not None:
            total += flows["issued"] * value
    for policy, counts in report["totals"]["coupons"].items():
        benefit = scheme.coupons[policy].benefit if policy in scheme.coupons else None
        face = getattr(benefit, "amount", None) or getattr(benefit, "value", None) or 0
        total += counts.get("issued", 0) * face
    return int(total)


class Cancelled(Exception):
    """A long replay was stopped by the person who started it."""


def _program(content: dict[str, Any]) -> Program | Problem:
    loaded = check(content)
    if loaded.scheme is None:
        return invalid(
            f"the draft has {len(loaded.errors)} error(s): fix them before a preview",
            [FieldError(e.path, e.code, e.message) for e in loaded.errors], code="invalid_scheme",
        )
    return compile(loaded.scheme)


class Workbench:
    def __init__(self, service: Service) -> None:
        self.service = service

    # --- drafts ----------------------------------------------------------------------------------

    def drafts(self, by: Staff) -> list[Draft] | Problem:
        return self.service.drafts.list(by=by)

    def preview_event(self, by: Staff, content: dict[str, Any], raw_event: Any) -> dict[str, Any] | Problem:
        """What the draft would decide for one event. A member already stored starts from their
        stored state; an unknown one starts new, as at sign-up. Nothing is written."""
        if (refused := by.require("drafts.preview")) is not None:
            return refused
        program = _program(content)
        if isinstance(program, Problem):
            return program
        event, errors = parse_event(raw_event, program.event_types)
        if event is None:
            return invalid("the event is not valid", [FieldError(e.pointer, e.code, e.message) for e in errors], code="invalid_event")
        engine = self.service.engine
        with engine.connect() as conn:
            row = member_row(conn, event.member_id)
            if row is not None and (by.stores is None or row["home_store"] in by.stores):
                state = load_state(conn, row, program)
            else:
                state = new_member(event.member_id, event.occurred_at, tier=program.lowest_tier(), home_store=event.store)
            budgets = {r.key: r.used for r in conn.execute(select(t.budgets.c.key, t.budgets.c.used))}
        decision = evaluate(program, state, event, budgets)
        return decision.to_dict() | {"balances": {b: decision.state.balance(b) for b in program.balances}, "tier": decision.state.tier}

    def stored_events(self, by: Staff, days: int) -> list[dict[str, Any]] | Problem:
        """The events posted in the last `days` days, in the order they were recorded."""
        if (refused := by.require("drafts.preview")) is not None:
            return refused
        since = self.service.clock() - timedelta(days=days)
        with self.service.engine.connect() as conn:
            rows = conn.execute(
                select(t.events.c.body).where(t.events.c.source == "api", t.events.c.occurred_at >= since).order_by(t.events.c.recorded_at)
            ).scalars().all()
        return list(rows)

    def compare(
        self, by: Staff, content: dict[str, Any], events: Iterable[dict[str, Any]], *,
        progress: Callable[[int], None] | None = None, cancelled: Callable[[], bool] | None = None,
    ) -> Comparison | Problem:
        """Replay the same events through the draft and through the version in force, side by
        side. A member first seen in the events without a sign-up starts new (their earlier
        history is not in the window), the same way in both."""
        if (refused := by.require("drafts.preview")) is not None:
            return refused
        draft = _program(content)
        if isinstance(draft, Problem):
            return draft
        active = self.service.versions.active()
        replays = [Replay(draft)] + ([Replay(active)] if active is not None else [])  # traced: per-rule counts come from the trace
        count = 0
        for raw in events:
            if cancelled is not None and cancelled():
                raise Cancelled
            for replay in replays:
                member = raw.get("member_id") if isinstance(raw, dict) else None
                if isinstance(member, str) and member not in replay.members and raw.get("type") != "signup":
                    event, _ = parse_event(raw, replay.program.event_types)
                    if event is not None:
                        replay.members[member] = new_member(member, event.occurred_at, tier=replay.program.lowest_tier(), home_store=event.store)
                replay.feed(raw)
            count += 1
            if progress is not None and count % 200 == 0:
                progress(count)
        reports = [r.report() for r in replays]
        for report in reports:
            report.pop("members")
        costs = [cost(r.program, report) for r, report in zip(replays, reports, strict=True)]
        return Comparison(reports[0], reports[1] if len(reports) > 1 else None, count, costs[0], costs[1] if len(costs) > 1 else None)

    # --- versions --------------------------------------------------------------------------------

    def versions(self, by: Staff) -> list[Version] | Problem:
        if (refused := by.require("versions.read")) is not None:
            return refused
        return self.service.versions.list()

    def version_yaml(self, by: Staff, number: int) -> tuple[Version, str] | Problem:
        if (refused := by.require("versions.read")) is not None:
            return refused
        found = self.service.versions.find(str(number))
        if isinstance(found, Problem):
            return found
        text = self.service.versions.yaml(str(number))
        return text if isinstance(text, Problem) else (found[0], text)

    def diff(self, by: Staff, old: str, new: str) -> dict[str, Any] | Problem:
        if (refused := by.require("versions.read")) is not None:
            return refused
        return self.service.versions.compare(old, new)

    def approve(self, by: Staff, version_id: int, *, effective_at: datetime | None = None) -> Version | Problem:
        if (refused := by.require("versions.approve")) is not None:
            return refused
        if effective_at is not None:
            scheduled = self.service.versions.schedule(version_id, effective_at, by=by.name)
            if isinstance(scheduled, Problem):
                return scheduled
        return self.service.versions.approve(version_id, approver=by.name)

    def send_back(self, by: Staff, version_id: int, comment: str) -> Version | Problem:
        if (refused := by.require("versions.approve")) is not None:
            return refused
        if not comment.strip():
            return invalid("say why it goes back", [FieldError("/comment", "missing_comment", "a comment tells the author what to change")], code="missing_comment")
        return self.service.versions.send_back(version_id, approver=by.name, comment=comment)

    def rollback(self, by: Staff, number: int, comment: str) -> Version | Problem:
        if (refused := by.require("versions.submit")) is not None:
            return refused
        return self.service.versions.rollback(number, author=by.name, comment=comment)

    # --- members ---------------------------------------------------------------------------------

    def find_members(self, by: Staff, query: str) -> list[str] | Problem:
        """Members by external id, phone or email (store managers: their stores only)."""
        if (refused := by.require("members.read")) is not None:
            return refused
        query = query.strip()
        if not query:
            return []
        members = self.service.members
        found = members.find(email=query, stores=by.stores) if "@" in query else members.find(phone=query, stores=by.stores) if any(c.isdigit() for c in query) else []
        if not isinstance(members.get(query, stores=by.stores), Problem):
            found = [query, *[m for m in found if m != query]]
        return found

    def member(self, by: Staff, external_id: str) -> dict[str, Any] | Problem:
        """A member's state, their ledger and their recent events with each decision's trace."""
        if (refused := by.require("members.read")) is not None:
            return refused
        view = self.service.members.get(external_id, stores=by.stores)
        if isinstance(view, Problem):
            return view
        ledger = self.service.members.ledger(external_id, limit=200, stores=by.stores)
        with self.service.engine.connect() as conn:
            rows = conn.execute(
                select(t.events.c.id, t.events.c.type, t.events.c.occurred_at, t.events.c.decision, t.events.c.version)
                .join(t.members, t.members.c.id == t.events.c.member_id)
                .where(t.members.c.external_id == external_id)
                .order_by(t.events.c.occurred_at.desc())
                .limit(50)
            ).all()
        events = [{"id": r.id, "type": r.type, "occurred_at": r.occurred_at.isoformat(), "version": r.version, "decision": r.decision} for r in rows]
        return {"member": view, "ledger": [] if isinstance(ledger, Problem) else ledger.get("items", []), "events": events}

    def adjust(self, by: Staff, external_id: str, balance: str, amount: int, reason: str) -> dict[str, Any] | Problem:
        if (refused := by.require("members.adjust")) is not None:
            return refused
        result = self.service.members.adjust(
            external_id, {"balance": balance, "amount": amount, "reason": reason},
            actor=by.name, adjustment_id=secrets.token_hex(8), stores=by.stores,
        )
        return result if isinstance(result, Problem) else result.body

    def set_tier_override(
        self, by: Staff, external_id: str, kind: str, tier: str, reason: str, until: str | None = None
    ) -> dict[str, Any] | Problem:
        """Hold the member's tier by hand (floor or fixed), until `until` (ISO, with an offset) or ended."""
        if (refused := by.require("members.tier_override")) is not None:
            return refused
        body = {"kind": kind, "tier": tier, "reason": reason} | ({"until": until} if until else {})
        result = self.service.members.set_tier_override(external_id, body, actor=by.name, override_id=secrets.token_hex(8), stores=by.stores)
        return result if isinstance(result, Problem) else result.body

    def end_tier_override(self, by: Staff, external_id: str) -> dict[str, Any] | Problem:
        if (refused := by.require("members.tier_override")) is not None:
            return refused
        result = self.service.members.end_tier_override(external_id, actor=by.name, request_id=secrets.token_hex(8), stores=by.stores)
        return result if isinstance(result, Problem) else result.body

    def event(self, by: Staff, event_id: str) -> dict[str, Any] | Problem:
        """One stored event with its decision and trace, looked up by id."""
        if (refused := by.require("members.read")) is not None:
            return refused
        with self.service.engine.connect() as conn:
            row = conn.execute(
                select(t.events, t.members.c.home_store)
                .outerjoin(t.members, t.members.c.id == t.events.c.member_id)
                .where(t.events.c.id == event_id)
            ).first()
        if row is None or (by.stores is not None and row.home_store not in by.stores):
            return not_found("event", event_id)
        return {
            "id": row.id, "type": row.type, "member_id": row.external_member_id, "occurred_at": row.occurred_at.isoformat(),
            "store": row.store, "version": row.version, "body": row.body, "decision": row.decision,
        }

    def progress(self, by: Staff, external_id: str) -> dict[str, Any] | Problem:
        """What the member still needs for each tier, reward and coupon ("what do I still need")."""
        if (refused := by.require("members.read")) is not None:
            return refused
        return self.service.members.progress(external_id, stores=by.stores)

    # --- reports ---------------------------------------------------------------------------------

    def report(self, by: Staff, name: str, query: dict[str, list[str]]) -> Report | Problem:
        """A report with filters as the API takes them; a store manager sees only their stores."""
        if (refused := by.require("reports.read")) is not None:
            return refused
        return self.service.reports.run(name, query, allowed=by.stores)

    # --- personal data ----------------------------------------------------------------------------

    def _principal(self, by: Staff) -> Principal:
        return Principal(by.name, role_scopes(by.roles), by.stores)

    def profile(self, by: Staff, external_id: str) -> dict[str, Any] | Problem:
        """A member's personal data, masked (phone 138****0000)."""
        if (refused := by.require("members.read")) is not None:
            return refused
        return self.service.subjects.profile(external_id, principal=self._principal(by))

    def reveal(self, by: Staff, external_id: str, reason: str) -> dict[str, Any] | Problem:
        """The personal data in full, for a stated reason; audited."""
        if (refused := by.require("members.reveal")) is not None:
            return refused
        return self.service.subjects.reveal(external_id, {"reason": reason}, principal=self._principal(by))

    def export_subject(self, by: Staff, external_id: str, reason: str) -> dict[str, Any] | Problem:
        """Everything held on one member (a subject access request); audited."""
        if (refused := by.require("members.reveal")) is not None:
            return refused
        return self.service.subjects.export(external_id, {"reason": reason}, principal=self._principal(by))

    def erase(self, by: Staff, external_id: str, reason: str) -> dict[str, Any] | Problem:
        """Erase a member's personal data; balances and decisions stay under a pseudonym."""
        if (refused := by.require("members.erase")) is not None:
            return refused
        return self.service.subjects.erase(external_id, {"reason": reason}, principal=self._principal(by))

    def export_members(self, by: Staff, *, full: bool, reason: str | None = None) -> list[dict[str, Any]] | Problem:
        """Every member (of the user's stores): masked, or in full with a reason (audited)."""
        if (refused := by.require("members.export_full" if full else "members.read")) is not None:
            return refused
        rows = self.service.subjects.export_members(principal=self._principal(by), full=full, reason=reason)
        return rows if isinstance(rows, Problem) else list(rows)

    # --- audit -----------------------------------------------------------------------------------

    def audit(self, by: Staff, *, actor: str = "", action: str = "", target: str = "", limit: int = 200) -> list[dict[str, Any]] | Problem:
        if (refused := by.require("audit.read")) is not None:
            return refused
        query = select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(max(1, min(limit, 1000)))
        if actor:
            query = query.where(t.audit_log.c.actor.contains(actor, autoescape=True))
        if action:
            query = query.where(t.audit_log.c.action.contains(action, autoescape=True))
        if target:
            query = query.where(t.audit_log.c.target.contains(target, autoescape=True))
        with self.service.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            {"id": r.id, "at": r.at.isoformat(), "actor": r.actor, "action": r.action, "target": r.target, "detail": json.dumps(r.detail, ensure_ascii=False)}
            for r in rows
        ]

    # --- users and keys --------------------------------------------------------------------------

    def users(self, by: Staff) -> list[dict[str, object]] | Problem:
        return self.service.staff.list_users(by=by)

    def create_user(self, by: Staff, username: str, roles: list[str], stores: list[str]) -> str | Problem:
        """A new user with a one-time password (returned once, changed at first sign-in)."""
        if (refused := by.require("users.admin")) is not None:
            return refused
        if not username.strip():
            return invalid("a user needs a name", [FieldError("/username", "missing_field", "give a username")], code="missing_field")
        password = secrets.token_urlsafe(12)
        made = self.service.access.create_user(
            username.strip(), password, roles, created_by=by.name, stores=stores or None, must_change_password=True, locale=by.locale,
        )
        return made if isinstance(made, Problem) else password

    def revoke_sessions(self, by: Staff, username: str) -> int | Problem:
        return self.service.staff.revoke_sessions(username, by=by)

    def keys(self, by: Staff) -> list[dict[str, object]] | Problem:
        if (refused := by.require("users.admin")) is not None:
            return refused
        return self.service.access.list_keys()

    def create_key(self, by: Staff, name: str, scopes: list[str], stores: list[str]) -> tuple[str, str] | Problem:
        if (refused := by.require("users.admin")) is not None:
            return refused
        return self.service.access.create_key(name.strip() or "key", scopes, created_by=by.name, stores=stores or None)

    def revoke_key(self, by: Staff, key_id: str) -> bool | Problem:
        if (refused := by.require("users.admin")) is not None:
            return refused
        return self.service.access.revoke_key(key_id, actor=by.name)
