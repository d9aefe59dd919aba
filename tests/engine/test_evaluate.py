"""The engine's semantics, one promise per test: the scheme, the events, the expected balances."""

from __future__ import annotations

from .helpers import Member, ledger_sum, outcomes, program

TIERED = """
id: tiered
name: Tiered
timezone: Asia/Shanghai
balances:
  points: {expiry: {kind: rolling, after: 12mo}}
  growth: {spendable: false}
tiers:
  metric: {balance: growth}
  levels:
    - {id: member, name: Member, threshold: 0, benefits: {multiplier: 1}}
    - {id: gold, name: Gold, threshold: 1000, benefits: {multiplier: 1.5}}
rules:
  - id: earn
    on: purchase
    then:
      - award: {balance: points, amount: "event.amount / 100 * tier.multiplier"}
      - award: {balance: growth, amount: "event.amount / 100"}
"""


def test_a_purchase_earns_at_the_tier_held_before_it_and_the_upgrade_applies_next_time():
    m = Member(program(TIERED))
    first = m.event("purchase", "2026-03-01T10:00:00+08:00", amount=150_000)  # ¥1500: reaches gold
    assert [e.amount for e in first.effects if e.kind == "earn"] == [1500, 1500]
    assert m.state.tier == "gold"
    m.event("purchase", "2026-03-02T10:00:00+08:00", amount=10_000)
    assert m.balance("points") == 1500 + 150  # the second purchase earns x1.5


def test_awards_round_down_unless_the_rule_says_otherwise():
    m = Member(program(TIERED))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=199)  # 1.99 points
    assert m.balance("points") == 1
    half_up = program(TIERED.replace('tier.multiplier"}', 'tier.multiplier", rounding: half_up}'))
    m2 = Member(half_up)
    m2.event("purchase", "2026-03-01T10:00:00+08:00", amount=150)
    assert m2.balance("points") == 2


def test_a_rolling_expiry_keeps_the_whole_last_day_and_ends_at_local_midnight():
    m = Member(program(TIERED))
    m.event("purchase", "2026-01-03T10:00:00+08:00", amount=10_000)
    [lot] = m.state.lots["points"]
    assert lot.expires_at.isoformat() == "2027-01-04T00:00:00+08:00"
    assert m.advance("2027-01-03T23:59:59+08:00") == []
    assert m.balance("points") == 100
    [expiry] = m.advance("2027-01-04T00:00:00+08:00")  # the expiry instant itself is excluded
    assert [(e.kind, e.amount) for e in expiry.effects] == [("expire", -100)]
    assert m.balance("points") == 0


def test_period_end_expiry_is_the_first_instant_of_the_next_period():
    m = Member(program(TIERED.replace("{kind: rolling, after: 12mo}", "{kind: period_end, period: year}")))
    m.event("purchase", "2026-12-31T23:59:00+08:00", amount=10_000)
    assert m.state.lots["points"][0].expires_at.isoformat() == "2027-01-01T00:00:00+08:00"


def test_day_boundaries_follow_the_schemes_timezone_across_daylight_saving():
    ny = program(TIERED.replace("Asia/Shanghai", "America/New_York").replace("after: 12mo", "after: 1d"))
    m = Member(ny, joined="2026-03-07T09:00:00-05:00")
    m.event("purchase", "2026-03-07T10:00:00-05:00", amount=10_000)  # the day before DST starts
    # valid through 8 March (a 23-hour day), gone at local midnight on 9 March, now UTC-4
    assert m.state.lots["points"][0].expires_at.isoformat() == "2026-03-09T00:00:00-04:00"


SPENDING = """
id: spending
name: Spending
balances:
  points:
    expiry: {kind: rolling, after: 30d}
    allow_negative: true
rules:
  - id: earn
    on: purchase
    then: [{award: {balance: points, amount: "event.amount / 100"}}]
  - id: spend
    on: reward_redemption
    then: [{tag: redeemer}]
rewards:
  mug:
    name: Mug
    cost: {balance: points, amount: 150}
    grants: [{tag: mug_owner}]
"""


