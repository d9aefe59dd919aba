"""POST /api/v1/events, /events:batch and GET /events/{id}, as an integrator sees them."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.testclient import TestClient

from perkflow.service.core import Service

from .conftest import Keys
from .helpers import bearer, dump, event, problem


def test_a_purchase_answers_its_decision_and_a_retry_answers_the_same(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        assert client.put("/api/v1/members/m1", json={}, headers=bearer(keys.all)).status_code == 201
        first = client.post("/api/v1/events", json=event(), headers=bearer(keys.all))
        assert first.status_code == 201
        body = first.json()
        assert body["event_id"] == "pos-1" and body["member_id"] == "m1"
        assert body["balances"] == {"points": 35}
        assert [(e["kind"], e["rule"], e["amount"]) for e in body["effects"]] == [("earn", "base-earn", 35)]
        assert body["trace"] == [{"rule": "base-earn", "outcome": "fired", "read": {"event.amount": 3500}}]
        assert body["version"].startswith("sha256-v1:")
        again = client.post("/api/v1/events", json=event(), headers=bearer(keys.all))
        assert again.status_code == 200 and again.json() == body


def test_the_same_id_with_another_body_is_a_409_naming_the_field(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={}, headers=bearer(keys.all))
        client.post("/api/v1/events", json=event(), headers=bearer(keys.all))
        response = client.post(
            "/api/v1/events", json=event(attributes={"amount": 9999}), headers=bearer(keys.all)
        )
        body = problem(response, 409, "event_id_reused")
        assert body["differing_fields"] == ["/attributes/amount"]


def test_a_dry_run_answers_the_decision_and_writes_nothing(app: Starlette, keys: Keys, service: Service):
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={}, headers=bearer(keys.all))
        before = dump(service.engine)
        response = client.post("/api/v1/events?dry_run=true", json=event(), headers=bearer(keys.all))
        assert response.status_code == 200
        assert response.json()["dry_run"] is True and response.json()["balances"] == {"points": 35}
        assert dump(service.engine) == before
        assert client.post("/api/v1/events", json=event(), headers=bearer(keys.all)).status_code == 201


def test_a_signup_event_creates_the_member(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        response = client.post(
            "/api/v1/events", json=event("s-1", type="signup", attributes={}), headers=bearer(keys.all)
        )
        assert response.status_code == 201
        assert [e["kind"] for e in response.json()["effects"]] == ["coupon_issued"] * 3
        assert client.get("/api/v1/members/m1", headers=bearer(keys.all)).json()["home_store"] == "S1"


def test_events_made_by_perkflow_itself_cannot_be_posted(app: Starlette, keys: Keys, service: Service):
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={}, headers=bearer(keys.all))
        before = dump(service.engine)
        adjustment = event(
            "sneaky", type="adjustment", attributes={"balance": "points", "amount": 10**6, "reason": "me"}
        )
        problem(
            client.post("/api/v1/events", json=adjustment, headers=bearer(keys.all)), 422, "system_event_type"
        )
        assert dump(service.engine) == before


def test_a_batch_answers_one_result_per_event_each_applied_on_its_own(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={}, headers=bearer(keys.all))
        batch = [
            event("b-1"),
            event("b-2", member_id="ghost"),
            event("b-1"),
            "not an event",
            event("b-3", attributes={"amount": 100}),
        ]
        response = client.post("/api/v1/events:batch", json=batch, headers=bearer(keys.all))
        assert response.status_code == 200
        results = response.json()
        assert [(r["id"], r["status"]) for r in results] == [
            ("b-1", 201),
            ("b-2", 422),
            ("b-1", 200),
            (None, 422),
            ("b-3", 201),
        ]
        assert results[1]["problem"]["code"] == "unknown_member"
        assert results[4]["body"]["balances"] == {"points": 36}


def test_a_batch_is_a_list_of_at_most_1000_events(app: Starlette, keys: Keys, service: Service):
    with TestClient(app) as client:
        before = dump(service.engine)
        problem(
            client.post("/api/v1/events:batch", json=event(), headers=bearer(keys.all)), 422, "wrong_type"
        )
        too_many = [{"id": f"e{i}"} for i in range(1001)]
        body = problem(
            client.post("/api/v1/events:batch", json=too_many, headers=bearer(keys.all)),
            422,
            "batch_too_large",
        )
        assert "1000" in body["detail"]
        assert dump(service.engine) == before


def test_a_stored_event_is_read_back_with_its_decision(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={}, headers=bearer(keys.all))
        decision = client.post("/api/v1/events", json=event(), headers=bearer(keys.all)).json()
        response = client.get("/api/v1/events/pos-1", headers=bearer(keys.reader))
        assert response.status_code == 200
        stored = response.json()
        assert (stored["id"], stored["event"], stored["decision"], stored["source"]) == (
            "pos-1",
            event(),
            decision,
            "api",
        )
        problem(client.get("/api/v1/events/nope", headers=bearer(keys.reader)), 404, "unknown_event")


def test_a_store_bound_key_posts_only_its_stores_events(app: Starlette, keys: Keys, service: Service):
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={"home_store": "S2"}, headers=bearer(keys.all))
        before = dump(service.engine)
        problem(
            client.post("/api/v1/events", json=event(store="S2"), headers=bearer(keys.store)),
            403,
            "store_not_allowed",
        )
        assert dump(service.engine) == before
        assert (
            client.post("/api/v1/events", json=event(store="S1"), headers=bearer(keys.store)).status_code
            == 201
        )
        assert client.get("/api/v1/events/pos-1", headers=bearer(keys.store)).status_code == 200
