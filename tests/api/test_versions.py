"""Scheme versions through the API, with four eyes: the key that submits cannot approve."""

from __future__ import annotations

import yaml
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from perkflow.service.core import Service
from perkflow.storage import tables as t

from .conftest import SCHEME, Keys
from .helpers import bearer, dump, problem

RICHER = SCHEME.replace('amount: "event.amount / 100"', 'amount: "event.amount / 50"')


def test_versions_are_listed_and_read_as_json_or_as_the_yaml_file(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        listed = client.get("/api/v1/versions", headers=bearer(keys.all)).json()["items"]
        assert [(v["number"], v["status"], v["author"], v["approver"]) for v in listed] == [
            (1, "published", "alice", "bob")
        ]
        as_json = client.get("/api/v1/versions/1", headers=bearer(keys.all)).json()
        assert as_json["content"]["id"] == "test-club" and as_json["hash"] == listed[0]["hash"]
        as_yaml = client.get(
            "/api/v1/versions/v:1", headers=bearer(keys.all) | {"Accept": "application/yaml"}
        )
        assert as_yaml.headers["content-type"].startswith("application/yaml")
        assert yaml.safe_load(as_yaml.text)["id"] == "test-club"
        assert (
            client.get(f"/api/v1/versions/{listed[0]['hash']}?format=yaml", headers=bearer(keys.all)).text
            == as_yaml.text
        )
        problem(client.get("/api/v1/versions/9", headers=bearer(keys.all)), 404, "unknown_version")


def test_four_eyes_the_author_cannot_approve_another_key_can(app: Starlette, keys: Keys, service: Service):
    with TestClient(app) as client:
        submitted = client.post(
            "/api/v1/versions?comment=double+points",
            content=RICHER,
            headers=bearer(keys.all) | {"Content-Type": "application/yaml"},
        )
        assert submitted.status_code == 201
        version = submitted.json()
        assert (version["status"], version["number"], version["comment"], version["author"]) == (
            "submitted",
            None,
            "double points",
            "key:" + keys.all.split(".")[0],
        )
        before = dump(service.engine)
        problem(
            client.post(f"/api/v1/versions/{version['id']}/approve", headers=bearer(keys.all)),
            403,
            "forbidden",
        )
        assert dump(service.engine) == before
        approved = client.post(f"/api/v1/versions/{version['id']}/approve", headers=bearer(keys.other))
        assert approved.status_code == 200 and (approved.json()["status"], approved.json()["number"]) == (
            "published",
            2,
        )
        problem(
            client.post(f"/api/v1/versions/{version['id']}/approve", headers=bearer(keys.other)),
            409,
            "not_submitted",
        )
    with service.engine.connect() as conn:
        actions = [r.action for r in conn.execute(select(t.audit_log.c.action).order_by(t.audit_log.c.id))]
    assert actions[-2:] == ["version_submitted", "version_published"]


def test_a_version_is_submitted_as_json_returned_and_diffed(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        submitted = client.post(
            "/api/v1/versions",
            json={"content": RICHER, "comment": "try", "effective_at": "2027-01-01T00:00:00+08:00"},
            headers=bearer(keys.all),
        )
        assert (
            submitted.status_code == 201 and submitted.json()["effective_at"] == "2026-12-31T16:00:00+00:00"
        )
        returned = client.post(
            f"/api/v1/versions/{submitted.json()['id']}/return",
            json={"comment": "not yet"},
            headers=bearer(keys.other),
        )
        assert returned.status_code == 200 and returned.json()["status"] == "returned"
        diff = client.get(
            f"/api/v1/versions/diff?from=1&to=id:{submitted.json()['id']}", headers=bearer(keys.all)
        ).json()
        assert [(c["kind"], c["section"], c["id"]) for c in diff["changes"]] == [
            ("changed", "rules", "base-earn")
        ]
        assert "event.amount / 50" in diff["text"]
        problem(client.get("/api/v1/versions/diff?from=1", headers=bearer(keys.all)), 422, "missing_query")


def test_a_rollback_is_a_new_submission_under_four_eyes(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        second = client.post("/api/v1/versions", json={"content": RICHER}, headers=bearer(keys.all)).json()
        client.post(f"/api/v1/versions/{second['id']}/approve", headers=bearer(keys.other))
        rollback = client.post(
            "/api/v1/versions/1/rollback", json={"comment": "too generous"}, headers=bearer(keys.all)
        )
        assert rollback.status_code == 201
        assert (rollback.json()["status"], rollback.json()["comment"]) == ("submitted", "too generous")
        problem(client.post("/api/v1/versions/7/rollback", headers=bearer(keys.all)), 404, "unknown_version")


def test_reading_versions_needs_schemes_read(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        problem(client.get("/api/v1/versions", headers=bearer(keys.reader)), 403, "insufficient_scope")
        problem(
            client.post("/api/v1/versions/1/approve", headers=bearer(keys.reader)), 403, "insufficient_scope"
        )
