"""期初导入: a member from another system opens with their lots (and expiry dates), tier with the day
it was reached, and unused coupons; each lot is a ledger entry of kind `opening`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from perkflow.engine import Decision, evaluate, new_member, parse_event

from .helpers import Member, program

SCHEME = """
id: moving
name: Moving
timezone: Asia/Shanghai
balances:
  points: {expiry: {kind: rolling, after: 12mo}}
  wallet: {unit: money, parts: [principal, bonus], spending: {order: [bonus, principal]}}
tiers:
  metric: {balance: points}
  levels:
    - {id: member, name: Member, threshold: 0}
    - {id: gold, name: Gold, threshold: 1000, retain: 800}
  downgrade: {kind: term, term: 12mo}
coupons:
  ten: {name: Ten off, benefit: {kind: amount_off, amount: 1000}, validity: {days: 30}}
rules:
  - id: earn
    on: purchase
    then: [{award: {balance: points, amount: "event.amount / 100"}}]
"""
AT = "2026-11-01T00:00:00+08:00"


def opening(m: Member, content: dict[str, Any], at: str = AT) -> Decision:
    raw = {"id": f"opening:{m.state.member_id}", "type": "opening", "member_id": m.state.member_id, "occurred_at": at,
           "channel": "import", "attributes": {"data": json.dumps(content)}}
    event, errors = parse_event(raw, m.program.event_types)
    assert event is not None, errors
    decision = evaluate(m.program, m.state, event, m.budgets)
    m._take(decision)
    return decision


CONTENT = {
    "lots": [
        {"balance": "points", "amount": 700, "earned_at": "2026-02-10T12:00:00+08:00", "expires_at": "2027-02-11T00:00:00+08:00"},
        {"balance": "points", "amount": 500, "earned_at": "2026-09-01T12:00:00+08:00", "expires_at": "2027-09-02T00:00:00+08:00"},
        {"balance": "wallet", "part": "principal", "amount": 10_000, "earned_at": "2026-05-01T12:00:00+08:00"},
        {"balance": "wallet", "part": "bonus", "amount": 2_000, "earned_at": "2026-05-01T12:00:00+08:00"},
    ],
    "tier": "gold",
    "tier_reached_at": "2026-03-15T09:00:00+08:00",
    "coupons": [{"policy": "ten", "valid_until": "2026-12-01T00:00:00+08:00", "code": "OLD-123"}],
}


def test_an_opening_brings_lots_with_their_expiry_the_tier_with_its_term_and_coupons_as_ledger_entries_of_their_own():
    m = Member(program(SCHEME), joined=AT)
    decision = opening(m, CONTENT)
    assert decision.rejection is None
    assert [(e.kind, e.balance, e.part, e.amount) for e in decision.effects if e.balance] == [
        ("opening", "points", None, 700), ("opening", "points", None, 500),
        ("opening", "wallet", "principal", 10_000), ("opening", "wallet", "bonus", 2_000),
    ]
    assert (m.balance("points"), m.state.part_balance("wallet", "principal"), m.state.part_balance("wallet", "bonus")) == (1200, 10_000, 2_000)
    # the term counts from the day the tier was reached in the other system
    assert m.state.tier == "gold" and m.state.tier_review_at.isoformat() == "2027-03-15T00:00:00+08:00"
    assert [(c.policy, c.code, c.valid_until.isoformat()) for c in m.state.coupons] == [("ten", "OLD-123", "2026-12-01T00:00:00+08:00")]
    # the lots keep their dates: the February lot expires first, in February
    m.advance("2027-02-11T00:00:00+08:00")
    assert m.balance("points") == 500


def test_an_opening_that_cannot_hold_is_refused_whole_and_changes_nothing():
    cases = [
        ({"lots": [{"balance": "miles", "amount": 5, "earned_at": AT}]}, "unknown_balance"),
        ({"lots": [{"balance": "points", "amount": 0, "earned_at": AT}]}, "wrong_amount"),
        ({"lots": [{"balance": "wallet", "amount": 5, "earned_at": AT}]}, "missing_part"),
        ({"lots": [{"balance": "points", "amount": 5, "earned_at": "2026-01-01T00:00:00+08:00", "expires_at": "2026-10-01T00:00:00+08:00"}]}, "lot_expired"),
        ({"tier": "platinum", "tier_reached_at": AT}, "unknown_tier"),
        ({"coupons": [{"policy": "ten", "valid_until": "2026-10-01T00:00:00+08:00"}]}, "coupon_expired"),
        ({"coupons": [{"policy": "nine", "valid_until": "2027-10-01T00:00:00+08:00"}]}, "unknown_coupon_policy"),
    ]
    for content, code in cases:
        m = Member(program(SCHEME), joined=AT)
        refused = opening(m, {**CONTENT, **content})
        assert refused.rejection is not None and refused.rejection.code == code, (content, refused.rejection)
        assert m.state == new_member("m1", datetime.fromisoformat(AT), tier="member")


def test_a_member_who_has_events_cannot_be_opened():
    m = Member(program(SCHEME), joined=AT)
    m.event("purchase", "2026-11-01T10:00:00+08:00", amount=100)
    refused = opening(m, CONTENT, at="2026-11-01T11:00:00+08:00")
    assert refused.rejection is not None and refused.rejection.code == "member_has_history"
