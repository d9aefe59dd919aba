"""Masking by role, the audited reveal, the subject export and erasure under a pseudonym."""

from __future__ import annotations

import json

from sqlalchemy import select

from perkflow.service.core import Service
from perkflow.service.masking import (
    ERASE,
    EXPORT_FULL,
    REVEAL,
    mask_birthday,
    mask_email,
    mask_name,
    mask_phone,
    role_scopes,
)
from perkflow.service.problems import Problem
from perkflow.service.webhooks import Webhooks, parse_allow
from perkflow.storage import tables as t
from tests.databases import Clock

from .helpers import PEOPLE, PLAINTEXTS, every_row, money, principal, ready


def test_masks_show_the_shape_and_hide_the_value():
    assert mask_phone("+8613800000000") == "138****0000"
    assert mask_phone("+447700900123") == "+44 770***0123"
    assert mask_email("alice@example.com") == "a***@example.com"
    assert mask_name("王爱丽") == "王**"
    assert mask_birthday("1990-05-17") == "****-05-17"


def test_support_and_store_managers_may_reveal_auditors_only_see_masked_data():
    assert role_scopes(["support"]) == role_scopes(["store_manager"]) == {REVEAL}
    assert role_scopes(["auditor"]) == role_scopes(["operator"]) == frozenset()
    assert role_scopes(["finance"]) == {EXPORT_FULL}
    assert role_scopes(["admin"]) == {REVEAL, ERASE, EXPORT_FULL}


def _audit(svc: Service) -> list[tuple[str, str, str, dict]]:
    with svc.engine.connect() as conn:
        return [(r.actor, r.action, r.target, r.detail) for r in conn.execute(select(t.audit_log).order_by(t.audit_log.c.id))]


def test_the_profile_is_masked_and_revealing_it_is_a_separate_audited_action(service: Service, clock: Clock):
    ready(service, clock, purchases=0)
    auditor = principal()
    assert service.subjects.profile("m1", principal=auditor) == {
        "id": "m1", "status": "active", "masked": True, "phone": "138****0000", "email": "a***@example.com",
        "name": "王**", "birthday": "****-05-17",
    }
    refused = service.subjects.reveal("m1", {"fields": ["phone"], "reason": "call back"}, principal=auditor)
    assert isinstance(refused, Problem) and refused.status == 403
    support = principal(REVEAL)
    no_reason = service.subjects.reveal("m1", {"fields": ["phone"]}, principal=support)
    assert isinstance(no_reason, Problem) and no_reason.code == "missing_reason"
    leaky = service.subjects.reveal("m1", {"fields": ["phone"], "reason": "caller said 138 1234 0000"}, principal=support)
    assert isinstance(leaky, Problem) and leaky.code == "personal_data_in_reason"
    shown = service.subjects.reveal("m1", {"fields": ["phone", "email"], "reason": "member called about a lost card"}, principal=support)
    assert shown == {"id": "m1", "masked": False, "phone": "+8613812340000", "email": "alice.wang@example.com"}
    assert _audit(service)[-1] == ("key:pk_test", "personal_data_revealed", "m1", {"fields": ["email", "phone"], "reason": "member called about a lost card"})
    other_store = principal(REVEAL, stores=frozenset({"S2"}))
    hidden = service.subjects.reveal("m1", {"reason": "member called"}, principal=other_store)
    assert isinstance(hidden, Problem) and hidden.status == 404


def test_exports_are_masked_unless_admin_or_finance_ask_in_full_with_a_reason(service: Service, clock: Clock):
    ready(service, clock, purchases=0)
    rows = service.subjects.export_members(principal=principal())
    assert not isinstance(rows, Problem)
    assert [r["phone"] for r in rows] == ["138****0000", "139****5678"]
    refused = service.subjects.export_members(principal=principal(REVEAL), full=True, reason="quarterly reconciliation")
    assert isinstance(refused, Problem) and refused.status == 403
    no_reason = service.subjects.export_members(principal=principal(EXPORT_FULL), full=True)
    assert isinstance(no_reason, Problem) and no_reason.code == "missing_reason"
    full = service.subjects.export_members(principal=principal(EXPORT_FULL), full=True, reason="migration to the new CRM")
    assert not isinstance(full, Problem)
    assert [r["email"] for r in full] == ["alice.wang@example.com", "bob.li@example.org"]
    assert _audit(service)[-1][1:] == ("personal_data_exported", "members", {"full": True, "reason": "migration to the new CRM"})


