"""One test per engine bug found, named by what it broke: the scheme, the events, what must hold."""

from __future__ import annotations

from .helpers import Member, ledger_sum, outcomes, program

UPGRADE_COUPON_ONCE = """
id: upgrade-once
name: Upgrade coupon once
balances:
  growth: {spendable: false}
tiers:
  metric: {balance: growth}
  levels:
    - {id: member, name: Member, threshold: 0}
    - id: silver
      name: Silver
      threshold: 100
      on_reach: [{issue_coupon: {coupon: upgrade}}]
    - id: gold
      name: Gold
      threshold: 1000
      on_reach: [{issue_coupon: {coupon: upgrade}}]
rules:
  - id: earn
    on: purchase
    then: [{award: {balance: growth, amount: "event.amount / 100"}}]
coupons:
  upgrade:
    name: Upgrade gift
    benefit: {kind: amount_off, amount: 500}
    min_spend: 2000
    validity: {days: 30}
    per_member: 1
"""


def test_an_upgrade_whose_on_reach_coupon_is_capped_still_upgrades_and_says_why_no_coupon():
    # Found while building examples/coffee: an on_reach action that could not be applied (here the
    # coupon's per-member cap) raised the engine's internal skip out of `evaluate`.
    m = Member(program(UPGRADE_COUPON_ONCE))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=20_000)  # ¥200: silver, first coupon
    second = m.event("purchase", "2026-03-02T10:00:00+08:00", amount=100_000)  # ¥1000 more: gold
    assert second.rejection is None
    assert m.state.tier == "gold"
    assert [c.policy for c in m.state.coupons] == ["upgrade"]
    assert outcomes(second)["tier:gold"] == "member_cap_reached"


GRANTING_RULE = """
id: granting-rule
name: A rule that grants a reward
balances:
  points: {}
rules:
  - id: buy-and-gift
    on: purchase
    then:
      - award: {balance: points, amount: "10"}
      - grant_reward: {reward: gift}
coupons:
  gift-coupon:
    name: Gift coupon
    benefit: {kind: amount_off, amount: 100}
    min_spend: 100
    validity: {days: 3}
    budget: 1
rewards:
  gift:
    name: Gift
    cost: {balance: points, amount: 1}
    grants: [{issue_coupon: {coupon: gift-coupon}}]
"""


def test_a_rule_whose_granted_reward_cannot_be_given_fires_not_at_all():
    # A rule fires whole or not at all. What a granted reward itself grants was not checked before
    # the rule's other actions applied: the rule was traced as skipped (budget_exhausted) while
    # its points and the reward were still given.
    m = Member(program(GRANTING_RULE))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=1000)
    second = m.event("purchase", "2026-03-01T11:00:00+08:00", amount=1000)
    assert outcomes(second) == {"buy-and-gift": "budget_exhausted"}
    assert second.effects == ()
    assert m.balance("points") == 10 == ledger_sum(m.decisions, "points")
    assert dict(m.state.rewards) == {"gift": 1}


def test_an_expiry_before_a_refused_event_is_counted_once():
    # A refused event used to drop the member state advanced for it, so its expiry ran again later.
    from perkflow.engine import compile, replay
    from perkflow.rules import loads

    scheme = loads(
        "id: x\nname: X\nbalances:\n  points: {expiry: {kind: rolling, after: 1d}}\n"
        "rules:\n  - {id: e, on: purchase, then: [{award: {balance: points, amount: event.amount}}]}\n",
        "x.yaml",
    ).scheme
    assert scheme is not None
    events = [
        {"id": "s", "type": "signup", "member_id": "m", "occurred_at": "2026-01-01T10:00:00+08:00"},
        {"id": "p", "type": "purchase", "member_id": "m", "occurred_at": "2026-01-01T11:00:00+08:00", "attributes": {"amount": 35}},
        {"id": "r", "type": "refund", "member_id": "m", "occurred_at": "2026-01-05T11:00:00+08:00", "attributes": {"amount": 5, "original_event_id": "zz"}},
        {"id": "q", "type": "purchase", "member_id": "m", "occurred_at": "2026-01-06T11:00:00+08:00", "attributes": {"amount": 1}},
    ]
    report = replay(compile(scheme), events).report()
    assert report["totals"]["balances"]["points"]["expired"] == 35
    assert report["events"] == {"applied": 3, "rejected": 1, "system": 1}
