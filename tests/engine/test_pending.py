"""Pending points (积分冻结期): counted but not spendable until they activate, by time or by the
event that completes their order; a refund inside the window cancels them without a debt."""

from __future__ import annotations

from datetime import datetime

from perkflow.engine import due_events
from perkflow.engine.simulate import member_view
from perkflow.rules import loads

from .helpers import Member, program

PENDING = """
id: pending
name: Pending
timezone: Asia/Shanghai
balances:
  points:
    allow_negative: true
    pending: {PENDING}
rules:
  - id: earn
    on: purchase
    then: [{award: {balance: points, amount: "event.amount / 100"}}]
  - id: welcome
    on: signup
    then: [{award: {balance: points, amount: "50"}}]
rewards:
  mug: {name: A mug, cost: {balance: points, amount: 100}, grants: [{tag: mug}]}
"""
FOURTEEN_DAYS = program(PENDING.replace("{PENDING}", "{duration: 14d}"))
UNTIL_COMPLETED = program(PENDING.replace("{PENDING}", "{until_event: order_completed}"))
EITHER = program(PENDING.replace("{PENDING}", "{until_event: order_completed, duration: 14d}"))


def test_pending_lots_count_in_the_balance_but_cannot_be_spent_until_they_activate():
    m = Member(FOURTEEN_DAYS)
    m.event("purchase", "2026-03-01T10:00:00+08:00", event_id="p1", amount=20_000)
    [lot] = m.state.lots["points"]
    assert lot.available_at.isoformat() == "2026-03-15T10:00:00+08:00"
    assert (m.balance("points"), m.state.available("points", lot.earned_at)) == (200, 0)
    refused = m.event("reward_redemption", "2026-03-15T09:59:59+08:00", reward="mug")
    assert refused.rejection is not None and refused.rejection.code == "insufficient_balance"
    redeemed = m.event("reward_redemption", "2026-03-15T10:00:00+08:00", reward="mug")
    assert redeemed.rejection is None and m.balance("points") == 100
    [activation] = [d for d in m.decisions if d.event_type == "activation"]
    assert activation.event_id == "activation:m1:20260315T020000Z"
    assert [(e.kind, e.amount, e.lots) for e in activation.effects] == [("activate", 0, (("p1#1", 200),))]


def test_activation_is_a_time_driven_event_with_a_stable_id_applied_once():
    m = Member(FOURTEEN_DAYS)
    m.event("purchase", "2026-03-01T10:00:00+08:00", event_id="p1", amount=20_000)
    until = datetime.fromisoformat("2026-04-01T00:00:00+08:00")
    first = [(e.id, e.occurred_at) for e in due_events(FOURTEEN_DAYS, m.state, until)]
    assert first == [(e.id, e.occurred_at) for e in due_events(FOURTEEN_DAYS, m.state, until)]
    assert first == [("activation:m1:20260315T020000Z", datetime.fromisoformat("2026-03-15T10:00:00+08:00"))]
    assert len(m.advance(until)) == 1
    assert due_events(FOURTEEN_DAYS, m.state, until) == []
    assert member_view(FOURTEEN_DAYS, m.state, until)["lots"]["points"][0].get("available_at") is None


def test_lots_pending_until_order_completed_activate_when_their_own_order_completes():
    m = Member(UNTIL_COMPLETED)
    m.event("purchase", "2026-03-01T10:00:00+08:00", event_id="p1", amount=20_000)
    m.event("purchase", "2026-03-02T10:00:00+08:00", event_id="p2", amount=10_000)
    assert m.advance("2027-03-01T00:00:00+08:00") == []  # no duration: time alone never activates them
    view = member_view(UNTIL_COMPLETED, m.state, None)["lots"]["points"]
    assert [lot["pending_until"] for lot in view] == ["order_completed", "order_completed"]
    done = m.event("order_completed", "2027-03-01T10:00:00+08:00", original_event_id="p2")
    assert [(e.kind, e.lots) for e in done.effects] == [("activate", (("p2#1", 100),))]
    assert m.state.available("points", done.state.last_event_at) == 100


def test_with_both_a_duration_and_an_event_whichever_comes_first_activates():
    m = Member(EITHER)
    m.event("purchase", "2026-03-01T10:00:00+08:00", event_id="p1", amount=20_000)
    m.event("purchase", "2026-03-01T11:00:00+08:00", event_id="p2", amount=10_000)
    m.event("order_completed", "2026-03-03T10:00:00+08:00", original_event_id="p1")
    assert m.state.available("points", datetime.fromisoformat("2026-03-03T10:00:00+08:00")) == 200
    m.advance("2026-03-15T11:00:00+08:00")
    assert m.state.available("points", datetime.fromisoformat("2026-03-15T11:00:00+08:00")) == 300
    assert [d.event_id for d in m.decisions if d.event_type == "activation"] == ["activation:m1:20260315T030000Z"]


def test_a_refund_inside_the_pending_window_cancels_that_purchases_pending_lots_and_never_creates_debt():
    m = Member(FOURTEEN_DAYS)
    m.event("signup", "2026-03-01T09:00:00+08:00")  # 50 points, pending too
    m.advance("2026-03-16T00:00:00+08:00")
    m.event("purchase", "2026-03-16T10:00:00+08:00", event_id="p1", amount=30_000)  # 300 pending
    refund = m.event("refund", "2026-03-20T10:00:00+08:00", original_event_id="p1", amount=30_000)
    [clawback] = [e for e in refund.effects if e.kind == "clawback"]
    assert (clawback.amount, clawback.lots, clawback.debt) == (-300, (("p1#1", -300),), 0)
    assert (m.balance("points"), dict(m.state.debts)) == (50, {})
    assert due_events(FOURTEEN_DAYS, m.state, datetime.fromisoformat("2026-04-30T00:00:00+08:00")) == []


def test_a_pending_event_must_name_its_purchase():
    text = PENDING.replace("{PENDING}", "{until_event: delivered}")
    loaded = loads(text, "pending.yaml")
    assert loaded.scheme is None
    assert any("declare that event type with an 'original_event_id' attribute" in e.message for e in loaded.errors)
    declared = text + "event_types:\n  delivered: {attributes: {original_event_id: {type: str}}}\n"
    assert loads(declared, "pending.yaml").errors == []
    assert loads(PENDING.replace("{PENDING}", "{}"), "pending.yaml").scheme is None
