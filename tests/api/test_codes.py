"""Coupon codes through the API: a batch generated, a code looked up and claimed, and look-ups
past the limit answered 429 with Retry-After."""

from __future__ import annotations

from starlette.testclient import TestClient

from perkflow.api.app import create_api
from perkflow.service.codes import RateLimiter
from perkflow.service.core import Service
from perkflow.settings import Settings

from ..databases import Clock, publish
from ..service.test_codes import SCHEME
from .helpers import bearer, problem


def test_a_batch_is_generated_a_code_looked_up_and_claimed_and_look_ups_are_limited(service: Service, clock: Clock):
    publish(service, SCHEME)
    made = service.access.create_key("pos", ["coupons:write"], created_by="test")
    assert isinstance(made, tuple)
    headers = bearer(made[1])
    service.codes.limiter = RateLimiter(rate=0.5, burst=3, clock=clock)
    with TestClient(create_api(service, Settings())) as client:
        batch = client.post("/api/v1/coupon-codes", json={"policy": "spring", "count": 2}, headers=headers)
        assert batch.status_code == 201, batch.text
        code = batch.json()["codes"][0]
        assert client.get(f"/api/v1/coupon-codes/{code}", headers=headers).json() == {
            "code": code, "policy": "spring", "uses_left": 1, "max_uses": 1,
        }
        claimed = client.post(f"/api/v1/coupon-codes/{code}/claim", json={"member_id": "m1"}, headers=headers)
        assert claimed.status_code == 201 and claimed.json()["effects"][0]["kind"] == "coupon_issued"
        problem(client.post(f"/api/v1/coupon-codes/{code}/claim", json={"member_id": "m2"}, headers=headers), 409, "code_used_up")
        response = client.get("/api/v1/coupon-codes/ANYTHING", headers=headers)
        assert problem(response, 429, "rate_limited")["retry_after"] == 2 and response.headers["retry-after"] == "2"
        imported = client.post("/api/v1/coupon-codes:import", json={"policy": "shared", "csv": "ABCD-1\nx"}, headers=headers)
        assert imported.status_code == 200 and imported.json()["imported"] == 1
        problem(client.post("/api/v1/coupon-codes", json={"policy": "plain", "count": 1}, headers=headers), 422, "policy_without_codes")
