"""Issue 6: campaigns' starts and ends reach members through the scheduler, and notifications
speak each member's language (`locale`, set by PUT /api/v1/members/{id})."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from perkflow.service.core import Service
from perkflow.service.problems import Problem
from perkflow.storage import tables as t

from ..databases import Clock, publish

SCHEME = """
perkflow: 1
id: c
name: C
timezone: Asia/Shanghai
balances:
  points: {}
rules:
  - id: closing
    on: campaign_end
    then: [{notify: {template: over}}]
campaigns:
  - id: spring
    name: {en: Spring}
    start: 2026-12-01T00:00:00
    end: 2026-12-10T00:00:00
    rules:
      - id: spring-hello
        on: campaign_start
        when: campaign.id == "spring"
        then: [{notify: {template: hello}}, {award: {balance: points, amount: "10"}}]
templates:
  hello: {text: {en: "Spring starts", zh-CN: "春季活动开始"}}
  over: {text: {en: "Spring is over"}}
"""


def test_the_scheduler_applies_campaign_starts_and_ends_and_notifies_in_each_members_language(
    service: Service, clock: Clock, caplog: pytest.LogCaptureFixture
):
    clock.set("2026-11-20T12:00:00+00:00")
    publish(service, SCHEME)
    assert service.members.put("m1", {"locale": "zh-CN"}, actor="test")[0] == 201
    assert service.members.put("m2", {}, actor="test")[0] == 201
    bad = service.members.put("m2", {"locale": "fr"}, actor="test")
    assert isinstance(bad, Problem) and bad.code == "invalid_locale"
    clock.set("2026-12-05T12:00:00+00:00")
    assert service.scheduler.tick().events == 2  # the start, for m1 and m2
    assert service.members.put("m3", {"locale": "zh-CN"}, actor="test")[0] == 201  # joins after the start
    clock.set("2026-12-11T12:00:00+00:00")
    assert service.scheduler.tick().events == 3  # the end, for all three
    assert service.scheduler.tick().events == 0
    with service.engine.connect() as conn:
        ids = sorted(conn.execute(select(t.events.c.id).where(t.events.c.source == "system")).scalars())
        locales = dict(conn.execute(select(t.members.c.external_id, t.members.c.locale)).all())
    assert ids == [
        "campaign_end:spring:m1", "campaign_end:spring:m2", "campaign_end:spring:m3",
        "campaign_start:spring:m1", "campaign_start:spring:m2",
    ]
    assert locales == {"m1": "zh-CN", "m2": None, "m3": "zh-CN"}  # a wrong locale changed nothing
    assert service.members.get("m1")["balances"]["points"] == 10
    assert service.members.get("m3")["balances"]["points"] == 0
    with caplog.at_level("INFO", logger="perkflow.notifications"):
        assert service.notifications.run() == (5, 0)
    lines = [json.loads(r.getMessage().split(" ", 1)[1]) for r in caplog.records if r.name == "perkflow.notifications"]
    # zh-CN where the template has it, else the template's first language
    assert sorted((x["lang"], x["text"]) for x in lines) == [
        ("en", "Spring is over"), ("en", "Spring is over"), ("en", "Spring is over"),
        ("en", "Spring starts"), ("zh-CN", "春季活动开始"),
    ]
