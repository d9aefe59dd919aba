"""Rate limits: a token bucket per API key and per client address, 429 problem+json with
Retry-After, on a clock the test moves by hand."""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from perkflow.api import ratelimit
from perkflow.api.app import create_api
from perkflow.api.ratelimit import Buckets, Limit
from perkflow.service.core import Service
from perkflow.settings import Settings

from .conftest import Keys
from .helpers import bearer, event, problem


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks(monkeypatch: pytest.MonkeyPatch) -> Ticks:
    clock = Ticks()
    monkeypatch.setattr(ratelimit, "monotonic", clock)
    return clock


def limited(service: Service, **limits: int) -> TestClient:
    settings = Settings(**{"rate_per_key": 0, "rate_per_address": 0, **limits})  # type: ignore[arg-type]
    return TestClient(create_api(service, settings))


def test_a_bucket_allows_a_burst_then_the_rate():
    ticks = Ticks()
    buckets = Buckets(Limit(rate=2, burst=3), ticks)
    assert [buckets.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k") == 0.5  # empty: half a second until the next token
    ticks.now += 0.5
    assert buckets.take("k") == 0.0
    ticks.now += 60
    assert [buckets.take("k") for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]  # never more than the burst
    assert buckets.take("other") == 0.0


def test_full_buckets_of_idle_clients_are_swept(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(ratelimit, "SWEEP_EVERY", 10)
    ticks = Ticks()
    buckets = Buckets(Limit(rate=1, burst=5), ticks)
    for n in range(9):
        buckets.take(f"client-{n}")
    ticks.now += 5  # every bucket is full again: nothing to remember
    buckets.take("late")
    assert len(buckets) == 1


def test_a_key_past_its_rate_gets_429_with_retry_after(service: Service, keys: Keys, ticks: Ticks):
    with limited(service, rate_per_key=1, burst_per_key=2) as client:
        for n in range(2):
            assert client.get(f"/api/v1/members/m{n}", headers=bearer(keys.all)).status_code == 404
        response = client.post("/api/v1/events", json=event(), headers=bearer(keys.all))
        body = problem(response, 429, "rate_limited")
        assert response.headers["retry-after"] == "1"
        assert body["retry_after"] == 1
        assert body["detail"] == "this API key may make 1 requests a second, in bursts of 2: retry in 1 s"
        assert body["instance"] == "/api/v1/events"
        assert response.headers["x-request-id"]
        # Another key has its own bucket; health checks are never limited.
        assert client.get("/api/v1/members/m1", headers=bearer(keys.other)).status_code == 404
        assert client.get("/healthz").status_code == 200
        ticks.now += 1
        assert client.get("/api/v1/members/m1", headers=bearer(keys.all)).status_code == 404


def test_an_address_past_its_rate_gets_429_whatever_token_it_sends(service: Service, keys: Keys, ticks: Ticks):
    with limited(service, rate_per_address=1, burst_per_address=3) as client:
        for token in ("forged-1", "forged-2", "forged-3"):
            assert client.get("/api/v1/members/m1", headers=bearer(token)).status_code == 401
        response = client.get("/api/v1/members/m1", headers=bearer("forged-4"))
        assert problem(response, 429, "rate_limited")["detail"].startswith("this address may make 1 requests a second")
        assert response.headers["retry-after"] == "1"
        ticks.now += 3.5
        assert client.get("/api/v1/members/m1", headers=bearer(keys.all)).status_code == 404


def test_a_rate_of_zero_turns_the_limit_off(service: Service, keys: Keys, ticks: Ticks):
    with limited(service, burst_per_key=1, burst_per_address=1) as client:
        assert all(client.get("/api/v1/openapi.json").status_code == 200 for _ in range(5))


def test_tokens_and_passwords_never_reach_the_logs(service: Service, keys: Keys, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    with TestClient(create_api(service, Settings()), raise_server_exceptions=False) as client:
        client.post("/api/v1/events", json=event(), headers=bearer(keys.all))
        client.get("/api/v1/members/m1", headers=bearer("pk_forged.s3cr3t-that-must-not-leak"))
        client.get("/api/v1/members/m1", headers={"Authorization": "Basic YWRtaW46aHVudGVyMg=="})
    made = service.access.create_key("logged", ["events:read"], created_by="test")
    assert isinstance(made, tuple)
    service.access.create_user("carol", "hunter2-long-password", ["admin"], created_by="test")
    assert not service.access.check_password("carol", "wrong-password-attempt")
    text = "\n".join(record.getMessage() + str(record.args) + str(record.__dict__) for record in caplog.records)
    for secret in (keys.all, "s3cr3t-that-must-not-leak", "YWRtaW46aHVudGVyMg", made[1], "hunter2-long-password", "wrong-password-attempt"):
        assert secret not in text