def test_spending_takes_the_soonest_expiring_lots_first():
    m = Member(program(SPENDING))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=10_000)
    m.event("purchase", "2026-03-05T10:00:00+08:00", amount=10_000)
    decision = m.event("reward_redemption", "2026-03-06T10:00:00+08:00", reward="mug")
    [spend] = [e for e in decision.effects if e.kind == "spend"]
    assert spend.lots == (("e1#1", -100), ("e2#1", -50))
    assert m.lots("points") == [50]
    assert "mug_owner" in m.state.tags


def test_a_reward_the_member_cannot_afford_is_refused_and_changes_nothing():
    m = Member(program(SPENDING))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=10_000)
    before = m.state
    decision = m.event("reward_redemption", "2026-03-02T10:00:00+08:00", reward="mug")
    assert decision.rejection is not None and decision.rejection.code == "insufficient_balance"
    assert decision.effects == () and m.state == before


def test_a_refund_takes_back_in_proportion_and_never_more_than_the_purchase_earned():
    m = Member(program(SPENDING))
    m.event("purchase", "2026-03-01T10:00:00+08:00", event_id="p1", amount=10_001)  # earns 100
    m.event("refund", "2026-03-02T10:00:00+08:00", original_event_id="p1", amount=3_333)
    assert m.balance("points") == 100 - 33  # floor(100 * 3333 / 10001)
    m.event("refund", "2026-03-03T10:00:00+08:00", original_event_id="p1", amount=6_668)
    assert m.balance("points") == 0  # the full refund takes back exactly what was earned
    again = m.event("refund", "2026-03-04T10:00:00+08:00", original_event_id="p1", amount=1)
    assert again.rejection is not None and again.rejection.code == "refund_too_large"


def test_points_already_spent_become_a_debt_that_later_earnings_pay_first():
    m = Member(program(SPENDING))
    m.event("purchase", "2026-03-01T10:00:00+08:00", event_id="p1", amount=20_000)  # 200
    m.event("reward_redemption", "2026-03-02T10:00:00+08:00", reward="mug")  # 50 left
    m.event("refund", "2026-03-03T10:00:00+08:00", original_event_id="p1", amount=20_000)
    assert m.balance("points") == -150
    assert m.state.debts == {"points": 150} and m.lots("points") == []
    m.event("purchase", "2026-03-04T10:00:00+08:00", amount=20_000)  # 200: 150 repays the debt
    assert m.balance("points") == 50 and m.lots("points") == [50]
    assert ledger_sum(m.decisions, "points") == m.balance("points")


def test_without_negative_balances_a_clawback_stops_at_zero():
    m = Member(program(SPENDING.replace("allow_negative: true", "allow_negative: false")))
    m.event("purchase", "2026-03-01T10:00:00+08:00", event_id="p1", amount=20_000)
    m.event("reward_redemption", "2026-03-02T10:00:00+08:00", reward="mug")
    m.event("refund", "2026-03-03T10:00:00+08:00", original_event_id="p1", amount=20_000)
    assert m.balance("points") == 0 and m.state.debts == {}


def test_a_refund_of_an_unknown_purchase_is_refused():
    m = Member(program(SPENDING))
    decision = m.event("refund", "2026-03-03T10:00:00+08:00", original_event_id="nope", amount=100)
    assert decision.rejection is not None
    assert (decision.rejection.code, decision.rejection.pointer) == ("unknown_original_event", "/attributes/original_event_id")


STORED_VALUE = """
id: salon
name: Salon
balances:
  wallet:
    unit: money
    parts: [principal, bonus]
    spending: {ratio: {principal: 5, bonus: 1}}
event_types:
  purchase:
    attributes:
      wallet_paid: {type: money, required: false}
rules:
  - id: topup-bonus
    on: topup
    then:
      - award: {balance: wallet, part: principal, amount: event.amount}
      - award: {balance: wallet, part: bonus, amount: "event.amount // 10000 * 2000"}
  - id: pay-from-wallet
    on: purchase
    when: event.wallet_paid > 0
    then:
      - deduct: {balance: wallet, amount: event.wallet_paid}
"""


