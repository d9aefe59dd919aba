"""Coupons and rewards outside a purchase: validate before checkout, redeem, void; redeem a reward.

Checking and pricing coupons is the engine's `validate_coupons`, the same function a purchase
uses. A redemption or a reward is an event (`coupon_redemption`, `reward_redemption`) posted
through the event service, so it is applied, traced and idempotent like any other event. Voiding
a coupon is an operator's act: it is written with its reason in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update

from perkflow.engine import Program
from perkflow.engine.coupons import validate_coupons
from perkflow.storage import tables as t

from .audit import record
from .events import Applied, EventService, member_row
from .problems import FieldError, Problem, conflict, invalid, not_found
from .state_store import load_state
from .versions import Versions


def _repoint(problem: Problem, pointers: dict[str, str]) -> Problem:
    """The engine's pointers name the event's attributes; the request had its own fields."""
    errors = tuple(FieldError(pointers.get(e.pointer, e.pointer), e.code, e.message) for e in problem.errors)
    return Problem(problem.status, problem.code, problem.title, problem.detail, errors, problem.extra)


class CouponService:
    def __init__(
        self, engine: Engine, versions: Versions, events: EventService, clock: Callable[[], datetime]
    ) -> None:
        self.engine, self.versions, self.events, self.clock = engine, versions, events, clock

    def validate(
        self,
        member_id: str,
        order_amount: int,
        coupon_ids: list[str],
        *,
        at: datetime | None = None,
        stores: frozenset[str] | None = None,
    ) -> dict[str, Any] | Problem:
        """Which of the coupons would apply to an order, in what order, the discount of each, and
        why each other would not. Nothing is written."""
        at = at or self.clock()
        with self.engine.connect() as conn:
            row = member_row(conn, member_id)
            if row is None or (stores is not None and row["home_store"] not in stores):
                return not_found("member", member_id)
            program = self.versions.in_force(conn, at)
            if not isinstance(program, Program):
                return program
            state = load_state(conn, row, program)
        checks = validate_coupons(program, state, order_amount, coupon_ids, at)
        applied = sorted((c for c in checks if c.applies), key=lambda c: c.order or 0)
        discount = sum(c.discount for c in applied)
        return {
            "member_id": member_id,
            "order_amount": order_amount,
            "at": at.isoformat(),
            "version": program.version,
            "applies": [c.to_dict() for c in applied],
            "refused": [c.to_dict() for c in checks if not c.applies],
            "discount": discount,
            "payable": max(order_amount - discount, 0),
        }

    def _owner(self, coupon_id: str, stores: frozenset[str] | None) -> Any:
        query = (
            select(
                t.coupons.c.id,
                t.coupons.c.policy,
                t.coupons.c.redeemed_at,
                t.coupons.c.voided,
                t.members.c.external_id,
                t.members.c.home_store,
            )
            .join(t.members, t.members.c.id == t.coupons.c.member_id)
            .where(t.coupons.c.id == coupon_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None or (stores is not None and row.home_store not in stores) else row

    def redeem(
        self,
        coupon_id: str,
        *,
        request_id: str,
        order_amount: int = 0,
        member_id: str | None = None,
        store: str = "",
        channel: str = "api",
        stores: frozenset[str] | None = None,
    ) -> Applied | Problem:
        """Use a coupon outside a purchase: a `coupon_redemption` event for its holder."""
        owner = self._owner(coupon_id, stores)
        if owner is None:
            return not_found("coupon", coupon_id)
        if member_id is not None and member_id != owner.external_id:
            return invalid(
                f"coupon '{coupon_id}' is not member '{member_id}''s",
                [
                    FieldError(
                        "/member_id", "coupon_of_another_member", "the coupon belongs to another member"
                    )
                ],
                code="coupon_of_another_member",
            )
        raw = {
            "id": f"coupon_redemption:{request_id}",
            "type": "coupon_redemption",
            "member_id": owner.external_id,
            "occurred_at": self.clock().isoformat(),
            "store": store,
            "channel": channel,
            "attributes": {"coupon": coupon_id, "order_amount": order_amount},
        }
        result = self.events.post(raw, stores=stores)
        return (
            _repoint(result, {"/attributes/coupon": "", "/attributes/order_amount": "/order_amount"})
            if isinstance(result, Problem)
            else result
        )

    def void(
        self, coupon_id: str, reason: str, *, actor: str, stores: frozenset[str] | None = None
    ) -> dict[str, Any] | Problem:
        """Void an unused coupon, with the reason in the audit log; voiding it again changes nothing."""
        if not reason.strip():
            return invalid(
                "voiding a coupon needs a reason",
                [FieldError("/reason", "missing_reason", "say why the coupon is voided")],
                code="missing_reason",
            )
        owner = self._owner(coupon_id, stores)
        if owner is None:
            return not_found("coupon", coupon_id)
        now = self.clock()
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.coupons)
                .where(
                    t.coupons.c.id == coupon_id,
                    t.coupons.c.redeemed_at.is_(None),
                    t.coupons.c.voided.is_(False),
                )
                .values(voided=True)
            )
            if done.rowcount:
                record(
                    conn,
                    now,
                    actor,
                    "coupon_voided",
                    coupon_id,
                    {"member": owner.external_id, "policy": owner.policy, "reason": reason},
                )
            elif owner.redeemed_at is not None:
                return conflict(
                    "coupon_redeemed", f"coupon '{coupon_id}' was already used and cannot be voided"
                )
        return {"id": coupon_id, "policy": owner.policy, "member_id": owner.external_id, "status": "void"}


class RewardService:
    def __init__(self, events: EventService, clock: Callable[[], datetime]) -> None:
        self.events, self.clock = events, clock

    def redeem(
        self,
        reward_id: str,
        member_id: str,
        *,
        request_id: str,
        store: str = "",
        channel: str = "api",
        stores: frozenset[str] | None = None,
    ) -> Applied | Problem:
        """A member spends a balance on a catalogue reward: a `reward_redemption` event."""
        raw = {
            "id": f"reward_redemption:{request_id}",
            "type": "reward_redemption",
            "member_id": member_id,
            "occurred_at": self.clock().isoformat(),
            "store": store,
            "channel": channel,
            "attributes": {"reward": reward_id},
        }
        result = self.events.post(raw, stores=stores)
        return _repoint(result, {"/attributes/reward": ""}) if isinstance(result, Problem) else result
