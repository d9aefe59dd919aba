"""What active holds reserve, read and checked inside a member's transaction (its row locked).

A hold is active while its status is `active` and the server's clock is before its `expires_at`
(the instant itself is excluded), so an expired hold releases its units without any job. The
event path uses these: a purchase that names a hold captures it, and no event may spend units
that another till's hold reserves.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, select, update

from perkflow.engine import Decision, Event, Program
from perkflow.storage import tables as t

from .problems import FieldError, Problem, conflict, invalid


def active_holds(conn: Connection, member_pk: int, now: datetime, *, but: str | None = None) -> list[RowMapping]:
    query = select(t.holds).where(t.holds.c.member_id == member_pk, t.holds.c.status == "active", t.holds.c.expires_at > now)
    if but is not None:
        query = query.where(t.holds.c.id != but)
    return list(conn.execute(query.order_by(t.holds.c.created_at, t.holds.c.id)).mappings())


def reserved(holds: list[RowMapping]) -> dict[str, int]:
    """Units reserved per balance by these holds."""
    out: dict[str, int] = {}
    for hold in holds:
        for balance, units in hold["amounts"].items():
            out[balance] = out.get(balance, 0) + units
    return out


def status(hold: Mapping[str, Any], now: datetime) -> str:
    """active, captured, cancelled, or expired (an active hold at or after its expiry instant)."""
    return "expired" if hold["status"] == "active" and hold["expires_at"] <= now else str(hold["status"])


def check_capture(conn: Connection, program: Program, member_pk: int, event: Event, now: datetime) -> Problem | None:
    """A purchase naming a hold captures it: the hold must be this member's, active, and for
    exactly the amounts the purchase pays."""
    hold_id = event.attributes["hold"]
    hold = conn.execute(select(t.holds).where(t.holds.c.id == hold_id)).mappings().first()
    pointer = "/attributes/hold"
    if hold is None:
        return invalid(f"no hold '{hold_id}'", [FieldError(pointer, "unknown_hold", "place a hold first: POST /api/v1/members/{id}/holds")], code="unknown_hold")
    if hold["member_id"] != member_pk:
        return invalid(
            f"hold '{hold_id}' is another member's",
            [FieldError(pointer, "hold_of_another_member", "a purchase captures a hold of its own member")],
            code="hold_of_another_member",
        )
    state = status(hold, now)
    if state != "active":
        return conflict(f"hold_{state}", f"hold '{hold_id}' is {state}; place a new one")
    paid = {program.payers[a]: event.attributes[a] for a in ("points_paid", "stored_value_paid") if event.attributes.get(a) and a in program.payers}
    if paid != hold["amounts"]:
        attribute = next(
            (a for a in ("points_paid", "stored_value_paid") if a in program.payers and paid.get(program.payers[a], 0) != hold["amounts"].get(program.payers[a], 0)),
            "points_paid",  # the hold names a balance that no longer pays orders
        )
        return invalid(
            f"the purchase pays {_amounts(paid)}, the hold reserves {_amounts(hold['amounts'])}",
            [FieldError(f"/attributes/{attribute}", "hold_amount_mismatch", "pay exactly what the hold reserves, or cancel it and place another")],
            code="hold_amount_mismatch",
        )
    return None


def check_spending(conn: Connection, member_pk: int, decision: Decision, at: datetime, now: datetime, captured: str | None) -> Problem | None:
    """An event may spend only what other tills' holds leave: after it, each balance it spends
    from must still cover what the active holds (but the one it captures) reserve."""
    spent = {e.balance for e in decision.effects if e.kind == "spend" and e.balance is not None}
    if not spent:
        return None
    others = reserved(active_holds(conn, member_pk, now, but=captured))
    for balance in sorted(spent):
        held, left = others.get(balance, 0), decision.state.available(balance, at)
        if held and held > left:  # without holds a debt the balance allows is no business of ours
            return conflict(
                "balance_held",
                f"{held} {balance} are held by other tills; this event would leave {left}",
                balance=balance, held=held,
            )
    return None


def mark_captured(conn: Connection, hold_id: str, event_id: str, now: datetime) -> None:
    done = conn.execute(
        update(t.holds).where(t.holds.c.id == hold_id, t.holds.c.status == "active").values(status="captured", captured_by=event_id, closed_at=now)
    )
    assert done.rowcount == 1, "the member row is locked: the hold checked active cannot have changed"


def _amounts(amounts: Mapping[str, int]) -> str:
    return ", ".join(f"{units} {balance}" for balance, units in sorted(amounts.items())) or "nothing"
