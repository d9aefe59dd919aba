"""Bad input gets a 4xx application/problem+json that says what and where, and writes nothing:
every table is dumped before and after each request and compared."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from perkflow.service.core import Service

from .conftest import Keys
from .helpers import bearer, dump, event, problem

BAD_EVENTS: list[tuple[str, Any, int, str, str | None]] = [
    # (name, body, status, code, pointer of the first error)
    ("malformed JSON", b'{"id": "e1", "type": ', 400, "malformed_json", ""),
    ("not an object", b"[1, 2]", 422, "wrong_type", ""),
    ("an id of the wrong type", event(id=7), 422, "wrong_type", "/id"),
    ("an unknown event type", event(type="teleport"), 422, "unknown_event_type", "/type"),
    ("negative money", event(attributes={"amount": -1}), 422, "negative_amount", "/attributes/amount"),
    ("float money", event(attributes={"amount": 35.5}), 422, "wrong_type", "/attributes/amount"),
    ("money as text", event(attributes={"amount": "3500"}), 422, "wrong_type", "/attributes/amount"),
    ("a missing member", event(member_id="ghost"), 422, "unknown_member", "/member_id"),
    ("an unknown field", event(surprise=1), 422, "unknown_field", "/surprise"),
    (
        "an unknown attribute",
        event(attributes={"amount": 1, "tip": 2}),
        422,
        "unknown_attribute",
        "/attributes/tip",
    ),
    ("a time without offset", event(occurred_at="2026-11-20T10:00:00"), 422, "wrong_type", "/occurred_at"),
    (
        "an event in the future",
        event(occurred_at="2026-11-21T10:00:00+08:00"),
        422,
        "event_in_future",
        "/occurred_at",
    ),
    (
        "a refund of an unknown purchase",
        event(type="refund", attributes={"amount": 100, "original_event_id": "nope"}),
        422,
        "unknown_original_event",
        "/attributes/original_event_id",
    ),
    (
        "an unknown coupon",
        event(attributes={"amount": 3000, "coupons": ["nope"]}),
        422,
        "unknown_coupon",
        "/attributes/coupons/0",
    ),
]


@pytest.fixture
def client(app: Starlette, keys: Keys) -> Iterator[TestClient]:
    with TestClient(app) as client:
        assert (
            client.put(
                "/api/v1/members/m1", json={"phone": "13800000000"}, headers=bearer(keys.all)
            ).status_code
            == 201
        )
        yield client


@pytest.mark.parametrize(
    ("name", "body", "status", "code", "pointer"), BAD_EVENTS, ids=[b[0] for b in BAD_EVENTS]
)
def test_a_bad_event_is_a_located_problem_and_changes_nothing(
    client: TestClient,
    keys: Keys,
    service: Service,
    name: str,
    body: Any,
    status: int,
    code: str,
    pointer: str | None,
):
    before = dump(service.engine)
    sent = {"content": body} if isinstance(body, bytes) else {"json": body}
    answer = problem(client.post("/api/v1/events", headers=bearer(keys.all), **sent), status, code)
    assert answer["errors"][0]["pointer"] == pointer, answer
    assert dump(service.engine) == before


def test_malformed_json_says_where(client: TestClient, keys: Keys):
    answer = problem(
        client.post("/api/v1/events", content=b'{"id": "e1",\n "type": }', headers=bearer(keys.all)),
        400,
        "malformed_json",
    )
    assert (answer["line"], answer["column"]) == (2, 10)
    assert "line 2, column 10" in answer["detail"]


def test_an_oversized_body_is_a_413_whether_declared_or_streamed(
    client: TestClient, keys: Keys, service: Service
):
    before = dump(service.engine)
    big = b'{"id": "' + b"x" * 100_000 + b'"}'
    problem(client.post("/api/v1/events", content=big, headers=bearer(keys.all)), 413, "body_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts the bytes as they come
        yield from (big[i : i + 8192] for i in range(0, len(big), 8192))

    problem(client.post("/api/v1/events", content=chunks(), headers=bearer(keys.all)), 413, "body_too_large")
    assert dump(service.engine) == before


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthenticated"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "unauthenticated"),
        ({"Authorization": "Bearer forged"}, 401, "invalid_token"),
        ({"Authorization": "Bearer pk_000000000000.not-the-secret"}, 401, "invalid_token"),
    ],
    ids=["no key", "not a bearer token", "forged key", "unknown key id"],
)
def test_without_a_valid_key_nothing_happens(
    client: TestClient, service: Service, headers: dict[str, str], status: int, code: str
):
    before = dump(service.engine)
    response = client.post("/api/v1/events", json=event(), headers=headers)
    problem(response, status, code)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert dump(service.engine) == before


def test_a_forged_secret_of_a_real_key_is_refused(client: TestClient, keys: Keys, service: Service):
    key_id = keys.all.split(".")[0]
    before = dump(service.engine)
    problem(
        client.post("/api/v1/events", json=event(), headers=bearer(f"{key_id}.forged")), 401, "invalid_token"
    )
    assert dump(service.engine) == before


def test_an_under_scoped_key_is_a_403_naming_the_scope(client: TestClient, keys: Keys, service: Service):
    before = dump(service.engine)
    response = client.post("/api/v1/events", json=event(), headers=bearer(keys.reader))
    assert problem(response, 403, "insufficient_scope")["scope"] == "events:write"
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    problem(client.put("/api/v1/members/m2", json={}, headers=bearer(keys.reader)), 403, "insufficient_scope")
    problem(
        client.post("/api/v1/versions", json={"content": "x"}, headers=bearer(keys.reader)),
        403,
        "insufficient_scope",
    )
    assert dump(service.engine) == before


BAD_OTHERS: list[tuple[str, str, str, Any, int, str]] = [
    ("member with unknown field", "PUT", "/api/v1/members/m2", {"nickname": "x"}, 422, "unknown_field"),
    ("member with bad phone", "PUT", "/api/v1/members/m2", {"phone": "123"}, 422, "invalid_phone"),
    (
        "adjustment without reason",
        "POST",
        "/api/v1/members/m1/adjustments",
        {"balance": "points", "amount": 5},
        422,
        "missing_reason",
    ),
    (
        "adjustment of unknown balance",
        "POST",
        "/api/v1/members/m1/adjustments",
        {"balance": "gold", "amount": 5, "reason": "x"},
        422,
        "unknown_balance",
    ),
    (
        "adjustment of a float",
        "POST",
        "/api/v1/members/m1/adjustments",
        {"balance": "points", "amount": 5.5, "reason": "x"},
        422,
        "wrong_type",
    ),
    (
        "merge of a missing member",
        "POST",
        "/api/v1/members/m1/merge",
        {"from": "ghost"},
        404,
        "unknown_member",
    ),
    ("merge without from", "POST", "/api/v1/members/m1/merge", {}, 422, "missing_field"),
    ("merge into itself", "POST", "/api/v1/members/m1/merge", {"from": "m1"}, 422, "merge_into_self"),
    (
        "validation with float money",
        "POST",
        "/api/v1/coupons/validate",
        {"member_id": "m1", "order_amount": 1.5, "coupons": []},
        422,
        "wrong_type",
    ),
    (
        "validation with negative money",
        "POST",
        "/api/v1/coupons/validate",
        {"member_id": "m1", "order_amount": -5, "coupons": []},
        422,
        "out_of_range",
    ),
    ("redeem an unknown coupon", "POST", "/api/v1/coupons/nope/redeem", {}, 404, "unknown_coupon"),
    ("void without reason", "POST", "/api/v1/coupons/nope/void", {}, 422, "missing_field"),
    (
        "redeem an unknown reward",
        "POST",
        "/api/v1/rewards/nope/redeem",
        {"member_id": "m1"},
        422,
        "unknown_reward",
    ),
    (
        "an invalid scheme",
        "POST",
        "/api/v1/versions",
        {"content": "perkflow: 1\nid: x\n"},
        422,
        "invalid_scheme",
    ),
    (
        "a version with an unknown field",
        "POST",
        "/api/v1/versions",
        {"content": "x", "author": "me"},
        422,
        "unknown_field",
    ),
]


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "status", "code"), BAD_OTHERS, ids=[b[0] for b in BAD_OTHERS]
)
def test_other_bad_requests_are_problems_and_change_nothing(
    client: TestClient,
    keys: Keys,
    service: Service,
    name: str,
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
):
    before = dump(service.engine)
    problem(
        client.request(method, path, json=body, headers=bearer(keys.all) | {"Idempotency-Key": "k-" + name}),
        status,
        code,
    )
    assert dump(service.engine) == before
