"""Paying at the till (积分抵现, 储值消费): what an order may be paid with, and refunds that give
points and stored value back in the proportions they were paid."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from perkflow.engine.payments import quote

from .helpers import Member, program

TILL = """
id: till
name: Till
timezone: Asia/Shanghai
balances:
  wallet:
    unit: money
    parts: [principal, bonus]
    spending: {ratio: {principal: 5, bonus: 1}}
    order_payment: {}
  points:
    value: 1
    expiry: {kind: period_end, period: year}
    limits: {min_redemption: 100}
    order_payment: {max_share: 0.5, max_units: 5000}
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


def _member() -> Member:
    m = Member(program(TILL))
    m.event("topup", "2026-03-01T10:00:00+08:00", amount=60_000)  # 60000 principal, 12000 bonus
    m.event("purchase", "2026-03-01T11:00:00+08:00", amount=80_000)  # 8000 points
    return m


def test_a_quote_says_how_much_each_balance_may_pay_and_from_which_parts():
    m = _member()
    at = datetime.fromisoformat("2026-03-02T10:00:00+08:00")
    points, wallet = quote(m.program, m.state, at, 30_000, {})
    assert (points.attribute, points.available, points.most, points.worth) == ("points_paid", 8000, 5000, 5000)  # max_units
    assert (wallet.attribute, wallet.available, wallet.most, wallet.parts) == (
        "stored_value_paid", 72_000, 30_000, (("principal", 25_000), ("bonus", 5_000)),
    )
    small = {q.balance: q.most for q in quote(m.program, m.state, at, 180, {})}
    assert small == {"points": 0, "wallet": 180}  # half of 180 is 90 points, below the minimum of 100
    held = {q.balance: (q.available, q.held, q.most) for q in quote(m.program, m.state, at, 30_000, {"points": 7000, "wallet": 70_000})}
    assert held == {"points": (1000, 7000, 1000), "wallet": (2000, 70_000, 2000)}


def test_points_and_stored_value_pay_one_order_together_but_never_more_than_it():
    m = _member()
    paid = m.event("purchase", "2026-03-02T10:00:00+08:00", amount=24_000, order_amount=30_000, points_paid=6_000, stored_value_paid=24_000)
    assert paid.rejection is not None and paid.rejection.code == "order_payment_limit"  # max_units 5000
    too_much = m.event("purchase", "2026-03-02T10:01:00+08:00", amount=24_000, order_amount=28_000, points_paid=5_000, stored_value_paid=24_000)
    assert too_much.rejection is not None
    assert (too_much.rejection.code, too_much.rejection.pointer) == ("order_payment_limit", "/attributes/stored_value_paid")
    assert too_much.rejection.message == "the payments are worth 29000, more than the order of 28000"
    paid = m.event("purchase", "2026-03-02T10:02:00+08:00", amount=25_000, order_amount=30_000, points_paid=5_000, stored_value_paid=24_000)
    assert paid.rejection is None
    spends = [(e.balance, e.part, e.amount) for e in paid.effects if e.kind == "spend"]
    assert spends == [("points", None, -5_000), ("wallet", "principal", -20_000), ("wallet", "bonus", -4_000)]
    assert (m.balance("wallet"), m.balance("points")) == (72_000 - 24_000, 8000 - 5000 + 2500)
    no_wallet = m.event("purchase", "2026-03-02T10:03:00+08:00", amount=100_000, stored_value_paid=60_000)
    assert no_wallet.rejection is not None and no_wallet.rejection.code == "insufficient_balance"


def test_a_refund_gives_back_points_and_stored_value_in_the_proportions_paid():
    m = _member()
    m.event("purchase", "2026-03-02T10:00:00+08:00", event_id="p1", amount=25_000, order_amount=30_000, points_paid=5_000, stored_value_paid=24_000)
    third = m.event("refund", "2026-03-03T10:00:00+08:00", original_event_id="p1", amount=10_000)
    back = [(e.balance, e.part, e.amount, e.of_event) for e in third.effects if e.kind == "restore"]
    # 10000 of 25000 refunded: floor(20000 x 2/5), floor(4000 x 2/5), floor(5000 x 2/5)
    assert back == [("points", None, 2_000, "p1"), ("wallet", "principal", 8_000, "p1"), ("wallet", "bonus", 1_600, "p1")]
    rest = m.event("refund", "2026-03-04T10:00:00+08:00", original_event_id="p1", amount=15_000)
    back = [(e.balance, e.part, e.amount) for e in rest.effects if e.kind == "restore"]
    assert back == [("points", None, 3_000), ("wallet", "principal", 12_000), ("wallet", "bonus", 2_400)]
    assert m.part("wallet", "principal") == 60_000 and m.part("wallet", "bonus") == 12_000
    # the points the purchase earned (2500) are clawed back; the 5000 it paid came back
    assert m.balance("points") == 8000


def test_returned_units_are_a_new_lot_that_expires_as_if_earned_on_the_day_of_the_refund():
    m = _member()
    m.event("purchase", "2026-12-30T10:00:00+08:00", event_id="p1", amount=10_000, points_paid=1_000)
    refund = m.event("refund", "2027-01-02T10:00:00+08:00", original_event_id="p1", amount=10_000)
    [back] = [e for e in refund.effects if e.kind == "restore"]
    assert back.amount == 1_000 and back.expires_at == datetime.fromisoformat("2028-01-01T00:00:00+08:00")
    assert m.balance("points") == 1_000  # the 2026 points expired on 1 January; the returned lot did not


@given(st.lists(st.integers(min_value=1, max_value=9_999), min_size=1, max_size=6), st.integers(min_value=6, max_value=24_000))
def test_refunds_in_pieces_never_give_back_more_than_was_paid_and_a_full_refund_gives_back_all(pieces: list[int], wallet_paid: int):
    m = _member()
    m.event("purchase", "2026-03-02T10:00:00+08:00", event_id="p1", amount=30_000, stored_value_paid=wallet_paid)
    paid = {e.part: -e.amount for e in m.decisions[-1].effects if e.kind == "spend"}
    returned: dict[str | None, int] = {}
    left = 30_000
    for n, piece in enumerate(pieces + [30_000]):
        amount = min(piece, left)
        if amount == 0:
            break
        refund = m.event("refund", f"2026-03-03T10:{n:02d}:00+08:00", original_event_id="p1", amount=amount)
        left -= amount
        for e in refund.effects:
            if e.kind == "restore":
                returned[e.part] = returned.get(e.part, 0) + e.amount
        assert all(returned.get(p, 0) <= units for p, units in paid.items())
    assert returned == paid
