"""Preview before publishing: one event through a draft, and stored events replayed through the
draft and the version in force side by side, with what each gives away."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from perkflow.service.core import Service
from perkflow.service.problems import Problem
from perkflow.service.staff import Staff
from perkflow.service.workbench import Cancelled, Workbench

from ..databases import publish

ACTIVE = """
id: club
name: Club
balances:
  points: {value: 1}
rules:
  - id: earn
    on: purchase
    when: event.amount >= 1000
    then:
      - award: {balance: points, amount: "event.amount / 100"}
coupons:
  five-off: {name: 5 off, benefit: {kind: amount_off, amount: 500}, validity: {days: 30}}
"""
OPERATOR = Staff(1, "operator", frozenset({"operator"}), None, "en")


def purchase(n: int, amount: int, member: str = "m1") -> dict[str, object]:
    return {"id": f"p{n}", "type": "purchase", "member_id": member, "occurred_at": f"2026-11-1{n}T10:00:00+08:00", "attributes": {"amount": amount}}


@pytest.fixture
def wb(service: Service) -> Workbench:
    publish(service, ACTIVE)
    service.members.put("m1", {}, actor="test")
    for n, amount in enumerate((500, 2000, 3000), 1):
        assert not isinstance(service.events.post(purchase(n, amount)), Problem)
    return Workbench(service)


def draft_content(service: Service) -> dict[str, object]:
    found = service.versions.find("1")
    assert not isinstance(found, Problem)
    content = json.loads(found[1])
    content["rules"][0]["when"] = None  # the draft earns on every purchase...
    content["rules"][0]["then"].append({"issue_coupon": {"coupon": "five-off", "count": 1}})  # ...and gives a coupon
    return content


def test_one_event_through_the_draft_starts_from_the_stored_member_and_writes_nothing(wb: Workbench) -> None:
    decision = wb.preview_event(OPERATOR, draft_content(wb.service), purchase(4, 800))
    assert not isinstance(decision, Problem)
    assert decision["balances"] == {"points": 50 + 8}  # 20 + 30 stored, 8 from this event under the draft
    assert [(t["rule"], t["outcome"]) for t in decision["trace"]] == [("earn", "fired")]
    stored = wb.service.members.get("m1")
    assert not isinstance(stored, Problem) and stored["balances"]["points"] == 50


def test_a_draft_with_errors_cannot_be_previewed_and_says_where(wb: Workbench) -> None:
    content = draft_content(wb.service)
    content["rules"][0]["when"] = "event.amount >"
    refused = wb.preview_event(OPERATOR, content, purchase(4, 800))
    assert isinstance(refused, Problem) and refused.code == "invalid_scheme"
    assert [e.pointer for e in refused.errors] == ["rules[0].when"]


def test_stored_events_replayed_side_by_side(wb: Workbench) -> None:
    events = wb.stored_events(OPERATOR, 30)
    assert not isinstance(events, Problem) and [e["id"] for e in events] == ["p1", "p2", "p3"]
    seen: list[int] = []
    result = wb.compare(OPERATOR, draft_content(wb.service), events, progress=seen.append)
    assert not isinstance(result, Problem) and result.active is not None
    assert result.events == 3
    assert result.draft["totals"]["balances"]["points"]["issued"] == 5 + 20 + 30
    assert result.active["totals"]["balances"]["points"]["issued"] == 20 + 30
    assert result.draft["rules"]["earn"]["fired"] == 3 and result.active["rules"]["earn"]["fired"] == 2
    assert (result.draft_cost, result.active_cost) == (55 * 1 + 3 * 500, 50 * 1)


def test_a_replay_can_be_cancelled(wb: Workbench) -> None:
    with pytest.raises(Cancelled):
        wb.compare(OPERATOR, draft_content(wb.service), [purchase(9, 100)] * 5, cancelled=lambda: True)


def test_an_approver_publishes_at_a_set_time_and_the_old_version_holds_until_then(wb: Workbench) -> None:
    version = wb.service.versions.submit(json.dumps(draft_content(wb.service)), author="user:operator", comment="from December")
    assert not isinstance(version, Problem)
    approver = Staff(2, "approver", frozenset({"approver"}), None, "en")
    at = datetime(2026, 12, 1, tzinfo=UTC)
    published = wb.approve(approver, version.id, effective_at=at)
    assert not isinstance(published, Problem) and (published.number, published.effective_at) == (2, at)
    posted = wb.service.events.post(purchase(5, 800))  # 20 November: version 1 is still in force
    assert not isinstance(posted, Problem) and posted.body["balances"]["points"] == 50
    audit = wb.audit(Staff(3, "auditor", frozenset({"auditor"}), None, "en"), action="version_")
    assert not isinstance(audit, Problem)
    assert [row["action"] for row in audit][:2] == ["version_published", "version_scheduled"]
