"""What every answer shares: a request id, problem+json for unknown routes and wrong methods, a
500 that is a logged bug with its id; and health at the root."""

from __future__ import annotations

import logging

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from perkflow.service.core import Service

from .conftest import Keys
from .helpers import bearer, event, problem


def test_every_answer_carries_a_request_id_and_a_good_one_is_kept(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        answers = [
            client.get("/healthz"),
            client.get("/api/v1/nope"),
            client.post("/api/v1/events", content=b"{"),
        ]
        ids = [a.headers["x-request-id"] for a in answers]
        assert len(set(ids)) == 3 and all(len(i) == 32 for i in ids)
        assert (
            client.get("/healthz", headers={"X-Request-Id": "pos-7.abc"}).headers["x-request-id"]
            == "pos-7.abc"
        )
        assert (
            client.get("/healthz", headers={"X-Request-Id": "no spaces <b>"}).headers["x-request-id"]
            != "no spaces <b>"
        )


def test_unknown_routes_and_wrong_methods_are_problems(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        problem(client.get("/api/v1/nope", headers=bearer(keys.all)), 404, "not_found")
        problem(client.get("/api/v1/members/m1/nope", headers=bearer(keys.all)), 404, "not_found")
        response = client.delete("/api/v1/events", headers=bearer(keys.all))
        problem(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "POST"


def test_an_unexpected_error_is_a_500_problem_with_the_logged_request_id(
    app: Starlette,
    keys: Keys,
    service: Service,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service.events, "post", broken)
    with (
        TestClient(app, raise_server_exceptions=False) as client,
        caplog.at_level(logging.ERROR, "perkflow.api"),
    ):
        response = client.post("/api/v1/events", json=event(), headers=bearer(keys.all))
    body = problem(response, 500, "internal_error")
    assert body["request_id"] == response.headers["x-request-id"]
    assert "a bug" not in response.text
    assert any(body["request_id"] in record.getMessage() and record.exc_info for record in caplog.records)


def test_health_and_readiness(app: Starlette, keys: Keys, service: Service, monkeypatch: pytest.MonkeyPatch):
    with TestClient(app) as client:
        assert (client.get("/healthz").status_code, client.get("/healthz").json()) == (200, {"status": "ok"})
        assert client.get("/readyz").json() == {"status": "ready"}
        monkeypatch.setattr(
            service, "ready", lambda: (False, "migrations are pending: run `perkflow db upgrade`")
        )
        body = problem(client.get("/readyz"), 503, "not_ready")
        assert "perkflow db upgrade" in body["detail"]
