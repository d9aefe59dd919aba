"""Bad input gets a problem that says what and where, and changes nothing.

Each case posts one bad event through `EventService.post` and checks the problem's status, code
and JSON pointer, and that a dump of every row of every table is the same before and after. The
member `m1` has points due to expire before the events posted "now", so a refusal must also roll
back the expiry that was applied in the same transaction before the event was refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from perkflow.service.core import Service, open_service
from perkflow.service.events import Applied
from perkflow.service.problems import Problem

from ..databases import BACKENDS, Clock, publish
from .harness import dump, own_database

SCHEME = """
perkflow: 1
id: bad-input
name: Bad input
balances:
  points:
    expiry: {kind: rolling, after: 30d}
event_types:
  visit:
    attributes:
      minutes: {type: int}
      kind: {type: str, values: [dine_in, takeaway]}
rules:
  - id: earn
    on: purchase
    then: [{award: {balance: points, amount: "event.amount / 100"}}]
  - id: minutes-are-worth-a-lot
    on: visit
    then: [{award: {balance: points, amount: "event.minutes * 1000000000000"}}]
rewards:
  mug:
    name: Mug
    cost: {balance: points, amount: 50}
    grants: [{tag: mug_owner}]
"""
NOW = "2026-11-20T12:00:00+00:00"
PURCHASE = {
    "id": "pos-new",
    "type": "purchase",
    "member_id": "m1",
    "occurred_at": "2026-11-20T10:00:00+08:00",
    "store": "S1",
    "channel": "pos",
    "attributes": {"amount": 3500},
}


def _purchase(**changes: Any) -> dict[str, Any]:
    return {**PURCHASE, **changes}


def _amount(value: Any) -> dict[str, Any]:
    return _purchase(attributes={"amount": value})


@pytest.fixture(scope="module", params=BACKENDS)
def prepared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One database for the module: nothing a case does may change it, and each case checks that."""
    tmp = tmp_path_factory.mktemp("bad-input")
    url = f"sqlite:///{tmp / 'bad.sqlite'}" if request.param == "sqlite" else own_database()
    svc = open_service(url, tmp / "data", clock=Clock(NOW))
    publish(svc, SCHEME)
    for raw in (
        _purchase(id="app-m1", type="signup", occurred_at="2026-10-01T09:00:00+08:00", attributes={}),
        _purchase(id="pos-old", occurred_at="2026-10-01T10:00:00+08:00"),  # 35 points, expire on 2026-10-31
        _purchase(
            id="app-m2", type="signup", member_id="m2", occurred_at="2026-11-20T09:00:00+08:00", attributes={}
        ),
    ):
        assert isinstance(svc.events.post(raw), Applied)
    yield svc
    svc.engine.dispose()


