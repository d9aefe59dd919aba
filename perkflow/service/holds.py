"""Paying at the till: quote what an order may be paid with, hold it, cancel the hold.

A hold reserves points and stored value for a few minutes while the till takes the rest of the
payment; the purchase event that names it (`attributes.hold`) captures it (perkflow/service/held.py
checks it in the event's own transaction). A hold is placed with the member row locked (SQLite:
every write transaction is BEGIN IMMEDIATE), after the active holds are read, so two tills never
reserve the same units. The limits are the engine's (engine/payments.py): a hold is refused
exactly when the purchase capturing it would be.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from perkflow.engine import Program
from perkflow.engine.payments import joint_refusal, quote, refusal, spendable
from perkflow.storage import tables as t

from . import held
from .events import member_row
from .problems import FieldError, Problem, invalid, not_found
from .state_store import load_state
from .versions import Versions

DEFAULT_TTL = timedelta(minutes=5)


class HoldService:
    def __init__(self, engine: Engine, versions: Versions, clock: Callable[[], datetime]) -> None:
        self.engine, self.versions, self.clock = engine, versions, clock

    def quote(self, member_id: str, order_amount: int, *, stores: frozenset[str] | None = None) -> dict[str, Any] | Problem:
        """How much of an order each paying balance may pay now, less what active holds reserve.
        Nothing is written."""
        now = self.clock()
        with self.engine.connect() as conn:
            row = member_row(conn, member_id)
            if row is None or row["status"] != "active" or (stores is not None and row["home_store"] not in stores):
                return not_found("member", member_id)
            program = self.versions.in_force(conn, now)
            if not isinstance(program, Program):
                return program
            state = load_state(conn, row, program)
            reserved = held.reserved(held.active_holds(conn, row["id"], now))
        return {
            "member_id": member_id, "order_amount": order_amount, "at": now.isoformat(), "version": program.version,
            "balances": [q.to_dict() for q in quote(program, state, now, order_amount, reserved)],
        }

    def place(
        self,
        member_id: str,
        order_amount: int,
        pay: Mapping[str, int],
        *,
        ttl: timedelta = DEFAULT_TTL,
        store: str = "",
        stores: frozenset[str] | None = None,
    ) -> dict[str, Any] | Problem:
        """Reserve `pay` (points_paid, stored_value_paid) of an order for `ttl`."""
        now = self.clock()
        pay = {a: n for a, n in pay.items() if n}
        if not pay:
            return invalid("a hold reserves something", [FieldError("", "empty_hold", "give points_paid, stored_value_paid or both")], code="empty_hold")
        with self.engine.begin() as conn:
            row = member_row(conn, member_id, lock=True)
            if row is None or row["status"] != "active" or (stores is not None and row["home_store"] not in stores):
                return not_found("member", member_id)
            program = self.versions.in_force(conn, now)
            if not isinstance(program, Program):
                return program
            amounts: dict[str, int] = {}
            for attribute in pay:
                if attribute not in program.payers:
                    kind = "points" if attribute == "points_paid" else "stored value"
                    message = f"no balance of this scheme takes {kind} for orders (order_payment)"
                    return invalid(message, [FieldError(f"/{attribute}", "points_not_accepted", message)], code="points_not_accepted")
                amounts[program.payers[attribute]] = pay[attribute]
            state = load_state(conn, row, program)
            reserved = held.reserved(held.active_holds(conn, row["id"], now))
            for attribute, units in pay.items():
                balance = program.payers[attribute]
                available = spendable(state, balance, now) - reserved.get(balance, 0)
                refused = refusal(program.balances[balance], balance, units, order_amount, available)
                if refused is not None:
                    message = refused.message + (f" ({reserved[balance]} held by other tills)" if reserved.get(balance) else "")
                    return invalid(message, [FieldError(f"/{attribute}", refused.code, message)], code=refused.code)
            joint = joint_refusal(program, amounts, order_amount)
            if joint is not None:
                return invalid(joint.message, [FieldError("/stored_value_paid", joint.code, joint.message)], code=joint.code)
            hold = {
                "id": f"hold_{uuid.uuid4().hex}", "member_id": row["id"], "order_amount": order_amount, "amounts": amounts,
                "status": "active", "store": store, "created_at": now, "expires_at": now + ttl,
            }
            conn.execute(insert(t.holds).values(**hold))
        return _view(program, member_id, {**hold, "closed_at": None, "captured_by": None}, now)

    def get(self, member_id: str, hold_id: str, *, stores: frozenset[str] | None = None) -> dict[str, Any] | Problem:
        now = self.clock()
        with self.engine.connect() as conn:
            found = self._hold(conn, member_id, hold_id, stores)
            if isinstance(found, Problem):
                return found
            program = self.versions.in_force(conn, now)
        return _view(program if isinstance(program, Program) else None, member_id, found, now)

    def cancel(self, member_id: str, hold_id: str, *, stores: frozenset[str] | None = None) -> dict[str, Any] | Problem:
        """Release a hold. Cancelling a cancelled or expired hold changes nothing and says so;
        a captured hold cannot be cancelled (refund the purchase instead)."""
        now = self.clock()
        with self.engine.begin() as conn:
            found = self._hold(conn, member_id, hold_id, stores, lock=True)
            if isinstance(found, Problem):
                return found
            state = held.status(found, now)
            if state == "captured":
                return Problem(
                    409, "hold_captured", "Conflict",
                    f"hold '{hold_id}' was captured by '{found['captured_by']}'; refund that purchase instead",
                )
            if state == "active":
                conn.execute(update(t.holds).where(t.holds.c.id == hold_id, t.holds.c.status == "active").values(status="cancelled", closed_at=now))
                found = {**found, "status": "cancelled", "closed_at": now}
            program = self.versions.in_force(conn, now)
        return _view(program if isinstance(program, Program) else None, member_id, found, now)

    @staticmethod
    def _hold(conn: Any, member_id: str, hold_id: str, stores: frozenset[str] | None, lock: bool = False) -> Mapping[str, Any] | Problem:
        row = member_row(conn, member_id, lock=lock)
        if row is None or (stores is not None and row["home_store"] not in stores):
            return not_found("member", member_id)
        hold = conn.execute(select(t.holds).where(t.holds.c.id == hold_id)).mappings().first()
        if hold is None:
            return not_found("hold", hold_id)
        if hold["member_id"] != row["id"]:
            return invalid(
                f"hold '{hold_id}' is another member's",
                [FieldError("", "hold_of_another_member", f"hold '{hold_id}' was not placed for member '{member_id}'")],
                code="hold_of_another_member",
            )
        return dict(hold)


def _view(program: Program | None, member_id: str, hold: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """A hold as the till sees it; `pay` is what the capturing purchase's attributes carry."""
    attributes = {balance: attribute for attribute, balance in program.payers.items()} if program is not None else {}
    out: dict[str, Any] = {
        "id": hold["id"], "member_id": member_id, "status": held.status(hold, now), "order_amount": hold["order_amount"],
        "amounts": dict(hold["amounts"]),
        "pay": {attributes[b]: n for b, n in sorted(hold["amounts"].items()) if b in attributes},
        "created_at": hold["created_at"].isoformat(), "expires_at": hold["expires_at"].isoformat(),
    }
    if hold.get("closed_at") is not None:
        out["closed_at"] = hold["closed_at"].isoformat()
    if hold.get("captured_by") is not None:
        out["captured_by"] = hold["captured_by"]
    return out
