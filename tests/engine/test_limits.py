"""Balance limits: an earning cap per period, a maximum balance, a minimum redemption, and what
one order may be paid with points."""

from __future__ import annotations

import pytest

from perkflow.rules import loads

from .helpers import Member, program

LIMITED = """
id: limited
name: Limited
timezone: Asia/Shanghai
balances:
  points:
    value: 1
    limits: {max_balance: 5000, min_redemption: 100}
    order_payment: {max_share: 0.5, max_units: 2000}
  growth:
    spendable: false
    limits: {earn_cap: {limit: 300, per: day}}
rules:
  - id: earn
    on: purchase
    then:
      - award: {balance: points, amount: "event.amount / 100"}
      - award: {balance: growth, amount: "event.amount / 100"}
  - id: checkin-growth
    on: checkin
    then:
      - award: {balance: growth, amount: "50"}
rewards:
  mug: {name: A mug, cost: {balance: points, amount: 100}, grants: [{tag: mug}]}
"""


def test_growth_earned_beyond_the_daily_cap_is_cut_and_the_trace_says_so():
    m = Member(program(LIMITED))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=20_000)  # 200 growth
    second = m.event("purchase", "2026-03-01T15:00:00+08:00", amount=20_000)  # only 100 fit today
    assert [(e.balance, e.amount) for e in second.effects if e.kind == "earn"] == [("points", 200), ("growth", 100)]
    [clip] = [t for t in second.trace if t.outcome == "clipped"]
    assert (clip.rule, clip.reason) == ("earn", "earn_cap")
    assert clip.detail == "growth award of 200 cut to 100: 200 of 300 growth already earned this day"
    full = m.event("checkin", "2026-03-01T23:59:59+08:00")
    assert [e for e in full.effects if e.kind == "earn"] == []
    assert [(t.rule, t.outcome, t.reason) for t in full.trace] == [("checkin-growth", "clipped", "earn_cap"), ("checkin-growth", "fired", "")]
    next_day = m.event("checkin", "2026-03-02T00:00:00+08:00")  # a new local day, a new cap
    assert [e.amount for e in next_day.effects if e.kind == "earn"] == [50]
    assert m.balance("growth") == 350


def test_an_award_beyond_the_maximum_balance_is_cut_to_what_fits():
    m = Member(program(LIMITED))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=480_000)  # 4800 points
    capped = m.event("purchase", "2026-03-02T10:00:00+08:00", amount=50_000)  # 500 more, 200 fit
    assert [e.amount for e in capped.effects if e.balance == "points"] == [200]
    assert [(t.reason, t.detail) for t in capped.trace if t.outcome == "clipped"][0] == (
        "max_balance", "points award of 500 cut to 200: points is 4800 of at most 5000",
    )
    assert m.balance("points") == 5000
    refused = m.event("adjustment", "2026-03-02T11:00:00+08:00", channel="support", balance="points", amount=1, reason="goodwill")
    assert refused.rejection is not None and refused.rejection.code == "above_max_balance"


def test_a_money_balance_refuses_an_award_beyond_its_maximum_instead_of_dropping_paid_money():
    wallet = program("""
    id: wallet
    name: Wallet
    balances:
      wallet: {unit: money, limits: {max_balance: 100000}}
    rules:
      - id: topup
        on: topup
        then: [{award: {balance: wallet, amount: event.amount}}]
    """)
    m = Member(wallet)
    m.event("topup", "2026-03-01T10:00:00+08:00", amount=90_000)
    too_much = m.event("topup", "2026-03-01T11:00:00+08:00", amount=20_000)
    assert too_much.rejection is not None and too_much.rejection.code == "above_max_balance"
    assert m.balance("wallet") == 90_000


def test_points_pay_at_most_the_share_and_the_units_an_order_allows():
    m = Member(program(LIMITED))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=400_000)  # 4000 points
    paid = m.event("purchase", "2026-03-02T10:00:00+08:00", amount=1_500, order_amount=3_000, points_paid=1_500)
    assert paid.rejection is None
    assert [(e.kind, e.rule, e.amount) for e in paid.effects if e.balance == "points"] == [("spend", None, -1500), ("earn", "earn", 15)]
    over_share = m.event("purchase", "2026-03-02T11:00:00+08:00", amount=1_000, order_amount=3_000, points_paid=2_000)
    assert over_share.rejection is not None and over_share.rejection.code == "order_payment_limit"
    assert over_share.rejection.message == "points may pay at most 50% of an order of 3000: 1500 points, not 2000"
    over_units = m.event("purchase", "2026-03-02T12:00:00+08:00", amount=10_000, points_paid=2_100)
    assert over_units.rejection is not None and over_units.rejection.code == "order_payment_limit"
    too_few = m.event("purchase", "2026-03-02T13:00:00+08:00", amount=10_000, points_paid=99)
    assert too_few.rejection is not None and too_few.rejection.code == "below_min_redemption"
    assert too_few.rejection.pointer == "/attributes/points_paid"
    assert m.balance("points") == 4000 - 1500 + 15


def test_points_never_pay_more_than_the_member_can_spend():
    m = Member(program(LIMITED))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=10_000)  # 100 points
    short = m.event("purchase", "2026-03-02T10:00:00+08:00", amount=10_000, points_paid=150)
    assert short.rejection is not None and short.rejection.code == "insufficient_balance"


def test_a_scheme_without_a_paying_balance_refuses_points_on_an_order():
    m = Member(program(LIMITED.replace("    order_payment: {max_share: 0.5, max_units: 2000}\n", "")))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=10_000)
    refused = m.event("purchase", "2026-03-02T10:00:00+08:00", amount=10_000, points_paid=100)
    assert refused.rejection is not None and refused.rejection.code == "points_not_accepted"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("cost: {balance: points, amount: 100}", "reward 'mug' costs 50 points, below its minimum redemption of 100"),
        ("    value: 1\n", "'order_payment.max_share' needs the balance's 'value'"),
        ("  growth:\n    spendable: false\n", "only one balance of unit count may pay orders"),
    ],
)
def test_limits_that_cannot_hold_are_load_errors(change: str, message: str):
    text = {
        "cost: {balance: points, amount: 100}": LIMITED.replace(change, "cost: {balance: points, amount: 50}"),
        "    value: 1\n": LIMITED.replace(change, ""),
        "  growth:\n    spendable: false\n": LIMITED.replace(change, "  growth:\n    value: 1\n    order_payment: {max_units: 10}\n"),
    }[change]
    loaded = loads(text, "limited.yaml")
    assert loaded.scheme is None
    assert any(message in e.message for e in loaded.errors), [e.message for e in loaded.errors]