def test_top_up_100_get_20_keeps_principal_and_bonus_apart():
    m = Member(program(STORED_VALUE))
    m.event("topup", "2026-03-01T10:00:00+08:00", amount=10_000)
    assert m.state.part_balance("wallet", "principal") == 10_000
    assert m.state.part_balance("wallet", "bonus") == 2_000


def test_spending_stored_value_draws_principal_and_bonus_in_the_declared_ratio():
    m = Member(program(STORED_VALUE))
    m.event("topup", "2026-03-01T10:00:00+08:00", amount=10_000)
    m.event("purchase", "2026-03-02T10:00:00+08:00", amount=6_000, wallet_paid=6_000)
    assert m.state.part_balance("wallet", "principal") == 10_000 - 5_000
    assert m.state.part_balance("wallet", "bonus") == 2_000 - 1_000


def test_a_part_that_runs_out_leaves_the_rest_to_the_other_part():
    m = Member(program(STORED_VALUE.replace("ratio: {principal: 5, bonus: 1}", "order: [bonus, principal]")))
    m.event("topup", "2026-03-01T10:00:00+08:00", amount=10_000)
    m.event("purchase", "2026-03-02T10:00:00+08:00", amount=3_000, wallet_paid=3_000)
    assert m.state.part_balance("wallet", "bonus") == 0
    assert m.state.part_balance("wallet", "principal") == 9_000


def test_a_refunded_top_up_takes_back_its_principal_and_its_bonus():
    m = Member(program(STORED_VALUE))
    m.event("topup", "2026-03-01T10:00:00+08:00", event_id="t1", amount=10_000)
    decision = m.event("refund", "2026-03-02T10:00:00+08:00", original_event_id="t1", amount=10_000)
    assert sorted((e.part, e.amount) for e in decision.effects if e.kind == "clawback") == [
        ("bonus", -2_000),
        ("principal", -10_000),
    ]
    assert m.balance("wallet") == 0


RULES = """
id: rules
name: Rules
balances:
  points: {}
counters:
  visits: {kind: count, on: [purchase], window: 30d}
  streak: {kind: streak, on: [checkin]}
coupons:
  welcome:
    name: Welcome
    benefit: {kind: amount_off, amount: 500}
    min_spend: 3000
    validity: {days: 7}
    budget: 2
    per_member: 1
rules:
  - id: vip-only
    on: purchase
    priority: 10
    exclusive: true
    when: "'vip' in member.tags"
    then: [{award: {balance: points, amount: "100"}}]
  - id: daily-bonus
    on: purchase
    caps: [{limit: 1, per: day}]
    then: [{award: {balance: points, amount: "10"}}]
  - id: fifth-visit
    on: purchase
    when: counters.visits == 5
    then: [{award: {balance: points, amount: "50"}}]
  - id: broken-division
    on: purchase
    then: [{award: {balance: points, amount: "event.amount / (event.amount - event.amount)"}}]
  - id: week-streak
    on: checkin
    when: counters.streak == 7
    then: [{award: {balance: points, amount: "70"}}]
  - id: welcome
    on: signup
    then: [{issue_coupon: {coupon: welcome}}]
"""


def test_frequency_caps_count_local_days():
    m = Member(program(RULES))
    first = m.event("purchase", "2026-03-01T23:00:00+08:00", amount=100)
    second = m.event("purchase", "2026-03-01T23:30:00+08:00", amount=100)
    third = m.event("purchase", "2026-03-02T00:10:00+08:00", amount=100)  # a new local day
    assert [outcomes(d)["daily-bonus"] for d in (first, second, third)] == ["fired", "cap_reached", "fired"]


def test_counters_include_the_event_being_evaluated():
    m = Member(program(RULES))
    decisions = [m.event("purchase", f"2026-03-0{d}T10:00:00+08:00", amount=100) for d in range(1, 7)]
    assert [outcomes(d)["fifth-visit"] for d in decisions] == ["when_false"] * 4 + ["fired", "when_false"]


def test_a_streak_counts_consecutive_local_days_and_breaks_on_a_gap():
    m = Member(program(RULES))
    for day in range(1, 8):
        last = m.event("checkin", f"2026-03-{day:02d}T08:00:00+08:00")
    assert outcomes(last)["week-streak"] == "fired"
    m.event("checkin", "2026-03-09T08:00:00+08:00")  # 8 March missed
    assert m.state.counters["streak"].streak == 1


