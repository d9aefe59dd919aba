"""Time-driven events of issue 6 in the pure engine: birthdays, expiry reminders, inactivity, on
the right local day and instant, once each, in Asia/Shanghai and across New York's DST changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from perkflow.engine import new_member
from perkflow.engine.evaluate import due_events

from .helpers import Member, outcomes, program

SCHEME = """
id: t
name: T
timezone: {tz}
balances:
  points: {{expiry: {{kind: rolling, after: 30d}}, remind_before: 7d}}
inactivity: {{after: 60d}}
rules:
  - id: earn
    on: purchase
    then: [{{award: {{balance: points, amount: "event.amount / 100"}}}}]
  - id: treat
    on: birthday
    then: [{{award: {{balance: points, amount: "50"}}}}]
  - id: remind
    on: points_expiring
    when: event.amount > 0
    then: [{{notify: {{template: expiring}}}}]
  - id: winback
    on: inactivity
    then: [{{award: {{balance: points, amount: "5"}}}}]
templates:
  expiring: {{text: {{en: "{{amount}} points expire on {{expires_at}}"}}}}
"""


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_birthdays_fall_at_local_midnight_and_29_february_on_28_february_in_other_years():
    prog = program(SCHEME.format(tz="Asia/Shanghai"))
    state = new_member("m1", _at("2026-01-01T00:00:00+08:00"), birthday=(2, 29))
    due = [e for e in due_events(prog, state, _at("2029-01-01T00:00:00+08:00")) if e.type == "birthday"]
    assert [(e.id, e.occurred_at.astimezone(UTC).isoformat()) for e in due] == [
        ("birthday:m1:2026", "2026-02-27T16:00:00+00:00"),  # 28 Feb 00:00 in Shanghai
        ("birthday:m1:2027", "2027-02-27T16:00:00+00:00"),
        ("birthday:m1:2028", "2028-02-28T16:00:00+00:00"),  # a leap year: 29 Feb
    ]
    assert due[0].attributes == {"year": 2026}


def test_birthdays_in_a_daylight_saving_zone_follow_the_local_midnight():
    prog = program(SCHEME.format(tz="America/New_York"))
    winter = new_member("w", _at("2026-01-01T00:00:00-05:00"), birthday=(1, 15))
    summer = new_member("s", _at("2026-01-01T00:00:00-05:00"), birthday=(7, 15))
    end = _at("2026-12-31T00:00:00-05:00")
    assert [e.occurred_at.astimezone(UTC).isoformat() for e in due_events(prog, winter, end) if e.type == "birthday"] == ["2026-01-15T05:00:00+00:00"]
    assert [e.occurred_at.astimezone(UTC).isoformat() for e in due_events(prog, summer, end) if e.type == "birthday"] == ["2026-07-15T04:00:00+00:00"]


def test_a_birthday_before_joining_or_already_applied_is_not_produced_again():
    prog = program(SCHEME.format(tz="Asia/Shanghai"))
    member = Member(prog, joined="2026-03-10T09:00:00+08:00")
    member.state = replace(member.state, birthday=(3, 1))
    done = member.advance("2028-03-02T00:00:00+08:00")
    assert [d.event_id for d in done if d.event_type == "birthday"] == ["birthday:m1:2027", "birthday:m1:2028"]
    assert member.advance("2028-03-02T00:00:00+08:00") == []  # a second run finds nothing


def test_reminders_come_remind_before_the_expiry_with_amount_and_date_across_dst():
    prog = program(SCHEME.format(tz="America/New_York"))
    member = Member(prog, joined="2027-02-01T10:00:00-05:00")
    member.event("purchase", "2027-02-20T10:00:00-05:00", amount=12000)  # 120 points, rolling 30d: gone from 23 Mar 00:00 EDT
    done = member.advance("2027-03-31T00:00:00-04:00")
    kinds = [(d.event_type, d.event_id) for d in done if d.event_type != "inactivity"]
    assert kinds == [
        ("points_expiring", "points_expiring:m1:20270323T040000Z"),
        ("expiry", "expiry:m1:20270323T040000Z"),
    ]
    reminder = next(d for d in done if d.event_type == "points_expiring")
    notify = [e for e in reminder.effects if e.kind == "notify"]
    assert notify and notify[0].variables["amount"] == 120 and notify[0].variables["expires_at"] == "2027-03-23"
    assert [d for d in done if d.event_type == "expiry"][0].state.balance("points") == 0


def test_the_reminder_instant_is_the_same_local_time_a_week_earlier():
    prog = program(SCHEME.format(tz="America/New_York"))
    member = Member(prog, joined="2027-02-01T10:00:00-05:00")
    member.event("purchase", "2027-02-12T10:00:00-05:00", amount=1000)  # gone from 15 Mar 00:00 EDT (DST began 14 Mar)
    due = due_events(prog, member.state, _at("2027-03-20T00:00:00-04:00"))
    reminder = next(e for e in due if e.type == "points_expiring")
    assert reminder.id == "points_expiring:m1:20270315T040000Z"
    # 7 local days earlier at the same wall-clock time: 8 Mar 00:00 EST, 05:00 UTC (not 04:00)
    assert reminder.occurred_at.astimezone(UTC).isoformat() == "2027-03-08T05:00:00+00:00"
    member.advance("2027-03-20T00:00:00-04:00")
    assert due_events(prog, member.state, _at("2027-03-20T00:00:00-04:00")) == []  # all done, nothing twice


def test_inactivity_comes_once_per_spell_without_purchases():
    prog = program(SCHEME.format(tz="Asia/Shanghai"))
    member = Member(prog, joined="2026-01-01T09:00:00+08:00")
    member.event("purchase", "2026-01-10T12:00:00+08:00", amount=100)
    first = [d.event_id for d in member.advance("2026-06-01T00:00:00+08:00") if d.event_type == "inactivity"]
    assert first == ["inactivity:m1:20260311T040000Z"]  # 60 days after the purchase, once
    member.event("purchase", "2026-06-02T12:00:00+08:00", amount=100)
    second = [d.event_id for d in member.advance("2026-12-31T00:00:00+08:00") if d.event_type == "inactivity"]
    assert second == ["inactivity:m1:20260801T040000Z"]  # a new spell after the next purchase
    assert member.advance("2027-06-01T00:00:00+08:00") == []


CAMPAIGNS = """
id: t
name: T
timezone: Asia/Shanghai
balances:
  points: {}