CASES = [
    # malformed shapes
    pytest.param([PURCHASE], 422, "wrong_type", "", id="a list instead of an object"),
    pytest.param("purchase", 422, "wrong_type", "", id="a string instead of an object"),
    pytest.param(
        _purchase(attributes=[3500]), 422, "wrong_type", "/attributes", id="attributes not an object"
    ),
    pytest.param(
        _purchase(attributes={"amount": 3500, "items": [{"sku": "A", "quantity": 0, "amount": 1}]}),
        422,
        "wrong_type",
        "/attributes/items/0/quantity",
        id="a bad line item",
    ),
    pytest.param(
        {k: v for k, v in PURCHASE.items() if k != "member_id"},
        422,
        "missing_field",
        "/member_id",
        id="no member_id",
    ),
    pytest.param(
        {k: v for k, v in PURCHASE.items() if k != "occurred_at"},
        422,
        "missing_field",
        "/occurred_at",
        id="no occurred_at",
    ),
    pytest.param(
        _purchase(occurred_at="2026-11-20T10:00:00"),
        422,
        "wrong_type",
        "/occurred_at",
        id="a time without offset",
    ),
    pytest.param(_purchase(id=""), 422, "wrong_type", "/id", id="an empty id"),
    pytest.param(_purchase(id="x" * 201), 422, "wrong_type", "/id", id="an id too long"),
    # wrong types
    pytest.param(_amount("3500"), 422, "wrong_type", "/attributes/amount", id="money as text"),
    pytest.param(_amount(35.5), 422, "wrong_type", "/attributes/amount", id="money as a float"),
    pytest.param(_amount(True), 422, "wrong_type", "/attributes/amount", id="money as a boolean"),
    pytest.param(_amount(-100), 422, "negative_amount", "/attributes/amount", id="negative money"),
    pytest.param(
        _purchase(type="visit", attributes={"minutes": "10", "kind": "dine_in"}),
        422,
        "wrong_type",
        "/attributes/minutes",
        id="an int as text",
    ),
    pytest.param(
        _purchase(type="visit", attributes={"minutes": 10, "kind": "delivery"}),
        422,
        "invalid_choice",
        "/attributes/kind",
        id="a value not among the choices",
    ),
    # unknown names
    pytest.param(_purchase(type="purchace"), 422, "unknown_event_type", "/type", id="an unknown event type"),
    pytest.param(_purchase(amount=3500), 422, "unknown_field", "/amount", id="an unknown field"),
    pytest.param(
        _purchase(attributes={"amount": 3500, "colour": "red"}),
        422,
        "unknown_attribute",
        "/attributes/colour",
        id="an unknown attribute",
    ),
    pytest.param(_purchase(member_id="ghost"), 422, "unknown_member", "/member_id", id="a missing member"),
    # refused by the rules of the domain
    pytest.param(
        _purchase(type="refund", attributes={"original_event_id": "pos-nothing", "amount": 100}),
        422,
        "unknown_original_event",
        "/attributes/original_event_id",
        id="a refund of an unknown purchase",
    ),
    pytest.param(
        _purchase(type="refund", attributes={"original_event_id": "pos-old", "amount": 3501}),
        422,
        "refund_too_large",
        "/attributes/amount",
        id="a refund larger than its purchase",
    ),
    pytest.param(
        _purchase(type="reward_redemption", attributes={"reward": "mug"}),
        422,
        "insufficient_balance",
        "/attributes/reward",
        id="a reward the member cannot pay",
    ),
    pytest.param(
        _purchase(type="reward_redemption", attributes={"reward": "car"}),
        422,
        "unknown_reward",
        "/attributes/reward",
        id="an unknown reward",
    ),
    pytest.param(
        _purchase(occurred_at="2026-11-20T20:06:00+08:00"),
        422,
        "event_in_future",
        "/occurred_at",
        id="an event far in the future",
    ),
    pytest.param(
        _purchase(occurred_at="2026-09-20T10:00:00+08:00"),
        422,
        "late_event",
        "/occurred_at",
        id="a late event",
    ),
    pytest.param(_purchase(id="pos-old"), 409, "event_id_reused", None, id="an id reused with another body"),
    # events only Perkflow makes
    pytest.param(
        _purchase(type="adjustment", attributes={"balance": "points", "amount": 100, "reason": "free"}),
        422,
        "system_event_type",
        "/type",
        id="an adjustment posted as an event",
    ),
    pytest.param(
        _purchase(type="expiry", attributes={}),
        422,
        "system_event_type",
        "/type",
        id="an expiry posted as an event",
    ),
    # what the database cannot hold
    pytest.param(_amount(10**30), 422, "number_too_large", "/attributes/amount", id="money beyond 64 bits"),
    pytest.param(
        _amount(2**53), 422, "number_too_large", "/attributes/amount", id="money beyond JSON's exact integers"
    ),
    pytest.param(_purchase(store="S\x001"), 422, "invalid_text", "/store", id="a NUL character"),
    pytest.param(_purchase(id="pos-\ud800"), 422, "invalid_text", "/id", id="a lone surrogate"),
    pytest.param(
        _purchase(type="visit", attributes={"minutes": -(2**63), "kind": "dine_in"}),
        422,
        "number_too_large",
        "/attributes/minutes",
        id="an int beyond 64 bits",
    ),
    pytest.param(
        _purchase(type="visit", attributes={"minutes": 10**7, "kind": "dine_in"}),
        422,
        "number_too_large",
        "/attributes",
        id="an award beyond 64 bits",
    ),
    pytest.param(
        _purchase(attributes={"amount": 3500, "items": [{"sku": "A\x00", "amount": 3500}]}),
        422,
        "invalid_text",
        "/attributes/items/0/sku",
        id="a NUL deep inside",
    ),
]


