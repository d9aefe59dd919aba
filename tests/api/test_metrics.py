"""Observability: Prometheus metrics at /metrics, JSON logs with request and event ids, the Grafana
dashboard in docs/ reading only metrics that exist, and /readyz failing for the right reasons."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from perkflow import logs
from perkflow.api.app import create_api
from perkflow.service.core import Service, open_service
from perkflow.settings import Settings
from perkflow.storage import tables as t

from ..databases import publish
from .conftest import SCHEME, Keys
from .helpers import bearer, event, problem

TOKEN = "metrics-token-0123456789"
DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient) -> tuple[Samples, set[str]]:
    """Every sample by (name, sorted labels), and every metric name the text mentions."""
    response = client.get("/metrics", headers=bearer(TOKEN))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    names: set[str] = set()
    for family in text_string_to_metric_families(response.text):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, names


@pytest.fixture
def client(service: Service, keys: Keys) -> TestClient:
    publish(service, SCHEME.replace("min_spend: 2000, validity: {days: 30}}", "min_spend: 2000, validity: {days: 30}, budget: 10}"))
    return TestClient(create_api(service, Settings(metrics_token=TOKEN)))


def test_metrics_are_off_without_a_token_and_need_it_when_on(service: Service, keys: Keys):
    with TestClient(create_api(service, Settings())) as off:
        assert "PERKFLOW_METRICS_TOKEN" in problem(off.get("/metrics"), 404, "metrics_off")["detail"]
    with TestClient(create_api(service, Settings(metrics_token=TOKEN))) as on:
        assert problem(on.get("/metrics"), 401, "unauthenticated")
        assert problem(on.get("/metrics", headers=bearer(keys.all)), 401, "unauthenticated")  # an API key is not it
        assert on.get("/metrics", headers=bearer(TOKEN)).status_code == 200


def test_events_rules_routes_and_transactions_are_counted(client: TestClient, keys: Keys):
    with client:
        auth = bearer(keys.all)
        signup = event("e0", type="signup", attributes={}, occurred_at="2026-11-20T12:00:00+00:00")  # under the version with the budget
        assert client.post("/api/v1/events", json=signup, headers=auth).status_code == 201
        assert client.post("/api/v1/events", json=event("e1"), headers=auth).status_code == 201
        assert client.post("/api/v1/events", json=event("e1"), headers=auth).status_code == 200
        assert client.post("/api/v1/events?dry_run=true", json=event("e2"), headers=auth).status_code == 200
        assert client.post("/api/v1/events", json=event("e3", attributes={"amount": 0}), headers=auth).status_code == 201
        assert client.post("/api/v1/events", json=event("e4", member_id="nobody"), headers=auth).status_code == 422
        assert client.get("/api/v1/members/m1", headers=auth).status_code == 200
        assert client.get("/api/v1/no/such/path").status_code == 404
        samples, _ = scrape(client)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("perkflow_events_total", type="signup", outcome="applied") == 1
    assert value("perkflow_events_total", type="purchase", outcome="applied") == 2
    assert value("perkflow_events_total", type="purchase", outcome="duplicate") == 1
    assert value("perkflow_events_total", type="purchase", outcome="dry_run") == 1
    assert value("perkflow_events_total", type="purchase", outcome="refused") == 1
    assert value("perkflow_events_refused_total", code="unknown_member") == 1
    assert value("perkflow_rules_total", rule="welcome", outcome="fired", reason="") == 1
    assert value("perkflow_rules_total", rule="base-earn", outcome="fired", reason="") == 1
    assert value("perkflow_rules_total", rule="base-earn", outcome="skipped", reason="when_false") == 1
    route = {"method": "GET", "route": "/api/v1/members/{member_id}", "status": "200"}
    assert value("perkflow_http_request_duration_seconds_count", **route) == 1
    assert value("perkflow_http_request_duration_seconds_count", method="GET", route="unmatched", status="404") == 1
    assert not any("m1" in dict(labels).get("route", "") for _, labels in samples)
    assert value("perkflow_db_transaction_duration_seconds_count", outcome="commit") >= 3
    assert value("perkflow_budget_remaining", budget="coupon:five-off") == 9  # the signup's welcome coupon
    assert value("perkflow_database_up") == 1


def test_outbox_depth_and_webhook_failures_are_read_from_the_database(client: TestClient, service: Service):
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with service.engine.begin() as conn:
        conn.execute(
            insert(t.outbox),
            [{"kind": k, "event_id": "e", "payload": {}, "created_at": now, "status": s} for k, s in
             (("points_changed", "pending"), ("points_changed", "pending"), ("notification", "pending"), ("tier_changed", "delivered"))],
        )
        conn.execute(
            insert(t.webhook_deliveries),
            [{"subscription_id": 1, "outbox_id": n, "message_id": f"msg_{n}", "kind": "points_changed", "status": s, "attempts": a, "created_at": now}
             for n, (s, a) in enumerate((("pending", 2), ("pending", 0), ("dead", 8), ("delivered", 1)))],
        )
    with client:
        samples, _ = scrape(client)
    assert samples[("perkflow_outbox_depth", (("kind", "points_changed"),))] == 2
    assert samples[("perkflow_outbox_depth", (("kind", "notification"),))] == 1
    assert ("perkflow_outbox_depth", (("kind", "tier_changed"),)) not in samples
    assert samples[("perkflow_webhook_failures", (("state", "retrying"),))] == 1
    assert samples[("perkflow_webhook_failures", (("state", "dead"),))] == 1


def test_metrics_still_answer_while_the_database_is_down(client: TestClient, service: Service, monkeypatch: pytest.MonkeyPatch):
    with client:
        def unreachable() -> None:
            raise ConnectionRefusedError("the database is down")

        monkeypatch.setattr(service.engine, "connect", unreachable)
        samples, _ = scrape(client)
    assert samples[("perkflow_database_up", ())] == 0


def test_the_grafana_dashboard_reads_only_metrics_that_exist(client: TestClient, keys: Keys):
    with client:
        client.post("/api/v1/events", json=event("e0", type="signup", attributes={}), headers=bearer(keys.all))
        _, names = scrape(client)
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(exprs) >= 8
    read = {name for expr in exprs for name in re.findall(r"\bperkflow_[a-z_]+", expr)}
    assert read and read <= names, read - names
    family = re.compile(r"_(total|bucket|count|sum|created)$")
    unshown = {family.sub("", n) for n in names} - {family.sub("", n) for n in read}
    assert not unshown, f"metrics no panel shows: {unshown}"


def test_log_lines_are_json_with_the_request_and_event_ids(service: Service, keys: Keys):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    seen = logging.getLogger("perkflow.test")
    seen.addHandler(handler)
    seen.setLevel(logging.INFO)
    service.events.observers.append(lambda raw, result: seen.info("applied %s", raw.get("id")))
    try:
        with TestClient(create_api(service, Settings())) as client:
            client.post("/api/v1/events", json=event("e9", type="signup", attributes={}), headers={**bearer(keys.all), "X-Request-Id": "req-42"})
    finally:
        seen.removeHandler(handler)
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["message"] == "applied e9"
    assert (line["request_id"], line["event_id"], line["level"], line["logger"]) == ("req-42", "e9", "info", "perkflow.test")
    assert datetime.fromisoformat(line["time"]).tzinfo is not None


def test_access_lines_lose_their_query_string():
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', ("10.0.0.1:5000", "GET", "/api/v1/members?phone=13800000000", "1.1", 200), None)
    assert logs.NoQuery().filter(record)
    assert record.getMessage() == '10.0.0.1:5000 - "GET /api/v1/members HTTP/1.1" 200'



def test_the_logging_configuration_serve_hands_uvicorn_applies():
    names = ("perkflow", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {n: (lg.handlers[:], lg.level, lg.propagate) for n in names for lg in [logging.getLogger(n)]}
    try:
        for kind, formatter in (("text", logs.TextFormatter), ("json", logs.JsonFormatter)):
            logging.config.dictConfig(logs.config(kind))
            access = logging.getLogger("uvicorn.access").handlers[0]
            assert isinstance(access.formatter, formatter)
            assert any(isinstance(f, logs.NoQuery) for f in access.filters)
    finally:
        for name, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


def test_readyz_fails_while_the_database_is_unreachable(tmp_path: Path):
    svc = open_service("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", tmp_path / "data", upgrade=False)
    with TestClient(create_api(svc, Settings())) as client:
        body = problem(client.get("/readyz"), 503, "not_ready")
    assert body["detail"].startswith("database unreachable")


def test_readyz_fails_while_migrations_are_pending(tmp_path: Path):
    svc = open_service(f"sqlite:///{tmp_path / 'new.sqlite'}", tmp_path / "data", upgrade=False)
    with TestClient(create_api(svc, Settings())) as client:
        body = problem(client.get("/readyz"), 503, "not_ready")
    assert body["detail"] == "migrations are pending: run `perkflow db upgrade`"


def test_every_problem_names_the_request_id_of_its_answer(service: Service, keys: Keys):
    with TestClient(create_api(service, Settings())) as client:
        answers = [
            client.get("/api/v1/members/nobody", headers=bearer(keys.all)),
            client.get("/api/v1/members/nobody"),
            client.post("/api/v1/events", content=b"{", headers={**bearer(keys.all), "X-Request-Id": "req-7"}),
            client.get("/api/v1/no/such/path"),
        ]
    for response in answers:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["request_id"] == response.headers["x-request-id"]
    assert answers[2].json()["request_id"] == "req-7"


def test_routes_added_after_the_api_is_made_are_timed_by_their_template(service: Service):
    app = create_api(service, Settings(metrics_token=TOKEN))

    async def page(request: object) -> PlainTextResponse:
        return PlainTextResponse("a page")

    app.router.routes.append(Route("/editor/schemes/{scheme_id}", page))  # as the editor mounts its pages
    with TestClient(app) as client:
        assert client.get("/editor/schemes/coffee").status_code == 200
        samples, _ = scrape(client)
    labels = (("method", "GET"), ("route", "/editor/schemes/{scheme_id}"), ("status", "200"))
    assert samples[("perkflow_http_request_duration_seconds_count", labels)] == 1
