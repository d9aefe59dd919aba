"""Tamper evidence: `perkflow audit verify` and `perkflow replay --verify` on a real database
(SQLite always, PostgreSQL when PERKFLOW_TEST_POSTGRES_URL is set). Each test edits the tables
directly, as someone with database access would, and checks that the command names what changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, insert, select, update

from perkflow.service.audit import _digest
from perkflow.storage import tables as t
from perkflow.storage.db import open_engine
from tests.cli import test_ops
from tests.cli.test_ops import Perkflow, events_file, published

perkflow, upgraded = test_ops.perkflow, test_ops.upgraded  # the fixtures of test_ops


@pytest.fixture
def history(upgraded: Perkflow, tmp_path: Path) -> Perkflow:
    """The coffee scheme published, its first 300 events imported, what fell due since applied,
    and a few keys made and revoked: audit rows and a ledger to tamper with."""
    published(upgraded)
    imported = upgraded("import", events_file(tmp_path, 300))
    assert imported.exit_code in (0, 1), imported.output  # the example holds a few refusals
    assert upgraded("tick", "--until", "2026-06-01T00:00:00+00:00").exit_code == 0
    for name in ("pos", "app", "report"):
        made = upgraded("keys", "create", name, "--scope", "events:write")
        assert made.exit_code == 0, made.output
    key_id = made.stdout.split("key id: ")[1].split()[0]
    assert upgraded("keys", "revoke", key_id).exit_code == 0
    return upgraded


@pytest.fixture
def db(database_url: str, history: Perkflow) -> Engine:
    engine = open_engine(database_url)
    yield engine
    engine.dispose()


def _verify(run: Perkflow) -> dict:
    result = run("audit", "verify", "--json")
    assert result.exit_code == (0 if json.loads(result.stdout)["intact"] else 1), result.output
    return json.loads(result.stdout)


def test_an_untouched_database_verifies_clean(history: Perkflow) -> None:
    audit = history("audit", "verify")
    assert audit.exit_code == 0, audit.output
    assert audit.stdout.startswith("the audit log is intact: 6 rows, the last is row 6 with hash sha256-v1:")
    replay = history("replay", "--verify", "--json")
    assert replay.exit_code == 0, replay.output
    report = json.loads(replay.stdout)
    assert report["clean"] and report["mismatches"] == [] and report["budgets"] == []
    assert report["members"] > 20 and report["events"] > 250


def test_audit_verify_names_an_altered_row(history: Perkflow, db: Engine) -> None:
    with db.begin() as conn:
        conn.execute(update(t.audit_log).where(t.audit_log.c.id == 4).values(actor="cli:someone-else"))
    result = history("audit", "verify")
    assert result.exit_code == 1
    assert "at row 4: row 4 was altered" in result.stderr
    assert _verify(history)["broken"] == {"row_id": 4, "kind": "altered", "message": "row 4 was altered: its hash does not cover its content"}


def test_audit_verify_names_a_removed_row(history: Perkflow, db: Engine) -> None:
    with db.begin() as conn:
        conn.execute(delete(t.audit_log).where(t.audit_log.c.id == 3))
    broken = _verify(history)["broken"]
    assert (broken["row_id"], broken["kind"]) == (3, "removed")
    assert broken["message"] == "row 3 removed: row 4 links to a row that is gone"


def test_audit_verify_names_an_inserted_row_even_with_its_hashes_recomputed(history: Perkflow, db: Engine) -> None:
    # Ids are not hashed; a gap (PostgreSQL's sequences leave them) is where a row can be slipped in.
    with db.begin() as conn:
        for row_id in (6, 5, 4, 3):
            conn.execute(update(t.audit_log).where(t.audit_log.c.id == row_id).values(id=row_id + 10))
    assert _verify(history)["intact"]
    with db.begin() as conn:
        prev = conn.execute(select(t.audit_log.c.hash).where(t.audit_log.c.id == 2)).scalar_one()
        at = datetime(2026, 11, 20, 12, tzinfo=UTC)
        forged = {"at": at, "actor": "cli:root", "action": "balance_adjusted", "target": "bc-10044", "detail": {"amount": 5000}}
        conn.execute(insert(t.audit_log).values(id=3, prev_hash=prev, hash=_digest(prev, *forged.values()), **forged))
    broken = _verify(history)["broken"]
    assert (broken["row_id"], broken["kind"]) == (3, "inserted")
    assert broken["message"] == "row 3 was inserted: row 13 links past it"


def _member_with_points(db: Engine) -> tuple[int, str]:
    with db.connect() as conn:
        row = conn.execute(
            select(t.members.c.id, t.members.c.external_id)
            .join(t.member_balances, t.member_balances.c.member_id == t.members.c.id)
            .where(t.member_balances.c.total > 0)
            .order_by(t.members.c.external_id)
            .limit(1)
        ).one()
    return row.id, row.external_id


def test_replay_verify_names_the_member_whose_ledger_amount_was_edited(history: Perkflow, db: Engine) -> None:
    pk, member = _member_with_points(db)
    with db.begin() as conn:
        entry = conn.execute(select(t.ledger).where(t.ledger.c.member_id == pk, t.ledger.c.kind == "earn").limit(1)).one()
        conn.execute(update(t.ledger).where(t.ledger.c.id == entry.id).values(amount=entry.amount + 100))
    result = history("replay", "--verify")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == f"member {member}:"
    assert (
        f"  ledger: event {entry.event_id} has a earn of {entry.amount + 100} {entry.balance} that the replay does not make"
        in result.stdout.splitlines()
    )
    assert "1 differ" in result.stderr
    assert [m["member_id"] for m in json.loads(history("replay", "--verify", "--json").stdout)["mismatches"]] == [member]


def test_replay_verify_names_the_member_whose_lot_was_edited(history: Perkflow, db: Engine) -> None:
    pk, member = _member_with_points(db)
    with db.begin() as conn:
        lot = conn.execute(select(t.lots).where(t.lots.c.member_id == pk, t.lots.c.amount > 0).limit(1)).one()
        conn.execute(update(t.lots).where(t.lots.c.id == lot.id).values(amount=lot.amount * 10))
    report = json.loads(history("replay", "--verify", "--json").stdout)
    assert [m["member_id"] for m in report["mismatches"]] == [member]
    assert any(d.startswith(f"lot {lot.id}: database {lot.amount * 10} {lot.balance}") for d in report["mismatches"][0]["differences"])


def test_replay_verify_names_a_member_whose_tier_was_raised(history: Perkflow, db: Engine) -> None:
    pk, member = _member_with_points(db)
    with db.begin() as conn:
        conn.execute(update(t.members).where(t.members.c.id == pk).values(tier="forged"))
    report = json.loads(history("replay", "--verify", "--json").stdout)
    assert report["mismatches"][0]["member_id"] == member
    assert report["mismatches"][0]["differences"][0].startswith("tier: database forged, replay ")


def test_replay_without_verify_is_a_usage_error(history: Perkflow) -> None:
    result = history("replay")
    assert result.exit_code == 2 and "--verify" in result.stderr


def test_replay_verify_names_a_member_without_events_who_was_given_points(history: Perkflow, db: Engine) -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    with db.begin() as conn:
        pk = conn.execute(
            insert(t.members).values(
                external_id="walk-in", home_store="S1", joined_at=at, tags=[], attributes={}, counters={}, caps={},
                rewards={}, created_at=at, updated_at=at,
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(t.lots).values(
                id="walk-in#forged", member_id=pk, balance="points", amount=900, original=900, earned_at=at, source_event="none"
            )
        )
    report = json.loads(history("replay", "--verify", "--json").stdout)
    assert report["mismatches"] == [
        {"member_id": "walk-in", "differences": ["lot walk-in#forged: database 900 points, replay none"]}
    ]
