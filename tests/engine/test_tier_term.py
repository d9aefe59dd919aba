"""等级有效期: a tier holds for a term of whole local days from the day it was reached, and a 保级
review at the term's end keeps it for another term or moves the member down."""

from __future__ import annotations

from datetime import UTC, datetime

from perkflow.engine.progress import progress

from .helpers import Member, program

TERM = """
id: term
name: Term
timezone: Asia/Shanghai
balances:
  growth: {spendable: false, expiry: {kind: rolling, after: 6mo}}
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
"""


def _changes(m: Member) -> list[tuple[str | None, str | None, str | None]]:
    return [(e.previous_tier, e.tier, e.reason) for d in m.decisions for e in d.effects if e.kind == "tier_changed"]


def test_a_tier_holds_for_its_term_from_the_local_day_it_was_reached():
    m = Member(program(TERM))
    m.event("purchase", "2026-03-15T14:00:00+08:00", amount=10_000)  # 100 growth: silver
    assert m.state.tier == "silver"
    # reached on 15 March: the term holds through 14 March 2027 and ends at local midnight
    assert m.state.tier_review_at is not None
    assert m.state.tier_review_at.isoformat() == "2027-03-15T00:00:00+08:00"


def test_the_term_counts_the_local_day_of_the_upgrade_at_the_day_boundary():
    # 15:59:59 UTC is 23:59:59 on 15 March in Shanghai; one second later it is 16 March there
    lasting = program(TERM.replace("after: 6mo", "after: 2y"))
    before = Member(lasting)
    before.event("purchase", "2026-03-15T15:59:59+00:00", amount=10_000)
    after = Member(lasting)
    after.event("purchase", "2026-03-15T16:00:00+00:00", amount=10_000)
    assert before.state.tier_review_at == datetime(2027, 3, 14, 16, 0, tzinfo=UTC)  # 15 March 00:00 local
    assert after.state.tier_review_at == datetime(2027, 3, 15, 16, 0, tzinfo=UTC)  # 16 March 00:00 local
    # the last second of the term still holds the tier; the review comes at the midnight
    assert before.advance("2027-03-14T15:59:59+00:00") == []
    [review] = before.advance("2027-03-15T00:00:00+08:00")
    assert review.event_id == "tier_review:m1:20270314T160000Z"


def test_a_member_who_meets_the_retain_at_the_terms_end_keeps_the_tier_for_another_term():
    m = Member(program(TERM.replace("after: 6mo", "after: 2y")))
    m.event("purchase", "2026-03-15T14:00:00+08:00", amount=10_000)  # 100: silver; retain 60
    [review] = m.advance("2027-03-15T00:00:00+08:00")
    assert (review.trace[0].rule, review.trace[0].reason) == ("tier_review", "kept")
    assert review.trace[0].detail == "metric 100, silver needs 60 to keep, held until 2028-03-15T00:00:00+08:00"
    assert m.state.tier == "silver"
    # the new term starts on the day the first ended: 15 March 2027 to 14 March 2028
    assert m.state.tier_review_at.isoformat() == "2028-03-15T00:00:00+08:00"
    assert _changes(m) == [("member", "silver", "upgrade")]


def test_at_the_terms_end_a_member_below_the_retain_moves_to_the_highest_tier_whose_retain_is_met():
    m = Member(program(TERM))
    m.event("purchase", "2026-03-15T14:00:00+08:00", amount=30_000)  # 300: gold
    m.event("purchase", "2026-11-01T14:00:00+08:00", amount=7_000)  # 70 more; the 300 expire in September
    [review] = m.advance("2027-03-15T00:00:00+08:00")
    # 70 is below gold's retain (200) and meets silver's (60): silver, for a new term from that day
    assert review.trace[0].reason == "downgraded"
    assert m.state.tier == "silver" and m.state.tier_since.isoformat() == "2027-03-15T00:00:00+08:00"
    assert m.state.tier_review_at.isoformat() == "2028-03-15T00:00:00+08:00"
    assert _changes(m) == [("member", "gold", "upgrade"), ("gold", "silver", "review")]


def test_an_upgrade_during_a_term_starts_a_new_term_for_the_higher_tier():
    m = Member(program(TERM))
    m.event("purchase", "2026-03-15T14:00:00+08:00", amount=10_000)  # silver
    m.event("purchase", "2026-06-02T09:00:00+08:00", amount=20_000)  # 300: gold
    assert m.state.tier == "gold" and m.state.tier_review_at.isoformat() == "2027-06-02T00:00:00+08:00"


def test_with_grace_a_member_who_fails_the_term_review_keeps_the_tier_until_the_grace_ends():
    m = Member(program(TERM.replace("term: 12mo}", "term: 12mo, grace: 30d}")))
    m.event("purchase", "2026-03-15T14:00:00+08:00", amount=10_000)  # silver; expires in September
    *_expiry, review = m.advance("2027-03-15T00:00:00+08:00")
    assert review.trace[0].reason == "grace" and m.state.tier == "silver"
    m.advance("2027-04-14T00:00:00+08:00")
    assert m.state.tier == "member" and m.state.tier_review_at is None


def test_the_member_view_names_the_last_day_of_the_term_to_keep_the_tier():
    m = Member(program(TERM.replace("after: 6mo", "after: 2y")))
    m.event("purchase", "2026-03-15T14:00:00+08:00", amount=10_000)
    keep = [n for n in progress(m.program, m.state, datetime.fromisoformat("2026-04-01T00:00:00+08:00")) if n.kind == "tier_keep"]
    assert [n.text["en"] for n in keep] == ["enough growth to keep Silver at the review on 2027-03-14"]
