"""The service applies decisions in one transaction: idempotent, refused input changes nothing."""

from __future__ import annotations

from perkflow.service.core import Service
from perkflow.service.events import Applied
from perkflow.service.problems import Problem

from ..databases import Clock, publish

PURCHASE = {
    "id": "pos-1",
    "type": "purchase",
    "member_id": "m1",
    "occurred_at": "2026-11-20T10:00:00+08:00",
    "store": "S1",
    "channel": "pos",
    "attributes": {"amount": 3500},
}


def _ready(service: Service) -> None:
    publish(service, "examples/coffee/scheme.yaml")
    assert service.members.put("m1", {"phone": "13800000000"}, actor="test") is not None


def test_a_purchase_is_applied_once_and_a_retry_gets_the_first_answer(service: Service):
    _ready(service)
    first = service.events.post(PURCHASE)
    again = service.events.post(PURCHASE)
    assert isinstance(first, Applied) and first.status == 201
    assert isinstance(again, Applied) and again.status == 200
    assert again.body == first.body
    member = service.members.get("m1")
    assert not isinstance(member, Problem)
    assert member["balances"] == {"points": 35, "growth": 35}


def test_the_same_id_with_another_body_is_a_conflict_naming_the_field(service: Service):
    _ready(service)
    service.events.post(PURCHASE)
    other = service.events.post({**PURCHASE, "attributes": {"amount": 1}})
    assert isinstance(other, Problem) and other.status == 409
    assert other.extra["differing_fields"] == ["/attributes/amount"]


def test_an_event_for_an_unknown_member_is_refused(service: Service):
    _ready(service)
    refused = service.events.post({**PURCHASE, "member_id": "ghost"})
    assert isinstance(refused, Problem) and (refused.status, refused.code) == (422, "unknown_member")


def test_an_event_far_in_the_future_is_refused(service: Service, clock: Clock):
    _ready(service)
    clock.set("2026-11-20T01:00:00+00:00")
    refused = service.events.post({**PURCHASE, "occurred_at": "2026-11-20T09:06:00+08:00"})
    assert isinstance(refused, Problem) and refused.code == "event_in_future"


def test_lots_expire_before_a_later_event_and_the_expiry_is_stored_under_a_stable_id(service: Service, clock: Clock):
    _ready(service)
    service.events.post(PURCHASE)
    clock.set("2027-12-01T00:00:00+00:00")
    later = service.events.post({**PURCHASE, "id": "pos-2", "occurred_at": "2027-11-30T10:00:00+08:00"})
    assert isinstance(later, Applied)
    assert later.body["balances"]["points"] == 35  # the first purchase's 35 expired on 2027-11-21
    ledger = service.members.ledger("m1")
    assert not isinstance(ledger, Problem)
    kinds = [(row["event_id"], row["kind"], row["amount"]) for row in ledger["items"] if row["balance"] == "points"]
    assert ("expiry:m1:20271120T160000Z", "expire", -35) in kinds
