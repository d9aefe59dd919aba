"""Security: object-level authorisation, mass assignment, SQL injection in every filter and search
parameter, oversized and deeply nested JSON. On SQLite and PostgreSQL; every answer a clear 4xx
(TestClient re-raises a server error, so a 500 fails the test)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from perkflow.service.core import Service
from perkflow.storage import tables as t

from .conftest import Keys
from .helpers import bearer, event, problem

INJECTIONS = (
    "' OR '1'='1",
    "1; DROP TABLE members; --",
    '" OR 1=1 --',
    "%' OR external_id LIKE '%",
    "1) UNION SELECT id, external_id FROM members --",
    "'; SELECT pg_sleep(5); --",
    "\\'; DELETE FROM ledger; --",
)


@pytest.fixture
def client(app: Starlette, keys: Keys) -> TestClient:
    """Two stores: member a at S1 (the store key's own), member b at S2 with a phone, an event
    and the welcome coupons."""
    with TestClient(app) as client:
        auth = bearer(keys.all)
        assert client.put("/api/v1/members/a", json={"home_store": "S1"}, headers=auth).status_code == 201
        assert client.put("/api/v1/members/b", json={"home_store": "S2", "phone": "13800000000"}, headers=auth).status_code == 201
        signup = event("evt-b", type="signup", member_id="b", store="S2", attributes={})
        assert client.post("/api/v1/events", json=signup, headers=auth).status_code == 201
        assert client.post("/api/v1/events", json=event("buy-b", member_id="b", store="S2"), headers=auth).status_code == 201
        yield client


def _coupon_of(service: Service, member: str) -> str:
    with service.engine.connect() as conn:
        return conn.execute(
            select(t.coupons.c.id).join(t.members, t.members.c.id == t.coupons.c.member_id).where(t.members.c.external_id == member).limit(1)
        ).scalar_one()


def test_a_key_bound_to_one_store_gets_404_for_another_stores_member_and_events(client: TestClient, keys: Keys, service: Service):
    store = bearer(keys.store)
    for method, path, body in (
        ("GET", "/api/v1/members/b", None),
        ("GET", "/api/v1/members/b/ledger", None),
        ("PUT", "/api/v1/members/b", {"tags": ["vip"]}),
        ("POST", "/api/v1/members/b/adjustments", {"balance": "points", "amount": 500, "reason": "goodwill"}),
        ("POST", "/api/v1/members/a/merge", {"from": "b"}),
    ):
        response = client.request(method, path, json=body, headers={**store, "Idempotency-Key": f"k-{method}-{path}"})
        found = problem(response, 404, "unknown_member")
        assert found["detail"] == "no member 'b'", (method, path)
        assert "S2" not in response.text and "points" not in response.text
    assert problem(client.get("/api/v1/events/evt-b", headers=store), 404, "unknown_event")
    assert problem(client.get("/api/v1/events/buy-b", headers=store), 404, "unknown_event")
    coupon = quote(_coupon_of(service, "b"), safe="")
    assert problem(client.post(f"/api/v1/coupons/{coupon}/void", json={"reason": "x"}, headers=store), 404, "unknown_coupon")
    assert problem(client.post(f"/api/v1/coupons/{coupon}/redeem", json={"member_id": "b", "store": "S1"}, headers=store), 404, "unknown_coupon")
    assert client.get("/api/v1/members", params={"phone": "13800000000"}, headers=store).json() == {"items": []}
    # Nothing changed: the member of S2 is as it was, and the same requests with an unbound key work.
    held = client.get("/api/v1/members/b", headers=bearer(keys.all)).json()
    assert held["tags"] == [] and held["balances"]["points"] > 0
    assert client.get("/api/v1/members", params={"phone": "13800000000"}, headers=bearer(keys.all)).json() == {"items": [{"id": "b"}]}


@pytest.mark.parametrize(
    ("path", "body", "refused"),
    [
        ("/api/v1/members/a", {"tier": "gold", "balances": {"points": 10**6}, "status": "active", "id": 1, "joined_at": "2020-01-01", "counters": {}}, {"/tier", "/balances", "/status", "/id", "/joined_at", "/counters"}),
        ("/api/v1/webhooks", {"url": "https://hooks.example.com/x", "secret": "mine", "id": 7, "created_at": "2020-01-01"}, {"/secret"}),
    ],
)
def test_fields_the_caller_may_not_set_are_refused(client: TestClient, keys: Keys, path: str, body: dict, refused: set[str]):
    method = "PUT" if path.startswith("/api/v1/members") else "POST"
    response = client.request(method, path, json=body, headers=bearer(keys.all))
    found = problem(response, 422, "unknown_field")
    assert refused <= {e["pointer"] for e in found["errors"]}
    assert all(e["code"] == "unknown_field" for e in found["errors"] if e["pointer"] in refused)
    member = client.get("/api/v1/members/a", headers=bearer(keys.all)).json()
    assert member["tier"] != "gold" and not any(member["balances"].values())


def test_an_event_cannot_say_it_was_made_by_perkflow_or_carry_its_own_decision(client: TestClient, keys: Keys):
    auth = bearer(keys.all)
    expiry = event("sys-1", type="expiry", member_id="a", attributes={})
    assert problem(client.post("/api/v1/events", json=expiry, headers=auth), 422, "system_event_type")
    forged = {**event("forged-1", member_id="a"), "decision": {"effects": []}, "source": "system", "version": "v:1"}
    refused = client.post("/api/v1/events", json=forged, headers=auth)
    assert refused.status_code == 422, refused.text
    assert {"/decision", "/source", "/version"} <= {e["pointer"] for e in refused.json()["errors"]}


def test_a_version_body_cannot_choose_its_author_or_status(client: TestClient, keys: Keys):
    response = client.post(
        "/api/v1/versions", json={"content": "perkflow: 1", "author": "bob", "status": "published"}, headers=bearer(keys.all)
    )
    assert {"/author", "/status"} <= {e["pointer"] for e in problem(response, 422, "unknown_field")["errors"]}


def _counts(service: Service) -> tuple[int, ...]:
    with service.engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(table)).scalar_one() for table in (t.members, t.ledger, t.events, t.coupons))


@pytest.mark.parametrize("injection", INJECTIONS)
def test_sql_injection_in_every_filter_and_search_parameter_finds_nothing_and_changes_nothing(
    client: TestClient, keys: Keys, service: Service, injection: str
):
    before = _counts(service)
    auth = bearer(keys.all)
    answers = {
        "phone": client.get("/api/v1/members", params={"phone": injection}, headers=auth),
        "email": client.get("/api/v1/members", params={"email": injection}, headers=auth),
        "member": client.get(f"/api/v1/members/{quote(injection, safe='')}", headers=auth),
        "ledger member": client.get(f"/api/v1/members/{quote(injection, safe='')}/ledger", headers=auth),
        "ledger after": client.get("/api/v1/members/b/ledger", params={"after": injection}, headers=auth),
        "ledger limit": client.get("/api/v1/members/b/ledger", params={"limit": injection}, headers=auth),
        "event": client.get(f"/api/v1/events/{quote(injection, safe='')}", headers=auth),
        "versions status": client.get("/api/v1/versions", params={"status": injection}, headers=auth),
        "version ref": client.get(f"/api/v1/versions/{quote(injection, safe='')}", headers=auth),
        "diff": client.get("/api/v1/versions/diff", params={"from": injection, "to": "1"}, headers=auth),
        "deliveries limit": client.get("/api/v1/webhooks/1/deliveries", params={"limit": injection}, headers=auth),
        "coupon": client.post(f"/api/v1/coupons/{quote(injection, safe='')}/void", json={"reason": "test"}, headers=auth),
        "dry run": client.post("/api/v1/events", params={"dry_run": injection}, json=event("inj", member_id="b"), headers=auth),
    }
    for name, response in answers.items():
        assert 400 <= response.status_code < 500 or response.status_code == 200, (name, response.status_code, response.text)
        if response.status_code == 200 and name in ("phone", "email", "versions status"):
            assert response.json() == {"items": []}, name
    assert _counts(service) == before


def test_an_oversized_body_is_a_413_before_it_is_read(client: TestClient, keys: Keys):
    big = event("big", member_id="b", attributes={"amount": 100, "note": "x" * (70 * 1024)})
    found = problem(client.post("/api/v1/events", json=big, headers=bearer(keys.all)), 413, "body_too_large")
    assert found["detail"] == "the request body is larger than 65536 bytes"


@pytest.mark.parametrize("depth", [33, 500, 20_000])
def test_deeply_nested_json_is_a_400_that_says_so(client: TestClient, keys: Keys, depth: int):
    nested = "[" * depth + "]" * depth
    for path in ("/api/v1/events", "/api/v1/events:batch", "/api/v1/webhooks", "/api/v1/coupons/validate"):
        body = '{"id": "deep", "type": "purchase", "attributes": {"items": ' + nested + "}}"
        response = client.post(path, content=body, headers={**bearer(keys.all), "Content-Type": "application/json"})
        found = problem(response, 400, "nested_too_deeply")
        assert found["detail"] == "arrays and objects may be nested 32 deep at most", path
    put = client.put("/api/v1/members/a", content='{"attributes": ' + nested + "}", headers={**bearer(keys.all), "Content-Type": "application/json"})
    assert problem(put, 400, "nested_too_deeply")


def test_json_nested_as_deep_as_allowed_reaches_validation(client: TestClient, keys: Keys):
    nested: object = 1
    for _ in range(30):
        nested = [nested]  # with the body and its attributes: 32 deep, the most allowed
    response = client.put("/api/v1/members/a", json={"attributes": {"deep": nested}}, headers=bearer(keys.all))
    assert problem(response, 422, "wrong_type")["errors"][0]["pointer"] == "/attributes"


def test_numbers_past_what_a_column_holds_are_404s_not_overflows(client: TestClient, keys: Keys):
    """Found by schemathesis: such ids reached the database (SQLite's OverflowError, PostgreSQL's
    "integer out of range") and answered 500."""
    auth = bearer(keys.all)
    huge = "9" * 20
    for method, path in (
        ("GET", f"/api/v1/webhooks/{huge}"),
        ("PATCH", f"/api/v1/webhooks/{huge}"),
        ("DELETE", f"/api/v1/webhooks/{huge}"),
        ("GET", f"/api/v1/webhooks/{huge}/deliveries"),
        ("POST", f"/api/v1/webhooks/deliveries/{huge}/redeliver"),
        ("POST", f"/api/v1/versions/{huge}/approve"),
        ("POST", f"/api/v1/versions/{huge}/rollback"),
    ):
        assert problem(client.request(method, path, json={}, headers=auth), 404, "not_found"), (method, path)
    for ref in ("4294967296", f"v:{huge}", f"id:{huge}"):
        assert problem(client.get(f"/api/v1/versions/{ref}", headers=auth), 404, "unknown_version"), ref
    assert problem(client.post("/api/v1/versions/2147483648/rollback", json={}, headers=auth), 404, "unknown_version")
