"""人工调级 through the API: staff hold a member's tier with a reason, under an Idempotency-Key that
names the override; ending it is a DELETE. Both are audited and kept in the tier history."""

from __future__ import annotations

from sqlalchemy import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from perkflow.service.core import Service
from perkflow.storage import tables as t

from ..databases import Clock, publish
from .conftest import SCHEME, Keys
from .helpers import bearer, problem

TIERED = SCHEME.replace(
    "rules:",
    """tiers:
  metric: {balance: points}
  levels:
    - {id: member, name: Member, threshold: 0}
    - {id: gold, name: Gold, threshold: 1000, retain: 800}
  downgrade: {kind: term, term: 12mo}
rules:""",
    1,
)


def test_a_fixed_override_is_set_with_a_reason_shown_on_the_member_and_ended_by_delete(
    app: Starlette, keys: Keys, service: Service, clock: Clock
):
    publish(service, TIERED)
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={}, headers=bearer(keys.all))
        headers = bearer(keys.all) | {"Idempotency-Key": "ticket-7"}
        body = {"kind": "fixed", "tier": "gold", "reason": "ticket 7: service failure", "until": "2027-01-01T00:00:00+08:00"}
        first = client.post("/api/v1/members/m1/tier-override", json=body, headers=headers)
        assert first.status_code == 201, first.text
        assert first.json()["event_id"] == "tier_override:ticket-7"
        again = client.post("/api/v1/members/m1/tier-override", json=body, headers=headers)
        assert (again.status_code, again.json()) == (201, first.json())
        member = client.get("/api/v1/members/m1", headers=bearer(keys.reader)).json()
        assert member["tier"] == "gold"
        assert member["tier_override"] == {
            "kind": "fixed", "tier": "gold", "until": "2027-01-01T00:00:00+08:00",
            "reason": "ticket 7: service failure", "set_at": member["tier_override"]["set_at"],
        }
        assert member["tier_review_at"] == "2027-11-20T00:00:00+08:00"  # gold from 20 Nov 2026 to 19 Nov 2027
        ended = client.delete("/api/v1/members/m1/tier-override", headers=bearer(keys.all) | {"Idempotency-Key": "ticket-7-end"})
        assert ended.status_code == 201, ended.text
        assert ended.json()["event_id"] == "tier_override_end:m1:by:ticket-7-end"
        member = client.get("/api/v1/members/m1", headers=bearer(keys.reader)).json()
        assert member["tier"] == "member" and "tier_override" not in member
        problem(client.delete("/api/v1/members/m1/tier-override", headers=bearer(keys.all)), 422, "no_tier_override")
    with service.engine.connect() as conn:
        actions = conn.execute(select(t.audit_log.c.action).where(t.audit_log.c.action.like("tier_override%"))).scalars().all()
        history = conn.execute(select(t.tier_history.c.from_tier, t.tier_history.c.to_tier, t.tier_history.c.reason).order_by(t.tier_history.c.id)).all()
    assert actions == ["tier_override_set", "tier_override_ended"]
    assert [tuple(h) for h in history] == [
        ("member", "gold", "override"), ("gold", "gold", "override_fixed"),
        ("gold", "member", "override_end"), ("member", "member", "override_ended"),
    ]


def test_an_override_without_a_reason_for_an_unknown_tier_or_of_another_kind_is_refused_and_changes_nothing(
    app: Starlette, keys: Keys, service: Service
):
    publish(service, TIERED)
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={}, headers=bearer(keys.all))
        url = "/api/v1/members/m1/tier-override"
        problem(client.post(url, json={"kind": "fixed", "tier": "gold", "reason": " "}, headers=bearer(keys.all)), 422, "missing_reason")
        problem(client.post(url, json={"kind": "fixed", "tier": "platinum", "reason": "x"}, headers=bearer(keys.all)), 422, "unknown_tier")
        problem(client.post(url, json={"kind": "lowest", "tier": "gold", "reason": "x"}, headers=bearer(keys.all)), 422, "wrong_value")
        problem(client.post(url, json={"kind": "floor", "tier": "gold", "reason": "x"}, headers=bearer(keys.reader)), 403, "insufficient_scope")
        problem(client.post("/api/v1/members/ghost/tier-override", json={"kind": "floor", "tier": "gold", "reason": "x"}, headers=bearer(keys.all)), 422, "unknown_member")
        member = client.get("/api/v1/members/m1", headers=bearer(keys.reader)).json()
        assert member["tier"] == "member" and "tier_override" not in member
