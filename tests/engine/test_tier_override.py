"""人工调级: staff hold a member at least at a tier (floor) or exactly at one (fixed), until a time
or until removed; the trace says so, and at its end the tier given is reviewed."""

from __future__ import annotations

from perkflow.engine import Decision, evaluate, parse_event
from perkflow.engine.simulate import member_view

from .helpers import Member, outcomes, program

TIERS = """
id: override
name: Override
timezone: Asia/Shanghai
balances:
  growth: {}
tiers:
  metric: {balance: growth}
  levels:
    - {id: member, name: Member, threshold: 0}
    - {id: silver, name: Silver, threshold: 100, retain: 60}
    - {id: gold, name: Gold, threshold: 300, retain: 200}
  downgrade: {kind: term, term: 12mo}
rules:
  - id: earn
    on: purchase
    then: [{award: {balance: growth, amount: "event.amount / 100"}}]
  - id: refund-growth
    on: adjustment_done
    then: [{deduct: {balance: growth, amount: "event.units"}}]
event_types:
  adjustment_done:
    attributes: {units: {type: int}}
"""


def _override(m: Member, at: str, kind: str, tier: str, reason: str = "VIP complaint", until: str | None = None, event_id: str = "o1") -> Decision:
    """What the service posts when staff set an override (an attribute named `kind`, which
    Member.event takes for the event type)."""
    attributes = {"kind": kind, "tier": tier, "reason": reason} | ({"until": until} if until else {})
    raw = {"id": event_id, "type": "tier_override", "member_id": m.state.member_id, "occurred_at": at, "channel": "support", "attributes": attributes}
    event, errors = parse_event(raw, m.program.event_types)
    assert event is not None, errors
    m.advance(event.occurred_at)
    decision = evaluate(m.program, m.state, event, m.budgets)
    m._take(decision)
    return decision


def _changes(m: Member) -> list[tuple[str | None, str | None, str | None]]:
    return [(e.previous_tier, e.tier, e.reason) for d in m.decisions for e in d.effects if e.kind == "tier_changed"]


def test_a_fixed_override_sets_the_tier_at_once_and_holds_it_against_upgrades_until_it_ends():
    m = Member(program(TIERS))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=5_000)  # 50: member
    set_ = _override(m, "2026-03-02T10:00:00+08:00", "fixed", "gold", until="2026-04-01T00:00:00+08:00")
    assert set_.rejection is None and m.state.tier == "gold"
    assert [t.to_dict() for t in set_.trace][0] == {
        "rule": "tier_override", "outcome": "fired", "reason": "set",
        "detail": "held by a fixed override at gold until 2026-04-01T00:00:00+08:00 (VIP complaint)",
    }
    view = member_view(m.program, m.state, m.state.last_event_at)
    assert view["tier_override"] == {
        "kind": "fixed", "tier": "gold", "until": "2026-04-01T00:00:00+08:00", "reason": "VIP complaint",
        "set_at": "2026-03-02T10:00:00+08:00",
    }
    # at its end the given tier is reviewed: 50 growth keeps neither gold (200) nor silver (60)
    [end] = m.advance("2026-04-01T00:00:00+08:00")
    assert end.event_id == "tier_override_end:m1:20260331T160000Z"
    assert m.state.tier == "member" and m.state.tier_override is None
    assert _changes(m) == [("member", "gold", "override"), ("gold", "member", "override_end")]


def test_while_a_fixed_override_holds_an_upgrade_the_metric_reaches_is_skipped_and_the_trace_says_why():
    m = Member(program(TIERS))
    _override(m, "2026-03-02T10:00:00+08:00", "fixed", "silver")
    purchase = m.event("purchase", "2026-03-03T10:00:00+08:00", amount=40_000)  # 400 growth: gold by the metric
    assert m.state.tier == "silver"
    [held] = [t for t in purchase.trace if t.rule == "tier"]
    assert (held.outcome, held.reason) == ("skipped", "tier_override")
    assert held.detail == "upgrade to gold: held by a fixed override at silver (VIP complaint)"


