"""Applying an event: the pure engine's decision written in one transaction.

The order inside the transaction: the event id is looked up first (a retry gets the stored
answer); the member row is locked; time-driven events due before the event are applied and stored
under their deterministic ids; the event is evaluated; budgets are claimed with guarded updates,
and when one is found spent the event is evaluated again with that budget marked spent (bounded),
so the trace shows the skip; then the event, ledger, lots, balances, coupons and outbox are written.
A refused event writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    RowMapping,
    String,
    bindparam,
    cast,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from perkflow import logs
from perkflow.engine import (
    Decision,
    Event,
    MemberState,
    Program,
    evaluate,
    parse_event,
)
from perkflow.engine.evaluate import next_due
from perkflow.engine.events import parse_instant
from perkflow.engine.exposure import campaign_groups, campaign_rules
from perkflow.engine.referrals import code_owner, referrer_event
from perkflow.rules.builtins import SYSTEM_EVENT_TYPES
from perkflow.storage import tables as t

from . import held
from .audit import record
from .problems import FieldError, Problem, conflict, invalid, not_found
from .state_store import load_state, save_campaign_groups, save_decision
from .versions import IN_FORCE_HASH, IN_FORCE_ID, Versions

FUTURE_LIMIT = timedelta(minutes=5)
BUDGET_RETRIES = 4
MAX_BATCH = 1000
MAX_INTEGER = 2**53 - 1  # what JSON carries exactly; ledger columns hold 64 bits
_INT64 = 2**63 - 1
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")  # PostgreSQL refuses NUL; UTF-8 cannot encode lone surrogates

# The event path's statements, built once (see perkflow/service/state_store.py).
_STORED = select(t.events.c.body, t.events.c.body_hash, t.events.c.decision).where(t.events.c.id == bindparam("event_id"))
# What every event asks first, in one round trip (each statement costs about a twentieth of an
# event's CPU): whether the id is stored, the version in force at its instant, and whether any
# webhook subscription listens (which decides if webhook messages are kept), and the budgets'
# use ("length:used:limit:key" items, as a key may hold any character). That snapshot is a hint the engine decides with: the guarded claims
# (_CLAIM) are what enforce a budget, so reading it before the member's lock is as safe as after.
_BUDGET_ITEM = (
    cast(func.length(t.budgets.c.key), String) + ":" + cast(t.budgets.c.used, String) + ":" + cast(t.budgets.c.limit, String) + ":" + t.budgets.c.key
)
BUDGETS_ALONG = select(func.aggregate_strings(_BUDGET_ITEM, ""))
_FIRST_QUESTIONS = select(
    select(t.events.c.body_hash).where(t.events.c.id == bindparam("event_id")).scalar_subquery().label("stored"),
    IN_FORCE_ID.label("version_id"),
    IN_FORCE_HASH.label("version_hash"),
    exists().where(t.webhook_subscriptions.c.active.is_(True)).label("listening"),
    BUDGETS_ALONG.scalar_subquery().label("budgets"),
)
# A member's debts ride along with the row ("points:818,growth:5"), saving the event path a statement.
_DEBTS_ALONG = (
    select(func.aggregate_strings(t.member_balances.c.balance + ":" + cast(t.member_balances.c.debt, String), ","))
    .where(t.member_balances.c.member_id == t.members.c.id, t.member_balances.c.debt > 0)
    .scalar_subquery()
    .label("debts")
)
_MEMBER_BY_EXTERNAL_ID = select(t.members, _DEBTS_ALONG).where(t.members.c.external_id == bindparam("external_id"))
_MEMBER_BY_ID = select(t.members, _DEBTS_ALONG).where(t.members.c.id == bindparam("member_pk"))
_LOCKED = {False: (_MEMBER_BY_EXTERNAL_ID, _MEMBER_BY_ID), True: (_MEMBER_BY_EXTERNAL_ID.with_for_update(), _MEMBER_BY_ID.with_for_update())}
_BUDGETS = select(t.budgets.c.key, t.budgets.c.used, t.budgets.c.limit)
_CLAIM = (
    update(t.budgets)
    .where(t.budgets.c.key == bindparam("budget_key"), t.budgets.c.used + bindparam("units") <= t.budgets.c.limit)
    .values(used=t.budgets.c.used + bindparam("units"))
)
_INSERT_EVENT = insert(t.events)


def budget_snapshot(items: str | None) -> tuple[dict[str, int], dict[str, int]]:
    """(used, limit) by key from _FIRST_QUESTIONS' "length:used:limit:key" items."""
    used: dict[str, int] = {}
    limits: dict[str, int] = {}
    at, text = 0, items or ""
    while at < len(text):
        fields = []
        for _ in range(3):
            colon = text.index(":", at)
            fields.append(int(text[at:colon]))
            at = colon + 1
        length, spent, limit = fields
        key = text[at : at + length]
        used[key], limits[key] = spent, limit
        at += length
    return used, limits


