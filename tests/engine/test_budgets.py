"""Budgets of every shape: per local day, per store, in face value, and a campaign's liability cap;
running out shows in the trace as a skip with its reason."""

from __future__ import annotations

from perkflow.rules import loads

from .helpers import Member, outcomes, program

SHAPES = """
id: shapes
name: Shapes
timezone: Asia/Shanghai
balances:
  points: {value: 0.5}
rules:
  - id: daily
    on: checkin
    then: [{issue_coupon: {coupon: daily}}]
  - id: gift
    on: signup
    then: [{issue_coupon: {coupon: gift}}]
coupons:
  daily:
    name: Daily
    benefit: {kind: amount_off, amount: 300}
    validity: {days: 1}
    budget: 2
    budget_per: day
    budget_by_store: true
  gift:
    name: Gift
    benefit: {kind: percent_off, percent: 10, max_off: 2000}
    validity: {days: 30}
    money_budget: 5000
campaigns:
  - id: launch
    name: Launch
    start: 2026-01-01T00:00:00
    end: 2027-01-01T00:00:00
    budget: {balance: points, limit: 100000, liability: 1000}
    rules:
      - id: launch-points
        on: purchase
        then: [{award: {balance: points, amount: "event.amount / 100"}}]
"""
PROGRAM = program(SHAPES)


def _shared(members: list[Member]) -> None:
    """The members share one budget snapshot, as the database shares the counters."""
    for m in members[1:]:
        m.budgets = members[0].budgets


def test_a_daily_budget_per_store_counts_afresh_each_local_day_and_in_each_store():
    members = [Member(PROGRAM, f"m{i}") for i in range(4)]
    _shared(members)
    got = [bool(m.event("checkin", "2026-03-01T10:00:00+08:00", store="S1").effects) for m in members[:3]]
    assert got == [True, True, False]
    skipped = members[2].decisions[-1]
    assert outcomes(skipped) == {"daily": "budget_exhausted"}
    assert skipped.trace[0].detail == "coupon 'daily' budget coupon:daily@2026-03-01|S1 has 0 of 2 left, 1 needed"
    assert members[3].event("checkin", "2026-03-01T11:00:00+08:00", store="S2").effects  # another store
    assert members[2].event("checkin", "2026-03-02T00:00:00+08:00", store="S1").effects  # the next local day
    assert members[0].budgets == {"coupon:daily@2026-03-01|S1": 2, "coupon:daily@2026-03-01|S2": 1, "coupon:daily@2026-03-02|S1": 1}
    assert members[2].decisions[-1].budget_limits == {"coupon:daily@2026-03-02|S1": 2}


def test_a_money_budget_counts_the_face_value_given_away():
    members = [Member(PROGRAM, f"m{i}") for i in range(4)]
    _shared(members)
    issued = [any(e.kind == "coupon_issued" for e in m.event("signup", "2026-03-01T10:00:00+08:00").effects) for m in members]
    assert issued == [True, True, False, False]  # 2,000 of face value each, 5,000 in all
    assert members[0].budgets["coupon_value:gift"] == 4000


def test_a_campaigns_liability_cap_stops_awards_worth_more_than_is_left():
    m = Member(PROGRAM)
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=150_000)  # 1,500 points worth 750
    second = m.event("purchase", "2026-03-02T10:00:00+08:00", amount=60_001)  # 600 points worth 300 > 250 left
    assert outcomes(second) == {"launch-points": "budget_exhausted"}
    assert second.trace[0].detail == "campaign liability cap has 250 of 1000 left, the award is worth 300"
    third = m.event("purchase", "2026-03-03T10:00:00+08:00", amount=49_900)  # 499 points worth 249.5, rounded up
    assert m.budgets["campaign_value:launch"] == 750 + 250 and outcomes(third) == {"launch-points": "fired"}


def test_budget_shapes_that_cannot_hold_are_load_errors():
    shaped_without_budget = SHAPES.replace("    budget: 2\n", "")
    no_max_off = SHAPES.replace("percent: 10, max_off: 2000", "percent: 10")
    no_value = SHAPES.replace("points: {value: 0.5}", "points: {}")
    for text, message in (
        (shaped_without_budget, "'budget_per' and 'budget_by_store' shape the 'budget'"),
        (no_max_off, "needs 'max_off'"),
        (no_value, "balance 'points' needs a 'value'"),
    ):
        loaded = loads(text, "shapes.yaml")
        assert loaded.scheme is None and any(message in e.message for e in loaded.errors), [e.message for e in loaded.errors]
