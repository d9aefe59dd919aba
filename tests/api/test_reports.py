"""GET /api/v1/reports/{name}: the reports as JSON, behind reports:read, with the store a key is bound
to enforced by the server."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.testclient import TestClient

from .conftest import Keys
from .helpers import bearer, event, problem

PERIOD = "from=2026-11-01&to=2026-11-20"


def _members(client: TestClient, keys: Keys) -> None:
    for n, (member, store, amount) in enumerate((("m1", "S1", 3500), ("m2", "S2", 9000))):
        signup = event(f"su-{n}", type="signup", member_id=member, store=store, attributes={})
        assert client.post("/api/v1/events", json=signup, headers=bearer(keys.all)).status_code == 201
        buy = event(f"pos-{n}", member_id=member, store=store, attributes={"amount": amount})
        assert client.post("/api/v1/events", json=buy, headers=bearer(keys.all)).status_code == 201


def _issued(body: dict) -> int:
    table = next(t for t in body["tables"] if t["name"] == "by_period")
    return sum(row["issued"] for row in table["rows"] if row["balance"] == "points")


def test_a_report_is_tables_with_labelled_columns_and_the_filters_applied(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        _members(client, keys)
        response = client.get(f"/api/v1/reports/flows?{PERIOD}", headers=bearer(keys.all))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["report"] == "flows" and body["title"] == {"en": "Flows", "zh-CN": "积分流水"}
        assert body["filters"]["from"] == "2026-11-01" and body["filters"]["timezone"] == "Asia/Shanghai"
        columns = next(t for t in body["tables"] if t["name"] == "by_period")["columns"]
        assert {"key": "issued", "label": {"en": "Issued", "zh-CN": "发放"}} in columns
        assert _issued(body) == 35 + 90


def test_a_key_bound_to_a_store_sees_only_that_stores_figures(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        _members(client, keys)
        own = client.get(f"/api/v1/reports/flows?{PERIOD}", headers=bearer(keys.store))
        assert own.status_code == 200 and own.json()["filters"]["stores"] == ["S1"]
        assert _issued(own.json()) == 35
        named = client.get(f"/api/v1/reports/flows?{PERIOD}&store=S1", headers=bearer(keys.store))
        assert _issued(named.json()) == 35
        other = client.get(f"/api/v1/reports/flows?{PERIOD}&store=S2", headers=bearer(keys.store))
        assert "S2" in problem(other, 403, "store_not_allowed")["detail"]
        both = client.get("/api/v1/reports/liability?store=S1,S2", headers=bearer(keys.store))
        problem(both, 403, "store_not_allowed")


def test_reports_need_the_reports_scope(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        problem(client.get("/api/v1/reports/liability", headers=bearer(keys.reader)), 403, "insufficient_scope")


def test_an_unknown_report_or_a_bad_filter_is_named(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        problem(client.get("/api/v1/reports/profits", headers=bearer(keys.all)), 404, "unknown_report")
        body = problem(client.get("/api/v1/reports/flows?from=2026-13-01&bucket=year&colour=red", headers=bearer(keys.all)), 422, "unknown_field")
        assert [e["pointer"] for e in body["errors"]] == ["/colour", "/from", "/bucket"]
        late = problem(client.get("/api/v1/reports/flows?from=2026-11-02&to=2026-11-01", headers=bearer(keys.all)), 422, "out_of_range")
        assert late["errors"][0]["pointer"] == "/to"