def test_an_exclusive_rule_stops_the_rules_after_it_and_the_trace_says_so():
    m = Member(program(RULES))
    m.state = m.state.__class__(**{**{f: getattr(m.state, f) for f in m.state.__dataclass_fields__}, "tags": frozenset({"vip"})})
    decision = m.event("purchase", "2026-03-01T10:00:00+08:00", amount=100)
    assert outcomes(decision) == {
        "vip-only": "fired",
        "daily-bonus": "after_exclusive",
        "fifth-visit": "after_exclusive",
        "broken-division": "after_exclusive",
    }


def test_a_runtime_expression_error_skips_the_rule_and_is_traced():
    m = Member(program(RULES))
    decision = m.event("purchase", "2026-03-01T10:00:00+08:00", amount=100)
    [line] = [t for t in decision.trace if t.rule == "broken-division"]
    assert (line.outcome, line.reason) == ("skipped", "expression_error")
    assert "division by zero" in line.detail
    assert m.balance("points") == 10  # the other rules still ran


def test_the_condition_trace_names_the_values_it_read():
    m = Member(program(RULES))
    decision = m.event("purchase", "2026-03-01T10:00:00+08:00", amount=100)
    [line] = [t for t in decision.trace if t.rule == "fifth-visit"]
    assert dict(line.read) == {"counters.visits": 1}


def test_a_spent_coupon_budget_shows_as_a_skip_not_an_error():
    prog = program(RULES)
    members = [Member(prog, f"m{i}") for i in range(3)]
    budgets: dict[str, int] = {}
    results = []
    for member in members:
        member.budgets = budgets
        results.append(outcomes(member.event("signup", "2026-03-01T10:00:00+08:00"))["welcome"])
    assert results == ["fired", "fired", "budget_exhausted"]
    assert budgets == {"coupon:welcome": 2}


def test_a_coupon_is_used_once_and_only_above_its_minimum_spend():
    m = Member(program(RULES))
    m.event("signup", "2026-03-01T10:00:00+08:00", event_id="s1")
    [coupon] = m.state.coupons
    small = m.event("purchase", "2026-03-02T10:00:00+08:00", amount=2_000, coupons=[coupon.id])
    assert small.rejection is not None and small.rejection.code == "coupon_min_spend"
    used = m.event("purchase", "2026-03-02T11:00:00+08:00", amount=3_000, coupons=[coupon.id])
    assert [(e.kind, e.discount) for e in used.effects if e.kind == "coupon_redeemed"] == [("coupon_redeemed", 500)]
    again = m.event("purchase", "2026-03-02T12:00:00+08:00", amount=3_000, coupons=[coupon.id])
    assert again.rejection is not None and again.rejection.code == "coupon_not_usable"


def test_a_coupon_is_valid_for_whole_local_days_counting_the_day_of_issue():
    m = Member(program(RULES))
    m.event("signup", "2026-03-01T22:00:00+08:00")
    assert m.state.coupons[0].valid_until.isoformat() == "2026-03-08T00:00:00+08:00"


def test_an_event_much_older_than_the_members_latest_is_refused():
    m = Member(program(RULES))
    m.event("purchase", "2026-03-20T10:00:00+08:00", amount=100)
    late = m.event("purchase", "2026-03-01T10:00:00+08:00", amount=100)
    assert late.rejection is not None and late.rejection.code == "late_event"
    on_time = m.event("purchase", "2026-03-14T10:00:00+08:00", amount=100)
    assert on_time.rejection is None


REVIEWED = """
id: reviewed
name: Reviewed
balances:
  growth: {spendable: false, expiry: {kind: rolling, after: 6mo}}
tiers:
  metric: {balance: growth}
  levels:
    - {id: member, name: Member, threshold: 0}
    - {id: gold, name: Gold, threshold: 100, retain: 80}
  downgrade: {kind: review, every: 12mo, grace: 30d}
rules:
  - id: earn
    on: purchase
    then: [{award: {balance: growth, amount: "event.amount / 100"}}]
"""


