"""期初导入: members from another system open with their lots, tier and coupons, from JSON Lines or
CSV, once however often the file is imported; a refused member leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from perkflow.service.core import Service
from perkflow.service.opening import import_opening, read_csv, read_jsonl
from perkflow.storage import tables as t

from ..databases import Clock, publish

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"


def _import(service: Service, text: str, csv: bool = False) -> dict:
    return import_opening(service, read_csv(text) if csv else read_jsonl(text), actor="cli:ops").to_dict()


def test_the_shop_opening_file_imports_two_members_refuses_two_by_line_and_a_second_run_changes_nothing(service: Service, clock: Clock):
    publish(service, str(SHOP / "scheme.yaml"))
    clock.set("2026-07-01T09:00:00+08:00")
    text = (SHOP / "opening.jsonl").read_text(encoding="utf-8")
    first = _import(service, text)
    assert first["accepted"] == 2 and first["already_there"] == 0
    assert [(r["line"], r["member_id"], r["code"], r["pointer"]) for r in first["refused"]] == [
        (3, "nv-80003", "lot_expired", "/lots/0/expires_at"),
        (4, "nv-80004", "unknown_tier", "/tier"),
    ]
    lei = service.members.get("nv-80001")
    assert isinstance(lei, dict)
    assert lei["balances"] == {"points": 1720, "growth": 1300}
    assert [(lot["amount"], lot["expires_at"]) for lot in lei["lots"]["points"]] == [
        (420, "2026-09-02T00:00:00+08:00"), (1300, "2027-05-11T00:00:00+08:00"),
    ]
    # the tier's 3-month term counts from the day it was reached in the old system
    assert (lei["tier"], lei["tier_since"], lei["tier_review_at"]) == ("silver", "2026-05-10T15:20:00+08:00", "2026-08-10T00:00:00+08:00")
    assert [(c["policy"], c["code"], c["status"]) for c in lei["coupons"]] == [("welcome-30", "OLDSHOP-7731", "active")]
    with service.engine.connect() as conn:
        kinds = conn.execute(select(t.ledger.c.kind, t.ledger.c.amount).where(t.ledger.c.event_id == "opening:nv-80001").order_by(t.ledger.c.id)).all()
        refused_rows = conn.execute(select(t.members.c.external_id).where(t.members.c.external_id.in_(["nv-80003", "nv-80004"]))).all()
        phones = conn.execute(select(t.members.c.phone_cipher).where(t.members.c.external_id == "nv-80001")).scalar()
        audit = conn.execute(select(t.audit_log.c.action).where(t.audit_log.c.action == "opening_imported")).all()
    assert [tuple(k) for k in kinds] == [("opening", 420), ("opening", 1300), ("opening", 1300)]
    assert refused_rows == []  # nothing partial for a refused member
    assert phones is not None and b"13800000001" not in phones  # personal data only encrypted
    assert len(audit) == 2
    # gold reached on 2 April: its term ended on 2 July, a review keeps it (2,600 growth, 2,000 needed)
    clock.set("2026-07-02T09:00:00+08:00")
    service.scheduler.tick()
    han = service.members.get("nv-80002")
    assert isinstance(han, dict) and (han["tier"], han["tier_review_at"]) == ("gold", "2026-10-02T00:00:00+08:00")
    again = _import(service, text)
    assert (again["accepted"], again["already_there"], len(again["refused"])) == (0, 2, 2)


def test_a_csv_file_groups_each_members_rows_and_stored_value_keeps_its_parts(service: Service, clock: Clock):
    publish(service, str(SHOP.parent / "salon" / "scheme.yaml"))
    clock.set("2026-07-01T09:00:00+08:00")
    text = (
        "member_id,record,as_of,phone,balance,part,amount,earned_at,expires_at\n"
        "s-1,member,2026-07-01T00:00:00+08:00,13900000001,,,,,\n"
        "s-1,lot,,,wallet,principal,50000,2026-03-01T10:00:00+08:00,\n"
        "s-1,lot,,,wallet,bonus,8000,2026-03-01T10:00:00+08:00,\n"
        "s-2,member,2026-07-01T00:00:00+08:00,,,,,,\n"
        "s-2,lot,,,wallet,,100,2026-03-01T10:00:00+08:00,\n"
    )
    report = _import(service, text, csv=True)
    assert report["accepted"] == 1
    assert [(r["line"], r["member_id"], r["code"]) for r in report["refused"]] == [(5, "s-2", "missing_part")]
    member = service.members.get("s-1")
    assert isinstance(member, dict) and member["balances"]["wallet"] == 58000
    assert sorted((lot["part"], lot["amount"]) for lot in member["lots"]["wallet"]) == [("bonus", 8000), ("principal", 50000)]


def test_a_member_who_already_has_events_is_not_opened(service: Service, clock: Clock):
    publish(service, str(SHOP / "scheme.yaml"))
    clock.set("2026-07-01T09:00:00+08:00")
    service.events.post({"id": "s1", "type": "signup", "member_id": "nv-80001", "occurred_at": "2026-06-30T10:00:00+08:00"})
    report = _import(service, (SHOP / "opening.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert [(r["member_id"], r["code"]) for r in report["refused"]] == [("nv-80001", "member_has_history")]
