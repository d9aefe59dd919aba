"""Webhook subscriptions through the API: scope webhooks:admin, CRUD, SSRF refusal, the log."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.testclient import TestClient

from perkflow.service.core import Service
from perkflow.service.webhooks import Webhooks, parse_allow

from .conftest import Keys
from .helpers import bearer, problem


def test_subscriptions_are_managed_with_the_webhooks_admin_scope(app: Starlette, keys: Keys, service: Service):
    service.webhooks = Webhooks(service.engine, service.clock, allow=parse_allow("127.0.0.1"))
    with TestClient(app) as client:
        problem(client.get("/api/v1/webhooks", headers=bearer(keys.reader)), 403, "insufficient_scope")
        problem(client.post("/api/v1/webhooks", json={"url": "http://10.0.0.7/hook"}, headers=bearer(keys.all)), 422, "url_not_allowed")
        problem(client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/h", "kinds": ["nope"]}, headers=bearer(keys.all)), 422, "literal_error")
        made = client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/h", "kinds": ["tier_changed"]}, headers=bearer(keys.all))
        assert made.status_code == 201, made.text
        sub = made.json()
        assert sub["secret"].startswith("whsec_") and sub["kinds"] == ["tier_changed"]
        listed = client.get("/api/v1/webhooks", headers=bearer(keys.all)).json()["items"]
        assert [s["id"] for s in listed] == [sub["id"]] and "secret" not in listed[0]
        changed = client.patch(f"/api/v1/webhooks/{sub['id']}", json={"active": False}, headers=bearer(keys.all))
        assert changed.status_code == 200 and changed.json()["active"] is False
        log = client.get(f"/api/v1/webhooks/{sub['id']}/deliveries", headers=bearer(keys.all))
        assert log.status_code == 200 and log.json() == {"items": []}
        problem(client.post("/api/v1/webhooks/deliveries/99/redeliver", headers=bearer(keys.all)), 404, "unknown_delivery")
        assert client.delete(f"/api/v1/webhooks/{sub['id']}", headers=bearer(keys.all)).status_code == 204
        problem(client.get(f"/api/v1/webhooks/{sub['id']}", headers=bearer(keys.all)), 404, "unknown_webhook")
        problem(client.delete(f"/api/v1/webhooks/{sub['id']}", headers=bearer(keys.all)), 404, "unknown_webhook")
