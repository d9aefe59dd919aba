"""`merge_states`: what a survivor holds after a merge, as a pure function."""

from __future__ import annotations

from perkflow.engine.merge import merge_states

from .helpers import Member, program

SCHEME = """
perkflow: 1
id: merge
name: Merge
balances:
  points: {expiry: {kind: rolling, after: 12mo}}
tiers:
  metric: {balance: points}
  levels:
    - {id: member, name: Member, threshold: 0}
    - {id: gold, name: Gold, threshold: 100}
counters:
  visits: {kind: count, on: [purchase], window: 30d}
  streak: {kind: streak, on: [checkin]}
rules:
  - id: earn
    on: purchase
    then:
      - award: {balance: points, amount: "event.amount / 100"}
  - id: once
    on: checkin
    caps: [{limit: 1, per: lifetime}]
    then:
      - tag: regular
"""


def test_the_survivor_takes_lots_counters_caps_and_the_higher_tier():
    prog = program(SCHEME)
    keep, dup = Member(prog, "keep"), Member(prog, "dup", joined="2025-06-01T09:00:00+08:00")
    keep.event("purchase", "2026-03-01T10:00:00+08:00", amount=5000)
    dup.event("purchase", "2026-03-02T10:00:00+08:00", amount=20000)
    dup.event("checkin", "2026-03-02T11:00:00+08:00")
    merged = merge_states(prog, keep.state, dup.state)
    assert merged.member_id == "keep" and merged.joined_at == dup.state.joined_at
    assert merged.balance("points") == 250
    assert [lot.amount for lot in merged.lots["points"]] == [50, 200]  # soonest expiry first
    assert merged.tier == "gold" and merged.tags == frozenset({"regular"})
    assert merged.counters["visits"].total == 2 and merged.counters["streak"].streak == 1
    assert merged.caps == dup.state.caps  # the once-per-member rule has fired for this person


def test_merging_is_the_same_whichever_member_has_the_events():
    prog = program(SCHEME)
    keep, dup = Member(prog, "keep"), Member(prog, "dup")
    dup.event("purchase", "2026-03-02T10:00:00+08:00", amount=3000)
    merged = merge_states(prog, keep.state, dup.state)
    assert (merged.balance("points"), merged.counters["visits"].days, merged.last_event_at) == (
        30,
        dup.state.counters["visits"].days,
        dup.state.last_event_at,
    )