def test_when_a_fixed_override_ends_the_upgrade_it_held_back_applies_at_once():
    m = Member(program(TIERS))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=10_000)  # silver
    _override(m, "2026-03-02T10:00:00+08:00", "fixed", "member")  # held down while a complaint is looked into
    m.event("purchase", "2026-03-03T10:00:00+08:00", amount=30_000)  # 400 growth: gold by the metric, held
    assert m.state.tier == "member"
    ended = m.event("tier_override_end", "2026-03-05T10:00:00+08:00", event_id="tier_override_end:m1:manual-1", channel="support")
    # the given tier (member) is kept, since it is the lowest; then the metric's gold applies now
    assert m.state.tier == "gold" and m.state.tier_since.isoformat() == "2026-03-05T10:00:00+08:00"
    assert _changes(m)[-2:] == [("silver", "member", "override"), ("member", "gold", "upgrade")]
    assert [(e.kind, e.tier) for e in ended.effects] == [("tier_override_end", "member"), ("tier_changed", "gold")]


def test_a_floor_raises_a_lower_tier_lets_the_metric_go_higher_and_a_review_never_takes_the_member_below_it():
    m = Member(program(TIERS))
    _override(m, "2026-03-02T10:00:00+08:00", "floor", "silver", until="2027-06-01T00:00:00+08:00")
    assert m.state.tier == "silver"
    m.event("purchase", "2026-03-03T10:00:00+08:00", amount=30_000)  # 300: gold, above the floor
    assert m.state.tier == "gold"
    m.event("adjustment_done", "2026-04-01T10:00:00+08:00", units=300)  # growth back to 0
    [review] = m.advance("2027-03-03T00:00:00+08:00")  # gold's term ends: 0 keeps nothing, the floor holds silver
    assert [(t.rule, t.reason) for t in review.trace] == [("tier", "tier_override"), ("tier_review", "downgraded")]
    assert review.trace[0].detail == "review to member: held by a floor override at silver until 2027-06-01T00:00:00+08:00 (VIP complaint)"
    assert m.state.tier == "silver"


def test_a_review_during_a_fixed_override_keeps_the_tier_and_says_it_is_held_by_the_override():
    m = Member(program(TIERS))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=10_000)  # silver, term to 1 March 2027
    _override(m, "2026-03-02T10:00:00+08:00", "fixed", "silver")
    [review] = m.advance("2027-03-01T00:00:00+08:00")
    m.event("adjustment_done", "2027-03-01T10:00:00+08:00", units=100)
    assert review.trace[0].reason == "tier_override" and m.state.tier == "silver"
    assert m.state.tier_review_at.isoformat() == "2028-03-01T00:00:00+08:00"


def test_an_override_that_never_moved_the_tier_leaves_it_to_its_own_rules_at_its_end():
    m = Member(program(TIERS))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=30_000)  # gold
    m.event("adjustment_done", "2026-03-01T11:00:00+08:00", units=250)  # 50 left: gold holds for its term
    _override(m, "2026-03-02T10:00:00+08:00", "floor", "silver", until="2026-04-01T00:00:00+08:00")
    m.advance("2026-04-01T00:00:00+08:00")
    assert m.state.tier == "gold" and m.state.tier_override is None


def test_an_override_is_refused_for_an_unknown_tier_without_a_reason_or_ending_before_it_starts():
    m = Member(program(TIERS))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=5_000)
    for kind, tier, reason, until, code in (
        ("fixed", "platinum", "x", None, "unknown_tier"),
        ("floor", "gold", "  ", None, "missing_reason"),
        ("floor", "gold", "x", "2026-03-01T10:00:00+08:00", "override_already_over"),
    ):
        refused = _override(m, "2026-03-02T10:00:00+08:00", kind, tier, reason, until)
        assert refused.rejection is not None and refused.rejection.code == code
    assert m.state.tier == "member" and m.state.tier_override is None


def test_ending_an_override_by_hand_is_an_event_and_a_member_without_one_is_refused():
    m = Member(program(TIERS))
    _override(m, "2026-03-02T10:00:00+08:00", "fixed", "gold")
    ended = m.event("tier_override_end", "2026-03-05T10:00:00+08:00", event_id="tier_override_end:m1:manual-1", channel="support")
    assert ended.rejection is None and m.state.tier == "member"
    assert outcomes(ended) == {"tier_override": "fired"}
    again = m.event("tier_override_end", "2026-03-06T10:00:00+08:00", event_id="tier_override_end:m1:manual-2", channel="support")
    assert again.rejection is not None and again.rejection.code == "no_tier_override"