def test_a_tier_review_after_grace_downgrades_a_member_below_the_retain_threshold():
    m = Member(program(REVIEWED))
    m.event("purchase", "2026-01-10T10:00:00+08:00", amount=10_000)  # 100 growth: gold
    assert m.state.tier == "gold"
    assert m.state.tier_review_at is not None and m.state.tier_review_at.isoformat() == "2027-01-10T10:00:00+08:00"
    m.advance("2027-01-10T10:00:00+08:00")  # growth expired in July: review fails, grace starts
    assert m.state.tier == "gold" and m.state.grace_until is not None
    m.event("purchase", "2027-01-20T10:00:00+08:00", amount=5_000)  # 50: still under 80
    m.advance("2027-02-09T10:00:00+08:00")
    assert m.state.tier == "member"
    changes = [e for d in m.decisions for e in d.effects if e.kind == "tier_changed"]
    assert [(c.previous_tier, c.tier, c.reason) for c in changes] == [("member", "gold", "upgrade"), ("gold", "member", "review")]


def test_a_member_who_keeps_the_retain_threshold_keeps_the_tier_for_another_period():
    m = Member(program(REVIEWED.replace("after: 6mo", "after: 2y")))
    m.event("purchase", "2026-01-10T10:00:00+08:00", amount=10_000)
    [review] = m.advance("2027-01-10T10:00:00+08:00")
    assert review.trace[0].reason == "kept"
    assert m.state.tier == "gold" and m.state.tier_review_at.isoformat() == "2028-01-10T10:00:00+08:00"


CAMPAIGN = """
id: campaign
name: Campaign
balances:
  points: {}
campaigns:
  - id: double
    name: Double
    start: 2026-06-01T00:00:00
    end: 2026-07-01T00:00:00
    rollout: 0.5
    holdout: 0.2
    budget: {balance: points, limit: 250}
    rules:
      - id: double-points
        on: purchase
        then: [{award: {balance: points, amount: "event.amount / 100"}}]
"""


def test_a_campaign_applies_only_inside_its_local_window():
    m = Member(program(CAMPAIGN.replace("rollout: 0.5", "rollout: 1").replace("holdout: 0.2", "holdout: 0")))
    before = m.event("purchase", "2026-05-31T23:59:59+08:00", amount=100)
    inside = m.event("purchase", "2026-06-01T00:00:00+08:00", amount=100)
    after = m.event("purchase", "2026-07-01T00:00:00+08:00", amount=100)
    assert [outcomes(d)["double-points"] for d in (before, inside, after)] == ["outside_window", "fired", "outside_window"]


def test_a_campaign_budget_is_never_exceeded():
    prog = program(CAMPAIGN.replace("rollout: 0.5", "rollout: 1").replace("holdout: 0.2", "holdout: 0"))
    budgets: dict[str, int] = {}
    fired = 0
    for i in range(5):
        m = Member(prog, f"m{i}")
        m.budgets = budgets
        fired += outcomes(m.event("purchase", "2026-06-02T10:00:00+08:00", amount=10_000))["double-points"] == "fired"
    assert fired == 2 and budgets == {"campaign:double": 200}


def test_holdout_and_rollout_follow_the_settled_hash():
    import hashlib

    prog = program(CAMPAIGN.replace("limit: 250", "limit: 100000000"))
    for i in range(200):
        member_id = f"member-{i}"
        u = int(hashlib.sha256(f"double:{member_id}".encode()).hexdigest()[:16], 16) / 2**64
        expected = "in_holdout" if u < 0.2 else "fired" if u < 0.2 + 0.5 * 0.8 else "not_in_rollout"
        m = Member(prog, member_id)
        assert outcomes(m.event("purchase", "2026-06-02T10:00:00+08:00", amount=100))["double-points"] == expected


def test_the_same_inputs_give_an_equal_decision():
    prog = program(RULES)
    a, b = Member(prog), Member(prog)
    for m in (a, b):
        m.event("signup", "2026-03-01T10:00:00+08:00")
        m.event("purchase", "2026-03-02T10:00:00+08:00", amount=5_000)
    assert a.decisions == b.decisions
    assert a.decisions[-1].to_dict() == b.decisions[-1].to_dict()
