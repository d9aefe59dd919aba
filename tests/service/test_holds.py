"""Paying at the till through the service: a quote, a hold that reserves points and stored value,
a purchase that captures it, a cancel, expiry by the clock, and a refund that gives back what the
purchase paid, by part. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from perkflow.service.core import Service
from perkflow.service.events import Applied
from perkflow.service.problems import Problem
from perkflow.storage import tables as t
from perkflow.storage.reports import Filters, run

from ..databases import Clock, publish
from .harness import ledger_problems

SCHEME = """
perkflow: 1
id: till
name: Till
timezone: Asia/Shanghai
auto_enroll: true
balances:
  wallet:
    unit: money
    parts: [principal, bonus]
    spending: {ratio: {principal: 5, bonus: 1}}
    order_payment: {}
  points:
    value: 1
    limits: {min_redemption: 100}
    order_payment: {max_share: 0.5}
rules:
  - id: topup
    on: topup
    then:
      - award: {balance: wallet, part: principal, amount: "event.amount"}
      - award: {balance: wallet, part: bonus, amount: "event.amount / 5"}
  - id: earn
    on: purchase
    then:
      - award: {balance: points, amount: "event.amount / 10"}
"""
NOW = "2026-11-20T12:00:00+00:00"


def _post(svc: Service, event_id: str, kind: str, **attributes: Any) -> Applied | Problem:
    raw = {
        "id": event_id, "type": kind, "member_id": "m1", "occurred_at": svc.clock().isoformat(),
        "store": "S1", "channel": "pos", "attributes": attributes,
    }
    return svc.events.post(raw)


def _member(svc: Service, clock: Clock) -> None:
    publish(svc, SCHEME)
    clock.set(NOW)
    assert isinstance(_post(svc, "t1", "topup", amount=60_000), Applied)  # 60000 principal, 12000 bonus
    assert isinstance(_post(svc, "p0", "purchase", amount=30_000), Applied)  # 3000 points


def _hold(svc: Service, order: int, **pay: int) -> dict[str, Any] | Problem:
    return svc.holds.place("m1", order, pay, ttl=timedelta(minutes=5))


def test_a_quote_gives_what_each_balance_may_pay_less_what_holds_reserve(service: Service, clock: Clock):
    _member(service, clock)
    quote = service.holds.quote("m1", 10_000)
    assert isinstance(quote, dict)
    assert [(q["balance"], q["available"], q["held"], q["most"]) for q in quote["balances"]] == [
        ("points", 3000, 0, 3000), ("wallet", 72_000, 0, 10_000),
    ]
    assert quote["balances"][1]["parts"] == {"principal": 8334, "bonus": 1666}
    hold = _hold(service, 10_000, points_paid=2_000)
    assert isinstance(hold, dict) and hold["status"] == "active"
    again = service.holds.quote("m1", 10_000)
    assert isinstance(again, dict)
    assert [(q["balance"], q["available"], q["held"], q["most"]) for q in again["balances"]][0] == ("points", 1000, 2000, 1000)


def test_a_purchase_naming_the_hold_captures_it_and_spends_exactly_what_it_held(service: Service, clock: Clock):
    _member(service, clock)
    hold = _hold(service, 10_000, points_paid=1_000, stored_value_paid=6_000)
    assert isinstance(hold, dict)
    assert hold["pay"] == {"points_paid": 1_000, "stored_value_paid": 6_000}
    paid = _post(service, "p1", "purchase", amount=9_000, order_amount=10_000, hold=hold["id"], **hold["pay"])
    assert isinstance(paid, Applied), paid
    spends = [(e["balance"], e.get("part"), e["amount"]) for e in paid.body["effects"] if e["kind"] == "spend"]
    assert spends == [("points", None, -1_000), ("wallet", "principal", -5_000), ("wallet", "bonus", -1_000)]
    captured = service.holds.get("m1", hold["id"])
    assert isinstance(captured, dict) and (captured["status"], captured["captured_by"]) == ("captured", "p1")
    with service.engine.connect() as conn:
        kinds = conn.execute(select(t.ledger.c.kind, t.ledger.c.part, t.ledger.c.amount).where(t.ledger.c.event_id == "p1")).all()
    assert sorted(kinds, key=repr) == sorted([("spend", None, -1000), ("spend", "principal", -5000), ("spend", "bonus", -1000), ("earn", None, 900)], key=repr)
    twice = _post(service, "p2", "purchase", amount=9_000, order_amount=10_000, hold=hold["id"], **hold["pay"])
    assert isinstance(twice, Problem) and (twice.status, twice.code) == (409, "hold_captured")
    assert ledger_problems(service.engine) == []


def test_a_refund_of_a_captured_purchase_gives_back_points_and_stored_value_by_part(service: Service, clock: Clock):
    _member(service, clock)
    hold = _hold(service, 10_000, points_paid=1_000, stored_value_paid=6_000)
    assert isinstance(hold, dict)
    assert isinstance(_post(service, "p1", "purchase", amount=9_000, order_amount=10_000, hold=hold["id"], **hold["pay"]), Applied)
    refund = _post(service, "r1", "refund", original_event_id="p1", amount=4_500)
    assert isinstance(refund, Applied), refund
    back = [(e["balance"], e.get("part"), e["amount"]) for e in refund.body["effects"] if e["kind"] == "restore"]
    assert back == [("points", None, 500), ("wallet", "principal", 2_500), ("wallet", "bonus", 500)]
    rest = _post(service, "r2", "refund", original_event_id="p1", amount=4_500)
    assert isinstance(rest, Applied)
    assert rest.body["balances"] == {"points": 3000, "wallet": 72_000}
    assert ledger_problems(service.engine) == []
    # the flows report counts what came back off what was redeemed
    program = service.versions.active()
    assert program is not None
    with service.engine.connect() as conn:
        flows = run("flows", conn, program.scheme, clock(), Filters(start=date(2026, 11, 1), end=date(2026, 11, 30)))
    redeemed = {r["balance"]: (r["redeemed"], r["clawed_back"]) for r in flows.table("by_period").rows}
    assert redeemed == {"points": (0, 900), "wallet": (0, 0)}


def test_two_holds_never_reserve_the_same_points(service: Service, clock: Clock):
    _member(service, clock)
    first = _hold(service, 10_000, points_paid=2_000)
    assert isinstance(first, dict)
    second = _hold(service, 10_000, points_paid=2_000)
    assert isinstance(second, Problem) and (second.code, second.errors[0].pointer) == ("insufficient_balance", "/points_paid")
    assert second.detail == "points is 1000; the order wants 2000 (2000 held by other tills)"
    # a purchase without a hold may not spend what a hold reserves either
    wallet = _hold(service, 80_000, stored_value_paid=70_000)
    assert isinstance(wallet, dict)
    plain = _post(service, "p1", "purchase", amount=5_000, stored_value_paid=5_000)
    assert isinstance(plain, Problem) and (plain.status, plain.code) == (409, "balance_held")
    assert plain.detail == "70000 wallet are held by other tills; this event would leave 67000"
    assert isinstance(_post(service, "p2", "purchase", amount=2_000, stored_value_paid=2_000), Applied)


def test_a_hold_expires_by_itself_at_its_expiry_instant(service: Service, clock: Clock):
    _member(service, clock)
    hold = _hold(service, 10_000, points_paid=3_000)
    assert isinstance(hold, dict)
    clock.set("2026-11-20T12:04:59+00:00")
    assert isinstance(_hold(service, 10_000, points_paid=100), Problem)
    clock.set("2026-11-20T12:05:00+00:00")  # the expiry instant is excluded: the hold is gone
    assert service.holds.get("m1", hold["id"])["status"] == "expired"  # type: ignore[index]
    late = _post(service, "p1", "purchase", amount=10_000, hold=hold["id"], points_paid=3_000)
    assert isinstance(late, Problem) and (late.status, late.code) == (409, "hold_expired")
    assert isinstance(_hold(service, 10_000, points_paid=3_000), dict)


def test_a_cancelled_hold_releases_its_units_and_cannot_be_captured(service: Service, clock: Clock):
    _member(service, clock)
    hold = _hold(service, 10_000, points_paid=3_000)
    assert isinstance(hold, dict)
    cancelled = service.holds.cancel("m1", hold["id"])
    assert isinstance(cancelled, dict) and cancelled["status"] == "cancelled"
    assert service.holds.cancel("m1", hold["id"]) == cancelled  # again: nothing changes
    late = _post(service, "p1", "purchase", amount=10_000, hold=hold["id"], points_paid=3_000)
    assert isinstance(late, Problem) and late.code == "hold_cancelled"
    assert isinstance(_hold(service, 10_000, points_paid=3_000), dict)


def test_bad_captures_and_holds_are_refused_and_change_nothing(service: Service, clock: Clock):
    _member(service, clock)
    service.members.put("m2", {}, actor="test")
    hold = _hold(service, 10_000, points_paid=1_000)
    assert isinstance(hold, dict)
    refusals = {
        "unknown": _post(service, "x1", "purchase", amount=10_000, hold="hold_nope", points_paid=1_000),
        "mismatch": _post(service, "x2", "purchase", amount=10_000, hold=hold["id"], points_paid=900),
        "too_large": _hold(service, 10_000, points_paid=2_000, stored_value_paid=9_000),
        "over_share": _hold(service, 1_000, points_paid=600),
        "empty": _hold(service, 1_000),
        "below_minimum": _hold(service, 1_000, points_paid=50),
    }
    codes = {k: (v.status, v.code) for k, v in refusals.items() if isinstance(v, Problem)}
    assert codes == {
        "unknown": (422, "unknown_hold"),
        "mismatch": (422, "hold_amount_mismatch"),
        "too_large": (422, "order_payment_limit"),
        "over_share": (422, "order_payment_limit"),
        "empty": (422, "empty_hold"),
        "below_minimum": (422, "below_min_redemption"),
    }
    other = service.events.post({
        "id": "x3", "type": "purchase", "member_id": "m2", "occurred_at": NOW, "store": "S1", "channel": "pos",
        "attributes": {"amount": 10_000, "hold": hold["id"], "points_paid": 1_000},
    })
    assert isinstance(other, Problem) and other.code == "hold_of_another_member"
    assert isinstance(service.holds.cancel("m2", hold["id"]), Problem)
    with service.engine.connect() as conn:
        assert conn.execute(select(t.events.c.id).where(t.events.c.id.in_(["x1", "x2", "x3"]))).all() == []
        assert conn.execute(select(t.holds.c.status)).scalars().all() == ["active"]