@pytest.mark.parametrize(("raw", "status", "code", "pointer"), CASES)
def test_bad_input_gets_a_problem_naming_what_and_where_and_changes_nothing(
    prepared: Service, raw: Any, status: int, code: str, pointer: str | None
):
    before = dump(prepared.engine)
    result = prepared.events.post(raw)
    assert isinstance(result, Problem), result
    assert (result.status, result.code) == (status, code)
    if pointer is not None:
        assert (result.errors[0].code, result.errors[0].pointer) == (code, pointer)
    assert dump(prepared.engine) == before


@pytest.mark.parametrize(
    ("member", "body", "code", "pointer"),
    [
        pytest.param("m9", [], "wrong_type", "", id="a list instead of an object"),
        pytest.param("m9", {"nickname": "Bo"}, "unknown_field", "/nickname", id="an unknown field"),
        pytest.param("m9", {"phone": "12"}, "invalid_phone", "/phone", id="not a phone number"),
        pytest.param("m9", {"birthday": "1990-02-30"}, "wrong_type", "/birthday", id="not a date"),
        pytest.param("m9", {"tags": ["VIP!"]}, "wrong_type", "/tags", id="a bad tag"),
        pytest.param("m" * 201, {}, "wrong_type", "", id="a member id too long"),
        pytest.param("m\x009", {}, "invalid_text", "", id="a NUL in the member id"),
        pytest.param(
            "m9", {"home_store": "S\x001"}, "invalid_text", "/home_store", id="a NUL in the home store"
        ),
        pytest.param("m9", {"name": "\ud800"}, "invalid_text", "/name", id="a lone surrogate in the name"),
        pytest.param(
            "m9",
            {"attributes": {"floor": "3\x00"}},
            "invalid_text",
            "/attributes/floor",
            id="a NUL in an attribute",
        ),
        pytest.param("m1", {"home_store": "S\x001"}, "invalid_text", "/home_store", id="a NUL in an update"),
    ],
)
def test_a_bad_member_profile_gets_a_problem_and_changes_nothing(
    prepared: Service, member: str, body: Any, code: str, pointer: str
):
    before = dump(prepared.engine)
    result = prepared.members.put(member, body, actor="test")
    assert isinstance(result, Problem), result
    assert (result.status, result.code, result.errors[0].pointer) == (422, code, pointer)
    assert dump(prepared.engine) == before


def test_the_dump_sees_a_change(prepared: Service):
    """The check above is only as good as the dump: an accepted event shows in it."""
    before = dump(prepared.engine)
    assert isinstance(prepared.events.post(_purchase(id="pos-accepted", member_id="m2")), Applied)
    assert dump(prepared.engine) != before


def test_the_longest_member_id_allowed_still_gets_its_points_expired(service: Service, clock: Clock):
    # The expiry's id is "expiry:<member id>:<instant>", longer than the member id by 24 characters.
    publish(service, SCHEME)
    member = "m" * 200
    assert isinstance(service.events.post(_purchase(member_id=member, type="signup", attributes={})), Applied)
    assert isinstance(service.events.post(_purchase(id="pos-long-1", member_id=member)), Applied)
    clock.set("2027-01-01T00:00:00+00:00")
    later = service.events.post(
        _purchase(id="pos-long-2", member_id=member, occurred_at="2026-12-31T10:00:00+08:00")
    )
    assert isinstance(later, Applied), later
    assert later.body["balances"]["points"] == 35  # the first 35 expired on 2026-12-20
