"""Paying at the till through the API: a quote, a hold with an Idempotency-Key, the purchase that
captures it, a cancel, and a problem+json for every bad request, none of which writes anything."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from perkflow.service.core import Service

from ..databases import Clock, publish
from .conftest import SCHEME, Keys
from .helpers import bearer, dump, event, problem

PAYING = SCHEME.replace(
    "  points: {expiry: {kind: rolling, after: 12mo}}",
    "  points: {expiry: {kind: rolling, after: 12mo}, value: 1, order_payment: {max_share: 0.5}}",
)
HOLDS = "/api/v1/members/m1/holds"
AT = "2026-11-20T20:00:00+08:00"  # the clock's time: the paying version is in force


def sale(event_id: str, **changes: object) -> dict[str, object]:
    return event(event_id, occurred_at=AT, **changes)


@pytest.fixture
def client(app: Starlette, keys: Keys, service: Service) -> Iterator[TestClient]:
    publish(service, PAYING)
    with TestClient(app) as client:
        client.post("/api/v1/events", json=sale("signup-1", type="signup", attributes={}), headers=bearer(keys.all))
        earned = client.post("/api/v1/events", json=sale("pos-1", attributes={"amount": 200_000}), headers=bearer(keys.all))
        assert earned.json()["balances"] == {"points": 2000}
        yield client


def test_a_till_quotes_holds_and_captures_points_for_an_order(client: TestClient, keys: Keys):
    quote = client.get("/api/v1/members/m1/payment-quote?order_amount=3000", headers=bearer(keys.reader))
    assert quote.status_code == 200
    assert [(q["balance"], q["attribute"], q["most"]) for q in quote.json()["balances"]] == [("points", "points_paid", 1500)]
    headers = {**bearer(keys.all), "Idempotency-Key": "till-7-order-88"}
    placed = client.post(HOLDS, json={"order_amount": 3000, "points_paid": 1500, "ttl_seconds": 120}, headers=headers)
    assert placed.status_code == 201
    hold = placed.json()
    assert (hold["status"], hold["amounts"], hold["pay"]) == ("active", {"points": 1500}, {"points_paid": 1500})
    again = client.post(HOLDS, json={"order_amount": 3000, "points_paid": 1500, "ttl_seconds": 120}, headers=headers)
    assert again.json() == hold and again.headers["Idempotent-Replayed"] == "true"
    purchase = sale("pos-2", attributes={"amount": 1500, "order_amount": 3000, "hold": hold["id"], **hold["pay"]})
    captured = client.post("/api/v1/events", json=purchase, headers=bearer(keys.all))
    assert captured.status_code == 201
    assert captured.json()["balances"] == {"points": 2000 - 1500 + 15}
    status = client.get(f"{HOLDS}/{hold['id']}", headers=bearer(keys.reader)).json()
    assert (status["status"], status["captured_by"]) == ("captured", "pos-2")
    problem(client.post(f"{HOLDS}/{hold['id']}/cancel", headers=bearer(keys.all)), 409, "hold_captured")


def test_a_cancelled_hold_is_released(client: TestClient, keys: Keys):
    hold = client.post(HOLDS, json={"order_amount": 4000, "points_paid": 2000}, headers=bearer(keys.all)).json()
    assert client.get("/api/v1/members/m1/payment-quote?order_amount=4000", headers=bearer(keys.all)).json()["balances"][0]["most"] == 0
    cancelled = client.post(f"{HOLDS}/{hold['id']}/cancel", headers=bearer(keys.all))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.get("/api/v1/members/m1/payment-quote?order_amount=4000", headers=bearer(keys.all)).json()["balances"][0]["most"] == 2000


def test_bad_holds_and_captures_are_problems_that_write_nothing(client: TestClient, keys: Keys, service: Service, clock: Clock):
    client.post("/api/v1/events", json=sale("signup-2", type="signup", member_id="m2", attributes={}), headers=bearer(keys.all))
    hold = client.post(HOLDS, json={"order_amount": 3000, "points_paid": 1000}, headers=bearer(keys.all)).json()
    before = dump(service.engine)
    auth = bearer(keys.all)
    problem(client.post(HOLDS, json={"order_amount": 3000, "points_paid": 1600}, headers=auth), 422, "order_payment_limit")
    problem(client.post(HOLDS, json={"order_amount": 9000, "points_paid": 1001}, headers=auth), 422, "insufficient_balance")
    problem(client.post(HOLDS, json={"order_amount": 3000, "stored_value_paid": 100}, headers=auth), 422, "points_not_accepted")
    problem(client.post(HOLDS, json={"order_amount": 3000}, headers=auth), 422, "empty_hold")
    problem(client.post(HOLDS, json={"order_amount": -1, "points_paid": 1}, headers=auth), 422, "out_of_range")
    problem(client.post(HOLDS, json={"order_amount": 3000, "points_paid": 1, "ttl_seconds": 7200}, headers=auth), 422, "out_of_range")
    problem(client.post("/api/v1/members/nobody/holds", json={"order_amount": 3000, "points_paid": 100}, headers=auth), 404, "unknown_member")
    problem(client.get("/api/v1/members/m1/payment-quote", headers=auth), 422, "missing_query")
    problem(client.get(f"{HOLDS}/hold_nope", headers=auth), 404, "unknown_hold")
    problem(client.post(f"/api/v1/members/m2/holds/{hold['id']}/cancel", headers=auth), 422, "hold_of_another_member")
    mismatch = sale("pos-3", attributes={"amount": 2000, "order_amount": 3000, "hold": hold["id"], "points_paid": 900})
    problem(client.post("/api/v1/events", json=mismatch, headers=auth), 422, "hold_amount_mismatch")
    unknown = sale("pos-4", attributes={"amount": 2000, "hold": "hold_nope", "points_paid": 1000})
    problem(client.post("/api/v1/events", json=unknown, headers=auth), 422, "unknown_hold")
    other = sale("pos-5", member_id="m2", attributes={"amount": 2000, "hold": hold["id"], "points_paid": 1000})
    problem(client.post("/api/v1/events", json=other, headers=auth), 422, "hold_of_another_member")
    assert dump(service.engine) == before
    clock.set("2026-11-20T12:05:00+00:00")  # five minutes after it was placed: the expiry instant
    late = event("pos-6", occurred_at="2026-11-20T20:05:00+08:00", attributes={"amount": 2000, "hold": hold["id"], "points_paid": 1000})
    problem(client.post("/api/v1/events", json=late, headers=auth), 409, "hold_expired")
    assert dump(service.engine) == before