def test_a_subject_export_holds_everything_on_the_member_and_is_audited(service: Service, clock: Clock):
    ready(service, clock)
    data = service.subjects.export("m1", {"reason": "subject access request 2026-17"}, principal=principal(REVEAL))
    assert not isinstance(data, Problem)
    json.dumps(data)  # machine-readable as it is
    assert data["member"]["phone"] == "+8613812340000" and data["member"]["attributes"] == {"note": "prefers oat milk"}
    assert {b["balance"] for b in data["balances"]} >= {"points"}
    assert len(data["events"]) == 3 and all(e["body"]["member_id"] == "m1" for e in data["events"])
    assert sum(r["amount"] for r in data["ledger"] if r["balance"] == "points") == next(b["total"] for b in data["balances"] if b["balance"] == "points")
    assert _audit(service)[-1][1:] == ("member_data_exported", "m1", {"reason": "subject access request 2026-17"})


def test_after_an_erasure_no_personal_data_remains_and_every_balance_and_ledger_sum_is_unchanged(service: Service, clock: Clock):
    service.webhooks = Webhooks(service.engine, clock, allow=parse_allow("127.0.0.1"))
    assert not isinstance(service.webhooks.create({"url": "http://127.0.0.1:9/hook"}), Problem)  # nobody listens there
    ready(service, clock)
    service.webhooks.run()  # every delivery fails, and its log says why
    before = money(service)
    refused = service.subjects.erase("m1", {"reason": "member asked"}, principal=principal(REVEAL))
    assert isinstance(refused, Problem) and refused.status == 403
    done = service.subjects.erase("m1", {"reason": "erasure request by the member"}, principal=principal(ERASE))
    assert not isinstance(done, Problem)
    pseudonym = done["id"]
    assert pseudonym.startswith("erased-") and done["erased"] == "m1"

    assert money(service) == before
    dump = every_row(service)
    for person, plaintext in (("m1", p) for p in PLAINTEXTS[:4]):
        assert plaintext not in dump, (person, plaintext)
    assert "prefers oat milk" in dump  # m2's attributes stay; m1's are gone
    with service.engine.connect() as conn:
        row = conn.execute(select(t.members).where(t.members.c.external_id == pseudonym)).mappings().one()
        events = conn.execute(select(t.events.c.external_member_id, t.events.c.body).where(t.events.c.member_id == row["id"])).all()
        outbox = conn.execute(select(t.outbox.c.payload, t.outbox.c.status).where(t.outbox.c.member_id == row["id"])).all()
    assert row["status"] == "erased" and row["attributes"] == {}
    assert all(v is None for k, v in row.items() if k.endswith(("_cipher", "_index")) or k.startswith("birthday"))
    assert {e.external_member_id for e in events} == {pseudonym} and {e.body["member_id"] for e in events} == {pseudonym}
    assert outbox and all(o.payload == {"erased": True} and o.status != "pending" for o in outbox)
    # No row outside the audit log names the member's old id; the audit rows name it and hold no personal data.
    assert all("'m1'" not in line and ":m1:" not in line for line in dump.splitlines() if not line.startswith("audit_log"))
    assert _audit(service)[-1] == ("key:pk_test", "member_erased", "m1", {"pseudonym": pseudonym, "reason": "erasure request by the member"})
    # The pseudonymous member still answers with the same balances; the phone finds nobody.
    view = service.members.get(pseudonym)
    assert not isinstance(view, Problem) and view["status"] == "erased"
    assert service.members.find(phone=PEOPLE["m1"]["phone"]) == []
    assert service.members.find(phone=PEOPLE["m2"]["phone"]) == ["m2"]
    assert isinstance(service.members.put(pseudonym, {"phone": "13800000001"}, actor="test"), Problem)


def test_erasing_a_member_also_erases_the_members_merged_into_it(service: Service, clock: Clock):
    ready(service, clock, purchases=1)
    merged = service.members.merge("m1", "m2", actor="test")
    assert not isinstance(merged, Problem)
    before = money(service)
    done = service.subjects.erase("m1", {"reason": "erasure request by the member"}, principal=principal(ERASE))
    assert not isinstance(done, Problem)
    dump = every_row(service)
    assert all(p not in dump for p in PLAINTEXTS) and "prefers oat milk" not in dump
    assert money(service) == before
    assert service.members.find(phone=PEOPLE["m2"]["phone"]) == []
    with service.engine.connect() as conn:
        statuses = conn.execute(select(t.members.c.status, t.members.c.external_id)).all()
    assert [s for s, _ in statuses] == ["erased", "erased"] and all(i.startswith("erased-") for _, i in statuses)
