"""Each role against each action of the editor, on the server (Workbench and the services it
calls), on SQLite and PostgreSQL: what a role may not do is refused with 403 whatever the UI shows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from perkflow.service.core import Service, open_service
from perkflow.service.drafts import EMPTY_SCHEME
from perkflow.service.problems import Problem
from perkflow.service.staff import PERMISSIONS, Staff
from perkflow.service.workbench import Workbench

from ..databases import BACKENDS, Clock, fresh_url, publish

ROLES = ("admin", "operator", "approver", "store_manager", "finance", "support", "auditor")
SCHEME = """
id: club
name: Club
balances:
  points: {}
rules:
  - id: earn
    on: purchase
    then:
      - award: {balance: points, amount: "event.amount / 100"}
"""
EVENT = {"id": "e1", "type": "purchase", "member_id": "m1", "occurred_at": "2026-11-20T10:00:00+08:00", "store": "s1", "attributes": {"amount": 1000}}

# action -> (the permission it needs, what it does)
ACTIONS: dict[str, tuple[str, Callable[[Workbench, Staff, dict[str, Any]], Any]]] = {
    "list drafts": ("drafts.read", lambda wb, s, ctx: wb.drafts(s)),
    "open a draft": ("drafts.read", lambda wb, s, ctx: wb.service.drafts.get(ctx["draft"], by=s)),
    "create a draft": ("drafts.edit", lambda wb, s, ctx: wb.service.drafts.create("x", dict(EMPTY_SCHEME), by=s)),
    "save a draft": ("drafts.edit", lambda wb, s, ctx: wb.service.drafts.save(ctx["draft"], dict(EMPTY_SCHEME), ctx["revision"], by=s)),
    "discard a draft": ("drafts.edit", lambda wb, s, ctx: wb.service.drafts.discard(ctx["spare"], by=s)),
    "preview an event": ("drafts.preview", lambda wb, s, ctx: wb.preview_event(s, ctx["content"], EVENT)),
    "replay events": ("drafts.preview", lambda wb, s, ctx: wb.compare(s, ctx["content"], [EVENT])),
    "read stored events": ("drafts.preview", lambda wb, s, ctx: wb.stored_events(s, 30)),
    "submit a draft": ("versions.submit", lambda wb, s, ctx: wb.service.drafts.submit(ctx["draft"], ctx["revision"], by=s, comment="go")),
    "roll back": ("versions.submit", lambda wb, s, ctx: wb.rollback(s, 1, "back")),
    "approve": ("versions.approve", lambda wb, s, ctx: wb.approve(s, ctx["waiting"])),
    "send back": ("versions.approve", lambda wb, s, ctx: wb.send_back(s, ctx["waiting"], "no")),
    "list versions": ("versions.read", lambda wb, s, ctx: wb.versions(s)),
    "download a version": ("versions.read", lambda wb, s, ctx: wb.version_yaml(s, 1)),
    "diff versions": ("versions.read", lambda wb, s, ctx: wb.diff(s, "1", "1")),
    "read the audit log": ("audit.read", lambda wb, s, ctx: wb.audit(s)),
    "find members": ("members.read", lambda wb, s, ctx: wb.find_members(s, "m1")),
    "open a member": ("members.read", lambda wb, s, ctx: wb.member(s, "m1")),
    "look up an event": ("members.read", lambda wb, s, ctx: wb.event(s, "e1")),
    "see masked personal data": ("members.read", lambda wb, s, ctx: wb.profile(s, "m1")),
    "reveal personal data": ("members.reveal", lambda wb, s, ctx: wb.reveal(s, "m1", "member asked on the phone")),
    "export a member's data": ("members.reveal", lambda wb, s, ctx: wb.export_subject(s, "m1", "subject access request")),
    "erase a member": ("members.erase", lambda wb, s, ctx: wb.erase(s, "m1", "the member asked to be forgotten")),
    "export members in full": ("members.export_full", lambda wb, s, ctx: wb.export_members(s, full=True, reason="year-end audit")),
    "export members masked": ("members.read", lambda wb, s, ctx: wb.export_members(s, full=False)),
    "see what a member still needs": ("members.read", lambda wb, s, ctx: wb.progress(s, "m1")),
    "read a report": ("reports.read", lambda wb, s, ctx: wb.report(s, "flows", {})),
    "adjust a balance": ("members.adjust", lambda wb, s, ctx: wb.adjust(s, "m1", "points", 5, "goodwill")),
    "set a tier override": ("members.tier_override", lambda wb, s, ctx: wb.set_tier_override(s, "m1", "floor", "gold", "VIP complaint")),
    "end a tier override": ("members.tier_override", lambda wb, s, ctx: wb.end_tier_override(s, "m1")),
    "list users": ("users.admin", lambda wb, s, ctx: wb.service.staff.list_users(by=s)),
    "revoke sessions": ("users.admin", lambda wb, s, ctx: wb.revoke_sessions(s, "operator")),
    "create a user": ("users.admin", lambda wb, s, ctx: wb.create_user(s, f"new-{s.username}", ["support"], [])),
    "list keys": ("users.admin", lambda wb, s, ctx: wb.keys(s)),
    "create a key": ("users.admin", lambda wb, s, ctx: wb.create_key(s, "pos", ["events:write"], [])),
    "revoke a key": ("users.admin", lambda wb, s, ctx: wb.revoke_key(s, "pk_000000000000")),
}


def _staff(role: str, stores: frozenset[str] | None = None) -> Staff:
    return Staff(id=1, username=role, roles=frozenset({role}), stores=stores, locale="en")


def _world(service: Service) -> tuple[Workbench, dict[str, Any]]:
    publish(service, SCHEME)
    service.members.put("m1", {"home_store": "s1"}, actor="test")
    posted = service.events.post(dict(EVENT))
    assert not isinstance(posted, Problem), posted
    admin = _staff("admin")
    made = service.drafts.create("d", dict(EMPTY_SCHEME) | {"id": "club"}, by=admin)
    spare = service.drafts.create("spare", dict(EMPTY_SCHEME), by=admin)
    waiting = service.versions.submit(SCHEME.replace("Club", "Club 2"), author="user:someone-else")
    assert not isinstance(made, Problem) and not isinstance(spare, Problem) and not isinstance(waiting, Problem)
    return Workbench(service), {"draft": made.id, "revision": made.revision, "spare": spare.id, "waiting": waiting.id, "content": made.content}


@pytest.fixture(scope="module", params=BACKENDS)
def shared_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workbench, dict[str, Any]]]:
    """One world for the whole matrix: every check comes before any change, so what an allowed
    role did before (a draft saved, a version approved) can only turn a later answer into a 409 or
    404, never into a 403."""
    tmp = tmp_path_factory.mktemp("permissions")
    service = open_service(fresh_url(request.param, tmp), tmp / "data", clock=Clock())
    yield _world(service)
    service.engine.dispose()


@pytest.fixture
def world(service: Service) -> tuple[Workbench, dict[str, Any]]:
    return _world(service)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_role_may_do_exactly_what_its_permissions_say(shared_world: tuple[Workbench, dict[str, Any]], role: str, action: str) -> None:
    wb, ctx = shared_world
    permission, do = ACTIONS[action]
    allowed = role in PERMISSIONS[permission]
    result = do(wb, _staff(role, frozenset({"s1"}) if role == "store_manager" else None), ctx)
    refused = isinstance(result, Problem) and result.status == 403
    assert refused is not allowed, (role, action, result)


def test_every_permission_is_exercised() -> None:
    assert {permission for permission, _ in ACTIONS.values()} == set(PERMISSIONS)


def test_a_store_manager_sees_only_the_members_and_events_of_their_stores(world: tuple[Workbench, dict[str, Any]]) -> None:
    wb, _ = world
    elsewhere = _staff("store_manager", frozenset({"s2"}))
    assert wb.find_members(elsewhere, "m1") == []
    for result in (wb.member(elsewhere, "m1"), wb.event(elsewhere, "e1")):
        assert isinstance(result, Problem) and result.status == 404
    assert not isinstance(wb.member(_staff("store_manager", frozenset({"s1"})), "m1"), Problem)


def test_nobody_approves_their_own_version(world: tuple[Workbench, dict[str, Any]]) -> None:
    wb, ctx = world
    approver = _staff("approver")
    own = wb.service.versions.submit(SCHEME.replace("Club", "Club 3"), author=approver.name)
    assert not isinstance(own, Problem)
    result = wb.approve(approver, own.id)
    assert isinstance(result, Problem) and result.status == 403 and "four eyes" in result.detail


def test_an_adjustment_needs_a_reason_and_is_audited(world: tuple[Workbench, dict[str, Any]]) -> None:
    wb, _ = world
    support = _staff("support")
    refused = wb.adjust(support, "m1", "points", 5, "  ")
    assert isinstance(refused, Problem) and refused.code == "missing_reason"
    done = wb.adjust(support, "m1", "points", 5, "goodwill: coffee was cold")
    assert not isinstance(done, Problem)
    audit = wb.audit(_staff("auditor"), action="balance_adjusted")
    assert not isinstance(audit, Problem)
    assert [(row["actor"], row["target"]) for row in audit] == [("user:support", "m1")]
    assert "goodwill" in audit[0]["detail"]