class _PeerChanged(Exception):
    """The member was bound to a referrer between the unlocked look and the lock."""


@dataclass(frozen=True)
class Applied:
    status: int  # 201 when applied now, 200 for a retry or a dry run
    body: dict[str, Any]


def body_hash(raw: Mapping[str, Any]) -> str:
    text = json.dumps(raw, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _differences(old: Any, new: Any, pointer: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(key), new.get(key), f"{pointer}/{key}")
        return out
    return [] if old == new else [pointer or "/"]


def unstorable(value: Any, pointer: str = "") -> FieldError | None:
    """The first text or number of an event that the database cannot hold, before anything is
    written: a NUL character or a lone surrogate, or an integer beyond what JSON carries exactly."""
    if isinstance(value, str):
        if _BAD_TEXT.search(value):
            return FieldError(pointer, "invalid_text", "text may not hold NUL characters or unpaired surrogates")
    elif isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > MAX_INTEGER:
            return FieldError(pointer, "number_too_large", f"whole numbers go up to {MAX_INTEGER}")
    elif isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            here = f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
            found = (unstorable(key, here) if isinstance(key, str) else None) or unstorable(item, here)
            if found is not None:
                return found
    return None


def _too_large(decision: Decision) -> bool:
    """Whether an amount the decision would store does not fit the ledger's 64-bit columns (an
    expression can multiply an amount that is itself in range)."""
    state = decision.state
    amounts = [e.amount for e in decision.effects] + [state.balance(b) for b in state.lots]
    return any(abs(a) > _INT64 for a in [*amounts, *state.debts.values()])


def _event_problems(errors: list[Any]) -> Problem:
    first = errors[0]
    return invalid(first.message, [FieldError(e.pointer, e.code, e.message) for e in errors], code=first.code)


class EventService:
    def __init__(self, engine: Engine, versions: Versions, clock: Callable[[], datetime]) -> None:
        self.engine, self.versions, self.clock = engine, versions, clock
        # Called with (raw event, result) after every post: the API's metrics count events here.
        self.observers: list[Callable[[Any, Applied | Problem], None]] = []

    def post(
        self,
        raw: Any,
        *,
        dry_run: bool = False,
        stores: frozenset[str] | None = None,
        source: str = "api",
        audit: tuple[str, str, str, dict[str, Any]] | None = None,
        hold: Callable[[Connection], Problem | None] | None = None,
    ) -> Applied | Problem:
        """Apply one event. `audit` (actor, action, target, detail) is recorded in the same
        transaction when the event is applied, for events made on someone's behalf. `hold` runs in
        that transaction before anything is written, when the event is to be applied: a claim the
        event depends on (a coupon code's use); a Problem it returns refuses the event."""
        named = logs.event_id.set(raw["id"] if isinstance(raw, dict) and isinstance(raw.get("id"), str) else "")
        try:
            result = self._post(raw, dry_run, stores, source, audit, hold)
            for observe in self.observers:
                observe(raw, result)
        finally:
            logs.event_id.reset(named)
        return result

    def _post(
        self,
        raw: Any,
        dry_run: bool,
        stores: frozenset[str] | None,
        source: str,
        audit: tuple[str, str, str, dict[str, Any]] | None,
        hold: Callable[[Connection], Problem | None] | None,
    ) -> Applied | Problem:
        if not isinstance(raw, dict):
            return invalid("an event is a JSON object", [FieldError("", "wrong_type", "send a JSON object")], code="wrong_type")
        if (bad := unstorable(raw)) is not None:
            return invalid(bad.message, [bad], code=bad.code)
        occurred_at = parse_instant(raw.get("occurred_at"))
        now = self.clock()
        if occurred_at is not None and occurred_at > now + FUTURE_LIMIT:
            return invalid(
                "the event is in the future",
                [FieldError("/occurred_at", "event_in_future", f"occurred_at is more than 5 minutes after the server's time {now.isoformat()}")],
                code="event_in_future",
            )
        if source == "api" and isinstance(raw.get("type"), str) and raw["type"] in SYSTEM_EVENT_TYPES:
            return invalid(
                f"'{raw['type']}' events are made by Perkflow itself",
                [FieldError("/type", "system_event_type", "adjustments go through POST /api/v1/members/{id}/adjustments; expiry and tier reviews happen by themselves")],
                code="system_event_type",
            )
        if source == "api" and raw.get("type") == "code_claim":
            return invalid(
                "'code_claim' events are made by claiming a code",
                [FieldError("/type", "system_event_type", "claim a code with POST /api/v1/coupon-codes/{code}/claim")],
                code="system_event_type",
            )
        if stores is not None and (not isinstance(raw.get("store"), str) or raw["store"] not in stores):
            return Problem(403, "store_not_allowed", "Not allowed", "this API key may only post events of its own stores")
        digest = body_hash(raw)
        for _ in range(3):
            try:
                return self._post_once(raw, digest, occurred_at, now, dry_run, source, audit, hold)
            except (IntegrityError, _PeerChanged):
                # Another request created the same event or member first, or bound the member to a
                # referrer after we looked: the retry sees it.
                continue
        return conflict("busy", "the event could not be applied after retries; try again")

    def post_batch(self, raws: Any, *, dry_run: bool = False, stores: frozenset[str] | None = None) -> list[dict[str, Any]] | Problem:
        """A bulk import: each event applied on its own (in its own transaction, idempotent by its
        id), in the order given; one result per event, {id, status, body} or {id, status, problem}."""
        if not isinstance(raws, list):
            return invalid("a batch is a JSON list of events", [FieldError("", "wrong_type", "send a JSON list of events")], code="wrong_type")
        if len(raws) > MAX_BATCH:
            return invalid(
                f"a batch holds at most {MAX_BATCH} events, this one {len(raws)}",
                [FieldError("", "batch_too_large", f"split it into batches of at most {MAX_BATCH}")], code="batch_too_large",
            )
        results: list[dict[str, Any]] = []
        for raw in raws:
            result = self.post(raw, dry_run=dry_run, stores=stores)
            event_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
            if isinstance(result, Problem):
                results.append({"id": event_id, "status": result.status, "problem": result.to_dict()})
            else:
                results.append({"id": event_id, "status": result.status, "body": result.body})
        return results

    def _post_once(
        self,
        raw: dict[str, Any],
        digest: str,
        occurred_at: datetime | None,
        now: datetime,
        dry_run: bool,
        source: str,
        audit: tuple[str, str, str, dict[str, Any]] | None,
        hold: Callable[[Connection], Problem | None] | None = None,
    ) -> Applied | Problem:
        with self.engine.begin() as conn:
            event_id = raw.get("id")
            first = conn.execute(_FIRST_QUESTIONS, {"event_id": event_id if isinstance(event_id, str) else None, "at": occurred_at}).one()
            if first.stored is not None and (stored := self._stored(conn, raw, digest)) is not None:
                return stored
            if occurred_at is None:
                event, errors = parse_event(raw, {})
                return _event_problems(errors)
            program = self.versions.in_force(conn, occurred_at, (first.version_id, first.version_hash))
            if isinstance(program, Problem):
                return program
            event, errors = parse_event(raw, program.event_types)
            if event is None:
                return _event_problems(errors)
            peer = self._referral_peer(conn, program, event)
            row, peer_row = self._lock_members(conn, event.member_id, peer)
            if row is None:
                if event.type != "signup" and not program.scheme.auto_enroll:
                    return invalid(
                        f"no member '{event.member_id}'",
                        [FieldError("/member_id", "unknown_member", "create the member first (PUT /api/v1/members/{id}) or post a signup event")],
                        code="unknown_member",
                    )
                row = self._create_member(conn, event, program, now)
            captured = event.attributes.get("hold") if event.type == "purchase" else None
            if captured and (refused := held.check_capture(conn, program, row["id"], event, now)) is not None:
                conn.rollback()
                return refused
            state = load_state(conn, row, program, self._earning_ids(event))
            if event.type == "purchase" and state.referral is not None and state.referral.status == "pending" and peer is None:
                # bound since the unlocked look: start again to lock the referrer too, in key order
                # (a referrer whose id is gone, erased under a pseudonym, is looked for and not found:
                # the referee's side applies, the referrer's event is not made)
                raise _PeerChanged
            state, _ = self._apply_due(conn, program, row["id"], state, event.occurred_at, now)
            referrer = load_state(conn, peer_row, program) if peer_row is not None and event.type == "signup" else None
            decision = self._decide(conn, program, state, event, referrer, budget_snapshot(first.budgets))
            if decision.rejection is not None:
                conn.rollback()
                r = decision.rejection
                return invalid(r.message, [FieldError(r.pointer, r.code, r.message)], code=r.code)
            if (refused := held.check_spending(conn, row["id"], decision, event.occurred_at, now, captured or None)) is not None:
                conn.rollback()
                return refused
            if _too_large(decision):
                conn.rollback()
                message = "the event's effects are too large to store: an amount is beyond 64 bits"
                too_large = FieldError("/attributes", "number_too_large", message)
                return invalid(message, [too_large], code="number_too_large")
            body = response_body(program, decision, event)
            if dry_run:
                conn.rollback()
                return Applied(200, {**body, "dry_run": True})
            if hold is not None and (refused := hold(conn)) is not None:
                conn.rollback()
                return refused
            self._store(conn, program, row["id"], state, decision, event, raw, digest, body, now, source, first.listening)
            if captured:
                held.mark_captured(conn, captured, event.id, now)
            derived = referrer_event(program, decision, event)
            if derived is not None and peer_row is not None:
                self._reward_referrer(conn, program, peer_row, derived, now, first.listening)
            if audit is not None:
                record(conn, now, *audit)
            return Applied(201, body)

    def _stored(self, conn: Connection, raw: dict[str, Any], digest: str) -> Applied | Problem | None:
        event_id = raw.get("id")
        if not isinstance(event_id, str):
            return None
        row = conn.execute(_STORED, {"event_id": event_id}).first()
        if row is None:
            return None
        if row.body_hash != digest:
            fields = _differences(row.body, raw)
            return conflict(
                "event_id_reused",
                f"event '{event_id}' was already applied with a different body (differs at {', '.join(fields)})",
                differing_fields=fields,
            )
        return Applied(200, row.decision)

    def get(self, event_id: str, *, stores: frozenset[str] | None = None) -> dict[str, Any] | Problem:
        """An applied event as posted, with its stored decision and trace. A caller bound to stores
        sees the events made in its stores and those of its stores' members."""
        query = (
            select(t.events, t.members.c.home_store)
            .select_from(t.events.outerjoin(t.members, t.members.c.id == t.events.c.member_id))
            .where(t.events.c.id == event_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None or (stores is not None and row["store"] not in stores and row["home_store"] not in stores):
            return not_found("event", event_id)
        return {
            "id": row["id"], "event": row["body"], "decision": row["decision"], "source": row["source"],
            "recorded_at": row["recorded_at"].isoformat(),
        }

    def _member_row(self, conn: Connection, external_id: str) -> RowMapping | None:
        return member_row(conn, external_id, lock=True)

    @staticmethod
    def _referral_peer(conn: Connection, program: Program, event: Event) -> str | None:
        """The other member an event may change or read: the member a signup's referral code names,
        or the referrer of a member whose first purchase is still to decide the referral."""
        if program.scheme.referrals is None:
            return None
        if event.type == "signup":
            code = event.attributes.get("referral_code")
            return code_owner(code) if isinstance(code, str) and code and code != event.member_id else None
        if event.type == "purchase":
            found = member_row(conn, event.member_id)
            referral = found["referral"] if found is not None else None
            if referral and referral.get("status") == "pending":
                return str(referral["referred_by"])
        return None

    def _lock_members(self, conn: Connection, external_id: str, peer: str | None) -> tuple[RowMapping | None, RowMapping | None]:
        """The event's member row and the peer's, locked in the order of their primary keys so that
        two members' events that touch each other cannot deadlock."""
        if peer is None:
            return self._member_row(conn, external_id), None
        mine, theirs = member_row(conn, external_id), member_row(conn, peer)
        if theirs is None:
            return self._member_row(conn, external_id), None
        if mine is None or theirs["id"] < mine["id"]:
            peer_row = self._member_row(conn, peer)
            return self._member_row(conn, external_id), peer_row
        row = self._member_row(conn, external_id)
        return row, self._member_row(conn, peer)

    def _reward_referrer(self, conn: Connection, program: Program, peer_row: RowMapping, event: Event, now: datetime, listening: bool) -> None:
        """The referrer's event for a referee's qualifying first purchase, in the purchase's
        transaction (the referrer's row is locked): its due events first, then the event, stored
        under its deterministic id; a refusal (an event older than the referrer's latest beyond the
        scheme's limit) stores nothing, as in `perkflow simulate`."""
        if conn.execute(select(t.events.c.id).where(t.events.c.id == event.id)).first() is not None:
            return
        state = load_state(conn, peer_row, program)
        state, _ = self._apply_due(conn, program, peer_row["id"], state, event.occurred_at, now)
        decision = self._decide(conn, program, state, event)
        if decision.rejection is not None:
            return
        raw = {
            "id": event.id, "type": event.type, "member_id": event.member_id, "occurred_at": event.occurred_at.isoformat(),
            "store": event.store, "channel": event.channel, "attributes": dict(event.attributes),
        }
        body = response_body(program, decision, event)
        self._store(conn, program, peer_row["id"], state, decision, event, raw, body_hash(raw), body, now, "referral", listening)

    def _create_member(self, conn: Connection, event: Event, program: Program, now: datetime) -> RowMapping:
        conn.execute(
            insert(t.members).values(
                external_id=event.member_id, home_store=event.store, joined_at=event.occurred_at,
                tier=program.lowest_tier(), tier_since=event.occurred_at if program.lowest_tier() else None,
                tags=[], attributes={}, counters={}, caps={}, rewards={}, created_at=now, updated_at=now,
            )
        )
        row = self._member_row(conn, event.member_id)
        assert row is not None
        return row

    @staticmethod
    def _earning_ids(event: Event) -> list[str]:
        original = event.attributes.get("original_event_id") if event.type == "refund" else None
        return [original] if original else []

    def apply_due(self, external_id: str, until: datetime) -> int:
        """Apply a member's time-driven events due at or before `until` (the scheduler's path), in
        the member's own transaction, with the member row locked: the same code that applies them
        before an event. How many were applied; 0 when none were due, or another process applied
        them first (their ids are stored once)."""
        for _ in range(3):
            try:
                with self.engine.begin() as conn:
                    row = self._member_row(conn, external_id)
                    if row is None or row["status"] != "active":
                        return 0
                    program = self.versions.in_force(conn, until)
                    if isinstance(program, Problem):
                        return 0
                    state = load_state(conn, row, program)
                    _, applied = self._apply_due(conn, program, row["id"], state, until, self.clock())
                    return applied
            except IntegrityError:
                continue  # another scheduler stored the same event first: look again
        return 0

    def _apply_due(
        self, conn: Connection, program: Program, member_pk: int, state: MemberState, until: datetime, now: datetime
    ) -> tuple[MemberState, int]:
        """Time-driven events due before the event, each under the version in force at its time."""
        applied = 0
        while batch := next_due(program, state, until):
            for due in batch:
                in_force = self.versions.in_force(conn, due.occurred_at)
                due_program = in_force if isinstance(in_force, Program) else program
                decision = evaluate(due_program, state, due)
                attributes = {
                    k: datetime.fromtimestamp(v, UTC).isoformat() if k in ("expires_at", "since") else v for k, v in due.attributes.items()
                }
                raw = {
                    "id": due.id, "type": due.type, "member_id": due.member_id, "occurred_at": due.occurred_at.isoformat(),
                    "store": "", "channel": "system", "attributes": attributes,
                }
                body = response_body(due_program, decision, due)
                self._store(conn, due_program, member_pk, state, decision, due, raw, body_hash(raw), body, now, "system")
                state = decision.state
                applied += 1
        return state, applied

    def _decide(
        self, conn: Connection, program: Program, state: MemberState, event: Event, referrer: MemberState | None = None,
        snapshot: tuple[dict[str, int], dict[str, int]] | None = None,
    ) -> Decision:
        """`snapshot`: the budgets' (used, limit) by key when already read in this transaction."""
        if snapshot is None:
            rows = conn.execute(_BUDGETS).all()
            snapshot = {r.key: r.used for r in rows}, {r.key: r.limit for r in rows}
        used, limits = snapshot
        for _ in range(BUDGET_RETRIES):
            decision = evaluate(program, state, event, used, referrer=referrer)
            spent = self._claim(conn, decision.budget_uses, decision.budget_limits, limits)
            if spent is None:
                return decision
            # Someone else used it up since the snapshot: mark it spent and decide again.
            used[spent] = limits.get(spent, decision.budget_limits.get(spent, 0))
        spent_all = {**used, **{k: limits.get(k, decision.budget_limits.get(k, 0)) for k in decision.budget_uses}}
        return evaluate(program, state, event, spent_all, referrer=referrer)

    @staticmethod
    def _claim(conn: Connection, uses: Mapping[str, int], new_limits: Mapping[str, int], known: Mapping[str, int]) -> str | None:
        """Claim every budget the decision uses; the key that could not be claimed, if any. Claims
        made before a failed one are undone by the savepoint. A budget of a period or a store gets
        its row when first used (`new_limits`); two workers making it at once make one."""
        if not uses:
            return None
        savepoint = conn.begin_nested()
        for key, units in sorted(uses.items()):
            if key not in known and key in new_limits:
                made = _insert_for(conn)(t.budgets).values(key=key, limit=new_limits[key], used=0)
                conn.execute(made.on_conflict_do_nothing(index_elements=["key"]))
            claimed = conn.execute(_CLAIM, {"budget_key": key, "units": units})
            if claimed.rowcount != 1:
                savepoint.rollback()
                return key
        savepoint.commit()
        return None

    def _store(
        self, conn: Connection, program: Program, member_pk: int, before: MemberState, decision: Decision, event: Event,
        raw: dict[str, Any], digest: str, body: dict[str, Any], now: datetime, source: str, listening: bool | None = None,
    ) -> None:
        conn.execute(
            _INSERT_EVENT,
            {
                "id": event.id, "member_id": member_pk, "external_member_id": event.member_id, "type": event.type,
                "occurred_at": event.occurred_at, "store": event.store, "channel": event.channel, "body": raw,
                "body_hash": digest, "decision": body, "version": decision.version, "source": source, "recorded_at": now,
            },
        )
        save_decision(conn, member_pk, before, decision, event.occurred_at, now, listening)
        if program.scheme.campaigns and decision.trace:
            save_campaign_groups(conn, member_pk, campaign_groups(campaign_rules(program.scheme), decision), event.occurred_at)


def _insert_for(conn: Connection) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT DO NOTHING (SQLite and PostgreSQL)."""
    return postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert


def member_row(conn: Connection, external_id: str, *, lock: bool = False) -> RowMapping | None:
    """The member row (locked on PostgreSQL when `lock`); a member merged into another answers
    for the survivor, so events and look-ups under the old id reach the member that holds the value."""
    by_external_id, by_id = _LOCKED[lock and conn.dialect.name == "postgresql"]
    row = conn.execute(by_external_id, {"external_id": external_id}).mappings().first()
    for _ in range(8):  # a chain of merges is followed, a few links at most
        if row is None or row["status"] != "merged" or row["merged_into"] is None:
            return row
        row = conn.execute(by_id, {"member_pk": row["merged_into"]}).mappings().first()
    return row


def response_body(program: Program, decision: Decision, event: Event) -> dict[str, Any]:
    """What an integrator gets back: the effects, the member after the event, the version, the trace."""
    state = decision.state
    body = decision.to_dict()
    body["occurred_at"] = event.occurred_at.isoformat()
    body["balances"] = {b: state.available(b, event.occurred_at) for b in program.balances}
    body["tier"] = state.tier
    return body
