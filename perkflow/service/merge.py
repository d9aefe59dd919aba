"""Merging one member into another (a duplicate account found later), in one transaction.

The absorbed member's lots, debts, coupons and earnings records move to the survivor, and so do
its events and tier history; what the survivor holds afterwards is `engine.merge.merge_states`.
The ledger is append-only, so each balance's value moves as a pair of ledger rows (`merge_out` on
the absorbed member, `merge_in` on the survivor) that name the lots moved: both balances still
equal the sums of their ledgers. The absorbed member stays, with status `merged` and
`merged_into` set, so events posted later under its id apply to the survivor. Merging again is a
no-op. The merge is in the audit log and in the outbox.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, insert, select, update

from perkflow.engine import Program
from perkflow.engine.merge import merge_states
from perkflow.storage import tables as t

from .audit import record
from .problems import FieldError, Problem, conflict, invalid, not_found
from .state_store import _counters_to_json, _goals_to_json, _referral_to_json, load_state
from .versions import Versions


def merge_members(
    engine: Engine,
    versions: Versions,
    clock: Callable[[], datetime],
    survivor_id: str,
    absorbed_id: str,
    *,
    actor: str,
    stores: frozenset[str] | None = None,
) -> bool | Problem:
    """Merge `absorbed_id` into `survivor_id`: True when merged now, False when it already was."""
    if survivor_id == absorbed_id:
        return invalid(
            "a member cannot be merged into itself",
            [FieldError("/from", "merge_into_self", "name another member")],
            code="merge_into_self",
        )
    now = clock()
    with engine.begin() as conn:
        query = (
            select(t.members)
            .where(t.members.c.external_id.in_([survivor_id, absorbed_id]))
            .order_by(t.members.c.id)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        rows = {r["external_id"]: r for r in conn.execute(query).mappings()}
        for external_id in (survivor_id, absorbed_id):
            row = rows.get(external_id)
            if row is None or (stores is not None and row["home_store"] not in stores):
                return not_found("member", external_id)
        survivor, absorbed = rows[survivor_id], rows[absorbed_id]
        if absorbed["status"] == "merged":
            if absorbed["merged_into"] == survivor["id"]:
                return False
            return conflict(
                "already_merged", f"member '{absorbed_id}' was already merged into another member"
            )
        if survivor["status"] != "active":
            return conflict(
                "member_not_active",
                f"member '{survivor_id}' is {survivor['status']}: merge into an active member",
            )
        if absorbed["status"] != "active":
            return conflict("member_not_active", f"member '{absorbed_id}' is {absorbed['status']}")
        program = versions.in_force(conn, now)
        moved = _move(conn, now, program if isinstance(program, Program) else None, survivor, absorbed)
        detail = {
            "from": absorbed_id,
            "balances": moved,
            "version": program.version if isinstance(program, Program) else None,
        }
        record(conn, now, actor, "members_merged", survivor_id, detail)
        conn.execute(
            insert(t.outbox).values(
                kind="member_merged",
                member_id=survivor["id"],
                event_id=f"merge:{absorbed_id}",
                payload={"member": survivor_id, "merged": absorbed_id},
                created_at=now,
                next_attempt_at=now,
            )
        )
    return True


def _move(
    conn: Connection, now: datetime, program: Program | None, survivor: RowMapping, absorbed: RowMapping
) -> dict[str, int]:
    """Move everything the absorbed member holds; the value moved per balance."""
    to, source = survivor["id"], absorbed["id"]
    merged = (
        merge_states(program, load_state(conn, survivor, program), load_state(conn, absorbed, program))
        if program
        else None
    )
    moved = _transfer_balances(conn, now, program, survivor, absorbed)
    if merged is not None:
        conn.execute(
            update(t.members)
            .where(t.members.c.id == to)
            .values(
                joined_at=merged.joined_at,
                tier=merged.tier,
                tier_since=merged.tier_since,
                tier_review_at=merged.tier_review_at,
                grace_until=merged.grace_until,
                tags=sorted(merged.tags),
                counters=_counters_to_json(merged.counters.items()),
                caps={k: list(v) for k, v in merged.caps.items()},
                rewards=dict(merged.rewards),
                goals=_goals_to_json(merged.goals.items()),
                referral=_referral_to_json(merged.referral),
                last_event_at=merged.last_event_at,
                updated_at=now,
            )
        )
        if merged.tier != survivor["tier"] and merged.tier is not None:
            conn.execute(
                insert(t.tier_history).values(
                    member_id=to,
                    event_id=f"merge:{absorbed['external_id']}",
                    from_tier=survivor["tier"],
                    to_tier=merged.tier,
                    reason="merge",
                    at=now,
                )
            )
    for table in (t.lots, t.coupons, t.earnings, t.events, t.tier_history):
        conn.execute(update(table).where(table.c.member_id == source).values(member_id=to))
    conn.execute(
        update(t.members)
        .where(t.members.c.id == source)
        .values(status="merged", merged_into=to, tags=[], counters={}, caps={}, rewards={}, goals=None, updated_at=now)
    )
    return moved


def _transfer_balances(
    conn: Connection, now: datetime, program: Program | None, survivor: RowMapping, absorbed: RowMapping
) -> dict[str, int]:
    """A merge_out row per balance and part on the absorbed member and its merge_in on the
    survivor, with the lots they name; the balance rows follow."""
    groups: dict[tuple[str, str | None], dict[str, Any]] = {}
    for lot in conn.execute(
        select(t.lots).where(t.lots.c.member_id == absorbed["id"], t.lots.c.amount > 0).order_by(t.lots.c.id)
    ).mappings():
        group = groups.setdefault((lot["balance"], lot["part"]), {"amount": 0, "debt": 0, "lots": []})
        group["amount"] += lot["amount"]
        group["lots"].append([lot["id"], lot["amount"]])
    held = (
        conn.execute(select(t.member_balances).where(t.member_balances.c.member_id == absorbed["id"]))
        .mappings()
        .all()
    )
    for row in held:
        if row["debt"]:
            group = groups.setdefault((row["balance"], None), {"amount": 0, "debt": 0, "lots": []})
            group["amount"] -= row["debt"]
            group["debt"] = row["debt"]
    version = program.version if program is not None else ""
    event_id = f"merge:{absorbed['external_id']}"
    rows = []
    for (balance, part), group in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or "")):
        if not group["amount"] and not group["debt"]:
            continue
        common = {
            "event_id": event_id,
            "balance": balance,
            "part": part,
            "debt": group["debt"],
            "version": version,
            "occurred_at": now,
            "recorded_at": now,
        }
        rows.append(
            {
                **common,
                "member_id": absorbed["id"],
                "kind": "merge_out",
                "amount": -group["amount"],
                "lots": [[i, -n] for i, n in group["lots"]],
            }
        )
        rows.append(
            {
                **common,
                "member_id": survivor["id"],
                "kind": "merge_in",
                "amount": group["amount"],
                "lots": group["lots"],
            }
        )
    if rows:
        conn.execute(insert(t.ledger), rows)
    moved: dict[str, int] = {}
    for row in held:
        if not row["total"] and not row["debt"]:
            continue
        moved[row["balance"]] = row["total"]
        mine = conn.execute(
            select(t.member_balances).where(
                t.member_balances.c.member_id == survivor["id"], t.member_balances.c.balance == row["balance"]
            )
        ).first()
        if mine is None:
            conn.execute(
                insert(t.member_balances).values(
                    member_id=survivor["id"], balance=row["balance"], total=row["total"], debt=row["debt"]
                )
            )
        else:
            conn.execute(
                update(t.member_balances)
                .where(
                    t.member_balances.c.member_id == survivor["id"],
                    t.member_balances.c.balance == row["balance"],
                )
                .values(total=mine.total + row["total"], debt=mine.debt + row["debt"])
            )
        conn.execute(
            update(t.member_balances)
            .where(
                t.member_balances.c.member_id == absorbed["id"], t.member_balances.c.balance == row["balance"]
            )
            .values(total=0, debt=0)
        )
    return moved
