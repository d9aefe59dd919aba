"""Personal data through the API: masked for readers, revealed only with members:reveal and a
reason, exported and erased with their own scopes; every one audited."""

from __future__ import annotations

from sqlalchemy import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from perkflow.service.core import Service
from perkflow.storage import tables as t

from .conftest import Keys
from .helpers import bearer, problem


def test_readers_see_masked_data_and_revealing_needs_its_scope_and_a_reason(app: Starlette, keys: Keys, service: Service):
    with TestClient(app) as client:
        assert client.put("/api/v1/members/m1", json={"phone": "13800000000", "email": "alice@example.com", "home_store": "S1"}, headers=bearer(keys.all)).status_code == 201
        masked = client.get("/api/v1/members/m1/profile", headers=bearer(keys.reader))
        assert masked.status_code == 200
        assert masked.json() == {"id": "m1", "status": "active", "masked": True, "phone": "138****0000", "email": "a***@example.com", "name": None, "birthday": None}
        denied = client.post("/api/v1/members/m1/reveal", json={"reason": "member called"}, headers=bearer(keys.reader))
        problem(denied, 403, "insufficient_scope")
        problem(client.post("/api/v1/members/m1/reveal", json={"fields": ["phone"]}, headers=bearer(keys.all)), 422, "missing_reason")
        leaky = client.post("/api/v1/members/m1/reveal", json={"reason": "alice@example.com called"}, headers=bearer(keys.all))
        problem(leaky, 422, "personal_data_in_reason")
        shown = client.post("/api/v1/members/m1/reveal", json={"fields": ["phone"], "reason": "member called about a lost card"}, headers=bearer(keys.all))
        assert shown.status_code == 200 and shown.json() == {"id": "m1", "masked": False, "phone": "+8613800000000"}
    with service.engine.connect() as conn:
        last = conn.execute(select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(1)).one()
    assert (last.action, last.target, last.detail) == ("personal_data_revealed", "m1", {"fields": ["phone"], "reason": "member called about a lost card"})


def test_a_member_is_exported_then_erased_and_stays_under_a_pseudonym(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={"phone": "13800000000", "name": "王芳", "home_store": "S1"}, headers=bearer(keys.all))
        exported = client.post("/api/v1/members/m1/export", json={"reason": "subject access request"}, headers=bearer(keys.all))
        assert exported.status_code == 200
        assert exported.json()["member"]["name"] == "王芳"
        problem(client.post("/api/v1/members/m1/erase", json={"reason": "asked"}, headers=bearer(keys.reader)), 403, "insufficient_scope")
        erased = client.post("/api/v1/members/m1/erase", json={"reason": "erasure request"}, headers=bearer(keys.all))
        assert erased.status_code == 200
        pseudonym = erased.json()["id"]
        assert erased.json() == {"id": pseudonym, "erased": "m1", "status": "erased"}
        problem(client.get("/api/v1/members/m1", headers=bearer(keys.reader)), 404, "unknown_member")
        after = client.get(f"/api/v1/members/{pseudonym}/profile", headers=bearer(keys.reader)).json()
        assert (after["status"], after["phone"], after["name"]) == ("erased", None, None)
        assert client.get("/api/v1/members", params={"phone": "13800000000"}, headers=bearer(keys.reader)).json() == {"items": []}


def test_members_are_looked_up_with_the_phone_in_the_body_not_the_url(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={"phone": "13800000000", "email": "wang@example.com"}, headers=bearer(keys.all))
        found = client.post("/api/v1/members:lookup", json={"phone": "+86 138 0000 0000"}, headers=bearer(keys.reader))
        assert found.status_code == 200 and found.json() == {"items": [{"id": "m1"}]}
        assert client.post("/api/v1/members:lookup", json={"email": "WANG@example.com"}, headers=bearer(keys.reader)).json() == {"items": [{"id": "m1"}]}
        problem(client.post("/api/v1/members:lookup", json={}, headers=bearer(keys.reader)), 422, "missing_query")
        problem(client.post("/api/v1/members:lookup", json={"phone": "1", "email": "a@b.cn"}, headers=bearer(keys.reader)), 422, "missing_query")
