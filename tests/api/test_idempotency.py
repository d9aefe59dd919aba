"""Idempotency-Key on the POSTs other than events: a repeat replays the first answer; the same key
with another body is a 422; a key whose first request still runs is a 409; a refusal frees the key."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.testclient import TestClient

from perkflow.service.core import Service
from perkflow.service.idempotency import request_hash

from .conftest import Keys
from .helpers import bearer, dump, problem

ADJUST = {"balance": "points", "amount": 10, "reason": "goodwill"}


def test_a_repeat_replays_the_first_answer_and_writes_nothing(app: Starlette, keys: Keys, service: Service):
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={}, headers=bearer(keys.all))
        headers = bearer(keys.all) | {"Idempotency-Key": "k1"}
        first = client.post("/api/v1/members/m1/adjustments", json=ADJUST, headers=headers)
        before = dump(service.engine)
        again = client.post("/api/v1/members/m1/adjustments", json=ADJUST, headers=headers)
        assert (again.status_code, again.json()) == (first.status_code, first.json())
        assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
        assert dump(service.engine) == before


def test_the_same_key_with_another_body_is_a_422(app: Starlette, keys: Keys, service: Service):
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={}, headers=bearer(keys.all))
        headers = bearer(keys.all) | {"Idempotency-Key": "k1"}
        client.post("/api/v1/members/m1/adjustments", json=ADJUST, headers=headers)
        before = dump(service.engine)
        problem(
            client.post("/api/v1/members/m1/adjustments", json=ADJUST | {"amount": 11}, headers=headers),
            422,
            "idempotency_key_reused",
        )
        problem(
            client.post("/api/v1/coupons/x/void", json={"reason": "r"}, headers=headers),
            422,
            "idempotency_key_reused",
        )
        assert dump(service.engine) == before


def test_a_key_whose_first_request_still_runs_is_a_409(app: Starlette, keys: Keys, service: Service):
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={}, headers=bearer(keys.all))
        principal = service.access.authenticate(keys.all)
        assert principal is not None
        body = b'{"balance": "points", "amount": 10, "reason": "goodwill"}'
        digest = request_hash("POST", "/api/v1/members/m1/adjustments", body)
        assert (
            service.idempotency.claim("k1", principal.name, digest) is None
        )  # the first request, still running
        headers = bearer(keys.all) | {"Idempotency-Key": "k1", "Content-Type": "application/json"}
        problem(
            client.post("/api/v1/members/m1/adjustments", content=body, headers=headers),
            409,
            "idempotency_key_in_flight",
        )


def test_keys_belong_to_the_key_that_sent_them(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={}, headers=bearer(keys.all))
        mine = client.post(
            "/api/v1/members/m1/adjustments",
            json=ADJUST,
            headers=bearer(keys.all) | {"Idempotency-Key": "same"},
        )
        theirs = client.post(
            "/api/v1/members/m1/adjustments",
            json={**ADJUST, "reason": "other"},
            headers=bearer(keys.other) | {"Idempotency-Key": "other"},
        )
        assert (mine.status_code, theirs.status_code) == (201, 201)


def test_a_refused_request_frees_its_key(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={}, headers=bearer(keys.all))
        headers = bearer(keys.all) | {"Idempotency-Key": "k1"}
        problem(
            client.post("/api/v1/members/m1/adjustments", json={**ADJUST, "reason": ""}, headers=headers),
            422,
            "missing_reason",
        )
        problem(
            client.post(
                "/api/v1/members/m1/adjustments", json={**ADJUST, "balance": "nope"}, headers=headers
            ),
            422,
            "unknown_balance",
        )
        assert client.post("/api/v1/members/m1/adjustments", json=ADJUST, headers=headers).status_code == 201


def test_a_bad_key_is_a_422(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={}, headers=bearer(keys.all))
        headers = bearer(keys.all) | {"Idempotency-Key": "x" * 201}
        problem(
            client.post("/api/v1/members/m1/adjustments", json=ADJUST, headers=headers),
            422,
            "invalid_idempotency_key",
        )
