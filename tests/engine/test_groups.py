"""Evaluation groups: rules and campaigns that compete for one event fire under their group's
policy (all, first, best, lowest_cost); the rules that lose are traced `group_lost` naming the
winner, and consume no budget, cap or stock."""

from __future__ import annotations

from .helpers import Member, outcomes, program

SCHEME = """
perkflow: 1
id: groups
name: Groups
balances:
  points: {value: 1}
  cash: {unit: money}
tiers:
  metric: {balance: points}
  levels:
    - {id: member, name: Member, threshold: 0, benefits: {bonus: 0}}
    - {id: gold, name: Gold, threshold: 1000000, benefits: {bonus: 1}}
rules:
  - id: base
    on: purchase
    then:
      - award: {balance: points, amount: "event.amount / 100"}
  - id: big-spender
    on: purchase
    group: bonus
    when: event.amount >= 10000
    then:
      - award: {balance: points, amount: "event.amount / 100 * 0.5"}
  - id: cashback
    on: purchase
    group: bonus
    caps: [{limit: 1, per: lifetime}]
    then:
      - award: {balance: cash, amount: "300"}
  - id: coupon-gift
    on: purchase
    group: bonus
    then:
      - issue_coupon: {coupon: ten-off}
coupons:
  ten-off: {name: 10 off, benefit: {kind: amount_off, amount: 1000}, min_spend: 5000, validity: {days: 30}, budget: 1}
groups:
  bonus: {policy: POLICY}
campaigns:
  - id: double
    name: Double points
    start: 2026-01-01T00:00:00
    end: 2027-01-01T00:00:00
    group: bonus
    budget: {balance: points, limit: 250}
    rules:
      - id: double-points
        on: purchase
        then:
          - award: {balance: points, amount: "event.amount / 100"}
"""
AT = "2026-03-02T10:00:00+08:00"


def _member(policy: str) -> Member:
    return Member(program(SCHEME.replace("POLICY", policy)))


def test_with_policy_all_every_rule_of_the_group_fires():
    m = _member("all")
    decision = m.event("purchase", AT, amount=20_000)
    assert outcomes(decision) == {
        "base": "fired",
        "big-spender": "fired",
        "cashback": "fired",
        "coupon-gift": "fired",
        "double-points": "fired",
    }
    assert (m.balance("points"), m.balance("cash")) == (200 + 100 + 200, 300)


def test_with_policy_best_only_the_rule_worth_most_to_the_member_fires():
    m = _member("best")
    # worth: big-spender 100 points = 100; cashback 300; coupon 1000 (face value); double 200
    first = m.event("purchase", AT, amount=20_000)
    assert outcomes(first) == {
        "base": "fired",
        "big-spender": "group_lost",
        "cashback": "group_lost",
        "coupon-gift": "fired",
        "double-points": "group_lost",
    }
    lost = {t.rule: t.detail for t in first.trace if t.reason == "group_lost"}
    assert lost["cashback"] == "group 'bonus' (best): rule 'coupon-gift' won: worth 1000 against 300"
    # the coupon budget (1) is spent: the next best wins, and the losers used no cap or budget
    second = m.event("purchase", "2026-03-03T10:00:00+08:00", amount=20_000)
    assert outcomes(second)["coupon-gift"] == "budget_exhausted"
    assert outcomes(second)["cashback"] == "fired"
    assert second.budget_uses == {}
    third = m.event("purchase", "2026-03-04T10:00:00+08:00", amount=20_000)
    assert outcomes(third)["cashback"] == "cap_reached"
    assert outcomes(third)["double-points"] == "fired"
    assert third.budget_uses == {"campaign:double": 200}
    assert m.balance("cash") == 300


def test_with_policy_lowest_cost_the_cheapest_rule_fires():
    m = _member("lowest_cost")
    decision = m.event("purchase", AT, amount=20_000)
    assert outcomes(decision)["big-spender"] == "fired"  # worth 100, the least
    assert {r for r, o in outcomes(decision).items() if o == "group_lost"} == {"cashback", "coupon-gift", "double-points"}
    assert decision.budget_uses == {}


def test_with_policy_first_the_first_rule_that_passes_fires_and_the_rest_are_not_tried():
    m = _member("first")
    small = m.event("purchase", AT, amount=6000)  # big-spender's condition is false
    assert outcomes(small) == {
        "base": "fired",
        "big-spender": "when_false",
        "cashback": "fired",
        "coupon-gift": "group_lost",
        "double-points": "group_lost",
    }
    assert [t.detail for t in small.trace if t.rule == "coupon-gift"] == ["group 'bonus' (first): rule 'cashback' fired first"]


def test_ties_in_value_go_to_the_higher_priority_then_to_file_order():
    scheme = """
    perkflow: 1
    id: ties
    name: Ties
    balances:
      points: {value: 1}
    groups:
      g: {policy: best}
    rules:
      - {id: a, on: purchase, group: g, then: [{award: {balance: points, amount: "10"}}]}
      - {id: b, on: purchase, group: g, then: [{award: {balance: points, amount: "10"}}]}
      - {id: c, on: purchase, group: g, priority: -1, then: [{award: {balance: points, amount: "10"}}]}
    """
    m = Member(program(scheme))
    assert outcomes(m.event("purchase", AT, amount=100)) == {"a": "fired", "b": "group_lost", "c": "group_lost"}
    m = Member(program(scheme.replace("priority: -1", "priority: 1")))
    assert outcomes(m.event("purchase", AT, amount=100)) == {"c": "fired", "a": "group_lost", "b": "group_lost"}


def test_a_rule_outside_the_window_or_audience_does_not_compete():
    m = _member("best")
    decision = m.event("purchase", "2027-03-02T10:00:00+08:00", amount=20_000)
    assert outcomes(decision)["double-points"] == "outside_window"
    assert outcomes(decision)["coupon-gift"] == "fired"


def test_a_group_is_decided_deterministically():
    first = _member("best").event("purchase", AT, amount=20_000)
    again = _member("best").event("purchase", AT, amount=20_000)
    assert first == again


def test_a_group_must_be_declared_and_one_that_compares_value_needs_the_worth_of_its_balances():
    from perkflow.rules import loads

    scheme = """
perkflow: 1
id: bad
name: Bad
balances:
  growth: {}
groups:
  g: {policy: best}
rules:
  - {id: a, on: purchase, group: g, then: [{award: {balance: growth, amount: "10"}}]}
  - {id: b, on: purchase, group: gg, then: [{award: {balance: growth, amount: "10"}}]}
"""
    loaded = loads(scheme, "bad.yaml")
    assert [(e.code, e.path, e.line) for e in loaded.errors] == [
        ("group_needs_value", "rules[0].then[0].award", 10),
        ("unknown_group", "rules[1].group", 11),
    ]
    assert "balance 'growth' needs a 'value'" in loaded.errors[0].message
    assert "did you mean 'g'" in loaded.errors[1].message