rules:
  - id: farewell
    on: campaign_end
    then: [{award: {balance: points, amount: "1"}}]
campaigns:
  - id: spring
    name: {en: Spring}
    start: 2026-03-01T00:00:00
    end: 2026-04-01T00:00:00
    rules:
      - id: spring-hello
        on: campaign_start
        when: campaign.id == "spring" and event.campaign == "spring"
        then: [{award: {balance: points, amount: "10"}}]
      - id: spring-bye
        on: campaign_end
        then: [{award: {balance: points, amount: "100"}}]
  - id: summer
    name: {en: Summer}
    start: 2026-03-01T00:00:00
    end: 2026-09-01T00:00:00
    rules:
      - id: summer-earn
        on: purchase
        then: [{award: {balance: points, amount: "1000"}}]
"""


def test_campaign_starts_and_ends_are_events_of_each_member_who_joined_before():
    prog = program(CAMPAIGNS)
    early = Member(prog, "m1", joined="2026-02-01T09:00:00+08:00")
    done = early.advance("2026-12-31T00:00:00+08:00")
    assert [(d.event_id, d.state.last_event_at.isoformat()) for d in done] == [
        ("campaign_start:spring:m1", "2026-03-01T00:00:00+08:00"),
        ("campaign_start:summer:m1", "2026-03-01T00:00:00+08:00"),
        ("campaign_end:spring:m1", "2026-04-01T00:00:00+08:00"),
        ("campaign_end:summer:m1", "2026-09-01T00:00:00+08:00"),
    ]
    by_id = {d.event_id: d for d in done}
    # the campaign's own start rule sees campaign.*; another campaign's start is not its business
    assert outcomes(by_id["campaign_start:spring:m1"]) == {"spring-hello": "fired"}
    assert [t.reason for t in by_id["campaign_start:summer:m1"].trace if t.rule == "spring-hello"] == ["other_campaign"]
    # its own end, on the (excluded) end instant, reaches the campaign's end rule
    assert outcomes(by_id["campaign_end:spring:m1"]) == {"farewell": "fired", "spring-bye": "fired"}
    assert outcomes(by_id["campaign_end:summer:m1"]) == {"farewell": "fired", "spring-bye": "other_campaign"}
    assert early.balance("points") == 10 + 101 + 1
    assert by_id["campaign_start:spring:m1"].state.balance("points") == 10
    assert early.advance("2026-12-31T00:00:00+08:00") == []  # nothing twice

    late = Member(prog, "m2", joined="2026-03-15T09:00:00+08:00")  # after the start: no start event
    assert [d.event_id for d in late.advance("2026-12-31T00:00:00+08:00")] == ["campaign_end:spring:m2", "campaign_end:summer:m2"]


def test_campaign_events_are_produced_only_while_a_rule_listens():
    quiet = CAMPAIGNS.replace("on: campaign_end", "on: checkin").replace("on: campaign_start", "on: checkin")
    prog = program(quiet.replace(' and event.campaign == "spring"', ""))
    state = new_member("m1", _at("2026-02-01T09:00:00+08:00"))
    assert due_events(prog, state, _at("2026-12-31T00:00:00+08:00")) == []
