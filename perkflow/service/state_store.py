"""Reading a member's engine state from the tables and writing back what a decision changed.

The write is a diff of two `MemberState`s (before and after the decision), so whatever the engine
did to lots, coupons and counters lands exactly; the ledger rows come from the decision's effects.
All in the caller's transaction, on SQLAlchemy Core.

Every statement of the event path is built once, here, with named parameters: SQLAlchemy then
keeps its cache key and compiled form, and an event pays for executing statements, not for
building them (docs/decisions/0022). Rows of one kind go in one executemany, and a balance is
written with one upsert.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from perkflow.engine import Decision, Lot, MemberState, Program
from perkflow.engine.evaluate import lot_order
from perkflow.engine.state import CounterState, Coupon, Earning, GoalState, Referral, TierOverride
from perkflow.storage import tables as t

_LOTS = select(t.lots).where(t.lots.c.member_id == bindparam("member_pk"), t.lots.c.amount > 0)
_DEBTS = select(t.member_balances.c.balance, t.member_balances.c.debt).where(
    t.member_balances.c.member_id == bindparam("member_pk"), t.member_balances.c.debt > 0
)
_COUPONS = (
    select(t.coupons).where(t.coupons.c.member_id == bindparam("member_pk")).order_by(t.coupons.c.issued_at, t.coupons.c.id)
)
_EARNINGS = select(t.earnings).where(
    t.earnings.c.event_id.in_(bindparam("event_ids", expanding=True)), t.earnings.c.member_id == bindparam("member_pk")
)
_INSERT_LEDGER = insert(t.ledger)
_INSERT_LOTS = insert(t.lots)
_LOT_AMOUNT = update(t.lots).where(t.lots.c.id == bindparam("lot_id")).values(amount=bindparam("new_amount"))
_LOT_ACTIVATED = update(t.lots).where(t.lots.c.id == bindparam("lot_id")).values(available_at=bindparam("activated_at"))
_INSERT_COUPON = insert(t.coupons)
_COUPON_CHANGED = update(t.coupons).where(t.coupons.c.id == bindparam("coupon_id"))
_INSERT_EARNING = insert(t.earnings)
_EARNING_REFUNDED = update(t.earnings).where(t.earnings.c.event_id == bindparam("earning_event_id"))
_INSERT_TIER_HISTORY = insert(t.tier_history)
_INSERT_OUTBOX = insert(t.outbox)
_UPDATE_MEMBER = update(t.members).where(t.members.c.id == bindparam("member_pk"))
_ANY_SUBSCRIPTION = select(t.webhook_subscriptions.c.id).where(t.webhook_subscriptions.c.active.is_(True)).limit(1)
_KNOWN_GROUPS = select(t.campaign_members.c.campaign).where(
    t.campaign_members.c.member_id == bindparam("member_pk"),
    t.campaign_members.c.campaign.in_(bindparam("campaigns", expanding=True)),
)
_INSERT_GROUPS = insert(t.campaign_members)


def _balance_upsert(insert_: Any) -> Any:
    """INSERT ... ON CONFLICT (member_id, balance) DO UPDATE: a balance's row made or rewritten in
    one statement (the dialect's insert: SQLite and PostgreSQL spell it alike)."""
    made = insert_(t.member_balances)
    return made.on_conflict_do_update(
        index_elements=[t.member_balances.c.member_id, t.member_balances.c.balance],
        set_={"total": made.excluded.total, "debt": made.excluded.debt},
    )


_UPSERT_BALANCE = {"postgresql": _balance_upsert(postgresql_insert), "sqlite": _balance_upsert(sqlite_insert)}


def _counters_from_json(data: dict[str, Any]) -> dict[str, CounterState]:
    return {
        name: CounterState(
            total=c.get("total", 0),
            days=tuple((d, v) for d, v in c.get("days", [])),
            last_day=c.get("last_day", 0),
            streak=c.get("streak", 0),
        )
        for name, c in data.items()
    }


def _counters_to_json(counters: Iterable[tuple[str, CounterState]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, c in counters:
        item: dict[str, Any] = {}
        if c.total:
            item["total"] = c.total
        if c.days:
            item["days"] = [list(x) for x in c.days]
        if c.streak:
            item["last_day"], item["streak"] = c.last_day, c.streak
        out[name] = item
    return out


def _goals_from_json(data: dict[str, Any]) -> dict[str, GoalState]:
    return {
        goal_id: GoalState(
            period=g.get("period", ""),
            progress=g.get("progress", 0),
            last_day=g.get("last_day", 0),
            completions=g.get("completions", 0),
            completed_in=g.get("completed_in", ""),
            earned_at=datetime.fromisoformat(g["earned_at"]) if g.get("earned_at") else None,
        )
        for goal_id, g in data.items()
    }


def _referral_from_json(data: dict[str, Any] | None) -> Referral | None:
    if not data:
        return None
    return Referral(data["referred_by"], datetime.fromisoformat(data["bound_at"]), data["status"], data.get("decided_by", ""))


def _referral_to_json(referral: Referral | None) -> dict[str, Any] | None:
    if referral is None:
        return None
    return {
        "referred_by": referral.referred_by, "bound_at": referral.bound_at.isoformat(), "status": referral.status,
        "decided_by": referral.decided_by,
    }


def _goals_to_json(goals: Iterable[tuple[str, GoalState]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for goal_id, g in goals:
        item: dict[str, Any] = {"period": g.period, "progress": g.progress, "last_day": g.last_day, "completions": g.completions}
        if g.completed_in:
            item["completed_in"] = g.completed_in
        if g.earned_at is not None:
            item["earned_at"] = g.earned_at.isoformat()
        out[goal_id] = item
    return out


def _override_from_json(data: dict[str, Any] | None) -> TierOverride | None:
    if not data:
        return None
    until = datetime.fromisoformat(data["until"]) if data.get("until") else None
    return TierOverride(data["kind"], data["tier"], data["reason"], datetime.fromisoformat(data["set_at"]), until, data.get("before"))


def _override_to_json(override: TierOverride | None) -> dict[str, Any] | None:
    if override is None:
        return None
    until = override.until.isoformat() if override.until else None
    return {"kind": override.kind, "tier": override.tier, "reason": override.reason, "set_at": override.set_at.isoformat(), "until": until, "before": override.before}


def load_state(conn: Connection, row: RowMapping, program: Program, earning_ids: Iterable[str] = ()) -> MemberState:
    """The engine's view of one member: lots with something left, debts, coupons, and the
    earnings records the event needs (a refund's original purchase)."""
    member_pk = row["id"]
    by_balance: dict[str, list[Lot]] = {}
    key = {"member_pk": member_pk}
    for lot in conn.execute(_LOTS, key).mappings():
        by_balance.setdefault(lot["balance"], []).append(
            Lot(
                lot["id"],
                lot["balance"],
                lot["amount"],
                lot["earned_at"],
                lot["expires_at"],
                lot["part"],
                lot["available_at"],
                lot["source_event"],
                lot["rule"],
            )
        )
    lots = {
        b: tuple(sorted(v, key=lot_order(program, b))) if b in program.balances else tuple(v) for b, v in by_balance.items()
    }
    if "debts" in row:  # read with the row (events.member_row): "balance:debt,..." or None
        debts = {name: int(debt) for name, _, debt in (pair.rpartition(":") for pair in (row["debts"] or "").split(",") if pair)}
    else:
        debts = {r.balance: r.debt for r in conn.execute(_DEBTS, key)}
    coupons = tuple(
        Coupon(
            c["id"], c["policy"], c["issued_at"], c["valid_from"], c["valid_until"], c["source_event"], c["rule"],
            c["redeemed_at"], c["redeemed_by"], c["voided"], c["code"],
        )
        for c in conn.execute(_COUPONS, key).mappings()
    )
    earnings: dict[str, Earning] = {}
    ids = list(earning_ids)
    if ids:
        for e in conn.execute(_EARNINGS, {**key, "event_ids": ids}).mappings():
            earnings[e["event_id"]] = Earning(
                e["event_id"], e["event_type"], e["amount"], e["refunded"],
                tuple((b, p, n) for b, p, n in e["earned"]), tuple(e["lots"]),
                tuple((b, p, n) for b, p, n in e["paid"]),
            )
    birthday = (row["birthday_month"], row["birthday_day"]) if row["birthday_month"] else None
    segment, segment_on = _stored_segment(conn, member_pk) if program.uses_segments else (None, None)
    return MemberState(
        member_id=row["external_id"],
        joined_at=row["joined_at"],
        tier=row["tier"],
        tier_since=row["tier_since"],
        tier_review_at=row["tier_review_at"],
        grace_until=row["grace_until"],
        tier_override=_override_from_json(row["tier_override"]),
        tags=frozenset(row["tags"] or ()),
        home_store=row["home_store"],
        birthday=birthday,
        lots=lots,
        debts=debts,
        counters=_counters_from_json(row["counters"] or {}),
        coupons=coupons,
        caps={k: (v[0], v[1]) for k, v in (row["caps"] or {}).items()},
        earnings=earnings,
        rewards=dict(row["rewards"] or {}),
        last_event_at=row["last_event_at"],
        last_purchase_at=row["last_purchase_at"],
        goals=_goals_from_json(row["goals"] or {}),
        segment=segment,
        segment_on=segment_on,
        referral=_referral_from_json(row["referral"]),
    )


def _stored_segment(conn: Connection, member_pk: int) -> tuple[str | None, date | None]:
    """The member's segment of the latest run and that run's day; (None, day) when the member had
    no purchase in its period; (None, None) before the first run."""
    latest = select(func.max(t.segment_runs.c.computed_on)).scalar_subquery()
    mine = select(t.member_segments.c.segment).where(t.member_segments.c.member_id == member_pk).scalar_subquery()
    day, segment = conn.execute(select(latest, mine)).one()
    return segment, day


def save_decision(
    conn: Connection, member_pk: int, before: MemberState, decision: Decision, occurred_at: datetime, now: datetime,
    listening: bool | None = None,
) -> None:
    """Write what the decision changed: ledger rows, lots, debts and totals, coupons, earnings,
    tier history, notifications, and the member row. `listening`: whether an active webhook
    subscription exists, when the caller has asked already in this transaction."""
    after = decision.state
    rows = [
        {
            "member_id": member_pk,
            "event_id": decision.event_id,
            "balance": e.balance,
            "part": e.part,
            "kind": e.kind,
            "amount": e.amount,
            "debt": e.debt,
            "lots": [list(x) for x in e.lots],
            "rule": e.rule,
            "version": decision.version,
            "occurred_at": occurred_at,
            "recorded_at": now,
        }
        for e in decision.effects
        if e.balance is not None
    ]
    if rows:
        conn.execute(_INSERT_LEDGER, rows)
    _save_lots(conn, member_pk, before, after)
    _save_balances(conn, member_pk, before, after, {e.balance for e in decision.effects if e.balance})
    _save_coupons(conn, member_pk, before, after)
    _save_earnings(conn, member_pk, before, after)
    history = [
        {"member_id": member_pk, "event_id": decision.event_id, "from_tier": e.previous_tier, "to_tier": e.tier, "reason": e.reason or "", "at": occurred_at}
        for e in decision.effects
        if e.kind == "tier_changed"
    ]
    if before.tier_override != after.tier_override:
        # an override set or ended is a row of its own that moves nothing (from = to = the tier
        # held after it), so that reports count only the tier_changed rows as movements
        reason = f"override_{after.tier_override.kind}" if after.tier_override is not None else "override_ended"
        history.append({"member_id": member_pk, "event_id": decision.event_id, "from_tier": after.tier, "to_tier": after.tier, "reason": reason, "at": occurred_at})
    if history:
        conn.execute(_INSERT_TIER_HISTORY, history)
    notes = [
        {
            "kind": "notification",
            "member_id": member_pk,
            "event_id": decision.event_id,
            "payload": {"template": e.template, "channel": e.channel, "variables": dict(e.variables), "member": after.member_id},
            "created_at": now,
            "next_attempt_at": now,
        }
        for e in decision.effects
        if e.kind == "notify"
    ]
    messages = webhook_messages(decision, occurred_at)
    if messages and (listening if listening is not None else _anyone_listens(conn)):
        notes += [
            {"kind": kind, "member_id": member_pk, "event_id": decision.event_id, "payload": payload, "created_at": now, "next_attempt_at": now}
            for kind, payload in messages
        ]
    if notes:
        conn.execute(_INSERT_OUTBOX, notes)
    conn.execute(
        _UPDATE_MEMBER,
        {
            "member_pk": member_pk,
            "tier": after.tier,
            "tier_since": after.tier_since,
            "tier_review_at": after.tier_review_at,
            "grace_until": after.grace_until,
            "tier_override": _override_to_json(after.tier_override),
            "tags": sorted(after.tags),
            "counters": _counters_to_json(after.counters.items()),
            "caps": {k: list(v) for k, v in after.caps.items()},
            "rewards": dict(after.rewards),
            "last_event_at": after.last_event_at,
            "last_purchase_at": after.last_purchase_at,
            "updated_at": now,
            **({"goals": _goals_to_json(after.goals.items())} if after.goals is not before.goals else {}),
            **({"referral": _referral_to_json(after.referral)} if after.referral is not before.referral else {}),
        },
    )


def save_campaign_groups(conn: Connection, member_pk: int, groups: dict[str, str], occurred_at: datetime) -> None:
    """Record the group each campaign first assigned the member to; the draw is a function of the
    ids, so a later decision never assigns another group and the first row stands."""
    if not groups:
        return
    known = set(conn.execute(_KNOWN_GROUPS, {"member_pk": member_pk, "campaigns": list(groups)}).scalars())
    rows = [{"campaign": k, "member_id": member_pk, "grp": g, "first_at": occurred_at} for k, g in groups.items() if k not in known]
    if rows:
        conn.execute(_INSERT_GROUPS, rows)


WEBHOOK_KINDS = ("points_changed", "tier_changed", "coupon_issued", "coupon_redeemed", "reward_redeemed", "member_notification")
"""What subscriptions may receive; member_notification carries a `notify` sent on the webhook channel."""


def webhook_messages(decision: Decision, occurred_at: datetime) -> list[tuple[str, dict[str, Any]]]:
    """What a decision changed, as webhook messages (kind, data): one points_changed per balance
    that moved, one message per tier change, coupon issued or redeemed and reward redeemed. The
    member is named by the integrator's id only; no personal data leaves in a webhook."""
    after = decision.state
    base = {"member_id": decision.member_id, "event_id": decision.event_id, "event_type": decision.event_type, "occurred_at": occurred_at.isoformat()}
    moved: dict[str, int] = {}
    out: list[tuple[str, dict[str, Any]]] = []
    for e in decision.effects:
        if e.balance is not None:
            moved[e.balance] = moved.get(e.balance, 0) + e.amount
        elif e.kind == "tier_changed":
            out.append(("tier_changed", {**base, "tier": e.tier, "previous_tier": e.previous_tier, "reason": e.reason}))
        elif e.kind == "coupon_issued":
            out.append(("coupon_issued", {**base, "coupon": e.coupon, "policy": e.policy, "valid_until": e.valid_until.isoformat() if e.valid_until else None}))
        elif e.kind == "coupon_redeemed":
            out.append(("coupon_redeemed", {**base, "coupon": e.coupon, "policy": e.policy, "discount": e.discount}))
        elif e.kind == "reward_granted" and decision.event_type == "reward_redemption":
            out.append(("reward_redeemed", {**base, "reward": e.reward}))
    changes = [
        ("points_changed", {**base, "balance": b, "change": n, "balance_after": after.balance(b)}) for b, n in moved.items() if n
    ]
    return changes + out


def _anyone_listens(conn: Connection) -> bool:
    """Whether an active webhook subscription exists: without one, no webhook message is kept (a
    subscription receives what happens from its creation on)."""
    return conn.execute(_ANY_SUBSCRIPTION).first() is not None


def _save_lots(conn: Connection, member_pk: int, before: MemberState, after: MemberState) -> None:
    old = {lot.id: lot for lots in before.lots.values() for lot in lots}
    new = {lot.id: lot for lots in after.lots.values() for lot in lots}
    fresh = [
        {
            "id": lot.id,
            "member_id": member_pk,
            "balance": lot.balance,
            "part": lot.part,
            "amount": lot.amount,
            "original": lot.amount,
            "earned_at": lot.earned_at,
            "expires_at": lot.expires_at,
            "available_at": lot.available_at,
            "source_event": lot.source,
            "rule": lot.rule,
        }
        for lot_id, lot in new.items()
        if lot_id not in old
    ]
    if fresh:
        conn.execute(_INSERT_LOTS, fresh)
    amounts: list[dict[str, Any]] = []
    activated: list[dict[str, Any]] = []
    for lot_id, lot in old.items():
        now = new.get(lot_id)
        amount = now.amount if now is not None else 0
        if amount != lot.amount:
            amounts.append({"lot_id": lot_id, "new_amount": amount})
        if now is not None and now.available_at != lot.available_at:
            activated.append({"lot_id": lot_id, "activated_at": now.available_at})
    if amounts:
        conn.execute(_LOT_AMOUNT, amounts)
    if activated:
        conn.execute(_LOT_ACTIVATED, activated)


def _save_balances(conn: Connection, member_pk: int, before: MemberState, after: MemberState, touched: set[str | None]) -> None:
    rows = [
        {"member_id": member_pk, "balance": balance, "total": after.balance(balance), "debt": after.debts.get(balance, 0)}
        for balance in sorted(b for b in touched if b is not None)  # one order: two events of a member never deadlock
    ]
    if rows:
        conn.execute(_UPSERT_BALANCE[conn.dialect.name], rows)


def _save_coupons(conn: Connection, member_pk: int, before: MemberState, after: MemberState) -> None:
    if before.coupons is after.coupons:
        return
    old = {c.id: c for c in before.coupons}
    fresh: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for coupon in after.coupons:
        previous = old.get(coupon.id)
        if previous is None:
            fresh.append(
                {
                    "id": coupon.id, "member_id": member_pk, "policy": coupon.policy, "issued_at": coupon.issued_at,
                    "valid_from": coupon.valid_from, "valid_until": coupon.valid_until, "source_event": coupon.source,
                    "rule": coupon.rule, "redeemed_at": coupon.redeemed_at, "redeemed_by": coupon.redeemed_by, "voided": coupon.voided,
                    "code": coupon.code,
                }
            )
        elif previous != coupon:
            changed.append(
                {"coupon_id": coupon.id, "redeemed_at": coupon.redeemed_at, "redeemed_by": coupon.redeemed_by, "voided": coupon.voided}
            )
    if fresh:
        conn.execute(_INSERT_COUPON, fresh)
    if changed:
        conn.execute(_COUPON_CHANGED, changed)


def _save_earnings(conn: Connection, member_pk: int, before: MemberState, after: MemberState) -> None:
    if before.earnings is after.earnings:
        return
    fresh: list[dict[str, Any]] = []
    refunded: list[dict[str, Any]] = []
    for event_id, earning in after.earnings.items():
        previous = before.earnings.get(event_id)
        if previous is None:
            fresh.append(
                {
                    "event_id": event_id, "member_id": member_pk, "event_type": earning.event_type, "amount": earning.amount,
                    "refunded": earning.refunded, "earned": [list(x) for x in earning.earned], "lots": list(earning.lots),
                    "paid": [list(x) for x in earning.paid],
                }
            )
        elif previous != earning:
            refunded.append({"earning_event_id": event_id, "refunded": earning.refunded})
    if fresh:
        conn.execute(_INSERT_EARNING, fresh)
    if refunded:
        conn.execute(_EARNING_REFUNDED, refunded)
