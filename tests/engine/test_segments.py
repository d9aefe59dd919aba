"""A campaign's audience may name RFM segments: the engine reads the segment the member state
carries (stored by the scheduler), and the trace says which segment, computed for which day."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from perkflow.engine import replay
from perkflow.engine.exposure import campaign_groups, campaign_rules
from perkflow.rules import loads

from .helpers import Member, outcomes, program

WIN_BACK = """
id: win-back
name: Win back
timezone: Asia/Shanghai
balances:
  points: {}
campaigns:
  - id: come-back
    name: Come back
    start: 2026-06-01T00:00:00
    end: 2026-07-01T00:00:00
    audience:
      segments: [at_risk, important_win_back]
    rules:
      - id: come-back-bonus
        on: purchase
        then: [{award: {balance: points, amount: "100"}}]
"""


def member_in(segment: str | None, on: date | None) -> Member:
    m = Member(program(WIN_BACK))
    m.state = dataclasses.replace(m.state, segment=segment, segment_on=on)
    return m


def test_a_member_in_a_named_segment_gets_the_campaign_and_the_trace_names_the_segment_and_its_day():
    m = member_in("at_risk", date(2026, 6, 10))
    decision = m.event("purchase", "2026-06-10T12:00:00+08:00", amount=1000)
    assert outcomes(decision) == {"come-back-bonus": "fired"}
    assert dict(decision.trace[0].read) == {"member.segment": "at_risk", "member.segment_on": "2026-06-10"}
    assert m.balance("points") == 100


def test_a_member_in_another_segment_or_in_none_is_not_in_the_audience():
    other = member_in("important_value", date(2026, 6, 10))
    decision = other.event("purchase", "2026-06-10T12:00:00+08:00", amount=1000)
    assert outcomes(decision) == {"come-back-bonus": "not_in_audience"}
    assert "computed for 2026-06-10 is 'important_value'" in decision.trace[0].detail
    no_purchase = member_in(None, date(2026, 6, 10))
    decision = no_purchase.event("purchase", "2026-06-10T12:00:00+08:00", amount=1000)
    assert outcomes(decision) == {"come-back-bonus": "not_in_audience"}
    assert "none (no purchase in the period)" in decision.trace[0].detail
    assert other.balance("points") == no_purchase.balance("points") == 0


def test_an_uncomputed_segment_is_unknown_and_the_member_is_neither_in_treatment_nor_holdout():
    m = member_in(None, None)
    decision = m.event("purchase", "2026-06-10T12:00:00+08:00", amount=1000)
    assert outcomes(decision) == {"come-back-bonus": "segment_unknown"}
    assert dict(decision.trace[0].read) == {"member.segment": None, "member.segment_on": None}
    assert campaign_groups(campaign_rules(m.program.scheme), decision) == {}


def test_a_simulation_has_no_segments_so_segment_audiences_are_unknown():
    events = [
        {"id": "s1", "type": "signup", "member_id": "m1", "occurred_at": "2026-06-01T10:00:00+08:00", "store": "S1", "channel": "pos", "attributes": {}},
        {"id": "p1", "type": "purchase", "member_id": "m1", "occurred_at": "2026-06-02T10:00:00+08:00", "store": "S1", "channel": "pos", "attributes": {"amount": 500}},
    ]
    run = replay(program(WIN_BACK), events)
    assert run.members["m1"].balance("points") == 0
    assert run.rules["come-back-bonus"] == {"skipped:segment_unknown": 1}


def test_segments_and_tags_of_one_audience_must_both_hold():
    both = WIN_BACK.replace("segments: [at_risk, important_win_back]", "segments: [at_risk]\n      tags: [vip]")
    m = Member(program(both))
    m.state = dataclasses.replace(m.state, segment="at_risk", segment_on=date(2026, 6, 10))
    assert outcomes(m.event("purchase", "2026-06-10T12:00:00+08:00", amount=1000)) == {"come-back-bonus": "not_in_audience"}
    m.state = dataclasses.replace(m.state, tags=frozenset({"vip"}))
    assert outcomes(m.event("purchase", "2026-06-10T13:00:00+08:00", amount=1000)) == {"come-back-bonus": "fired"}


@pytest.mark.parametrize(("segments", "path"), [("[loyal]", "campaigns[0].audience.segments[0]"), ("[]", "campaigns[0].audience.segments")])
def test_an_audience_names_only_known_segments(segments: str, path: str):
    loaded = loads(WIN_BACK.replace("[at_risk, important_win_back]", segments), "bad.yaml")
    assert loaded.scheme is None
    assert [e.path for e in loaded.errors] == [path]
