"""Running a deployment with `perkflow`: each test is what an operator types, on a real database
(SQLite always, PostgreSQL when PERKFLOW_TEST_POSTGRES_URL is set), and what it prints."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from typer.testing import CliRunner, Result

from perkflow.cli.main import app
from perkflow.service.access import PRINCIPAL_TTL
from perkflow.service.core import Service, open_service
from perkflow.service.problems import Problem
from perkflow.storage import backup as backups
from perkflow.storage import migrate
from perkflow.storage import tables as t
from perkflow.storage.db import open_engine
from tests.databases import fresh_url

REPO = Path(__file__).resolve().parents[2]
COFFEE = REPO / "examples" / "coffee" / "scheme.yaml"
COFFEE_EVENTS = REPO / "examples" / "coffee" / "events.jsonl"
HEAD = migrate.head()

Perkflow = Callable[..., Result]


@pytest.fixture
def perkflow(database_url: str, tmp_path: Path) -> Perkflow:
    """`perkflow ...` with PERKFLOW_DATABASE_URL and PERKFLOW_DATA_DIR set, as on a server."""
    runner = CliRunner(
        env={"PERKFLOW_DATABASE_URL": database_url, "PERKFLOW_DATA_DIR": str(tmp_path / "data")}
    )

    def run(*args: object, input: str | None = None) -> Result:
        return runner.invoke(app, [str(a) for a in args], input=input, prog_name="perkflow")

    return run


@pytest.fixture
def upgraded(perkflow: Perkflow) -> Perkflow:
    result = perkflow("db", "upgrade")
    assert result.exit_code == 0, result.output
    return perkflow


@pytest.fixture
def svc(database_url: str, tmp_path: Path, upgraded: Perkflow) -> Iterator[Service]:
    """The service on the same database, to check what the commands did."""
    svc = open_service(database_url, tmp_path / "data", upgrade=False)
    yield svc
    svc.engine.dispose()


def published(perkflow: Perkflow, scheme: Path = COFFEE) -> None:
    submitted = perkflow("publish", scheme, "--author", "alice")
    assert submitted.exit_code == 0, submitted.output
    version_id = submitted.stdout.split("id:")[1].split(",")[0]
    approved = perkflow("approve", f"id:{version_id}", "--approver", "bob")
    assert approved.exit_code == 0, approved.output


def events_file(tmp_path: Path, lines: int = 120) -> Path:
    """The first events of the coffee example: signups, purchases, a few refusals."""
    path = tmp_path / "events.jsonl"
    with COFFEE_EVENTS.open(encoding="utf-8") as source:
        path.write_text(
            "".join(line for _, line in zip(range(lines), source, strict=False)), encoding="utf-8"
        )
    return path


# --- db ------------------------------------------------------------------------------------------


def test_db_upgrade_creates_the_tables_and_status_then_says_up_to_date(perkflow: Perkflow) -> None:
    before = perkflow("db", "status")
    assert before.exit_code == 1

    upgraded = perkflow("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.stdout.startswith("upgraded ") and upgraded.stdout.rstrip().endswith(
        f"from (empty) to {HEAD}"
    )

    again = perkflow("db", "upgrade")
    assert again.stdout == f"already at the newest migration {HEAD}\n"
    status = perkflow("db", "status", "--json")
    assert status.exit_code == 0
    assert json.loads(status.stdout) == {"current": HEAD, "head": HEAD, "pending": [], "known": True}


def test_commands_on_a_database_without_tables_say_to_upgrade_first(
    perkflow: Perkflow, database_url: str
) -> None:
    if database_url.startswith("sqlite"):
        create_engine(database_url).connect().close()  # the file exists, empty
    result = perkflow("keys", "create", "pos", "--scope", "events:write")
    assert result.exit_code == 1
    assert "run `perkflow db upgrade` first" in result.stderr
    assert result.stdout == ""


# --- keys and users ------------------------------------------------------------------------------


def test_keys_create_prints_a_token_once_that_the_service_accepts(
    upgraded: Perkflow, svc: Service, database_url: str, tmp_path: Path
) -> None:
    result = upgraded(
        "keys",
        "create",
        "pos-shanghai",
        "--scope",
        "events:write",
        "--scope",
        "members:read",
        "--store",
        "S1",
    )
    assert result.exit_code == 0, result.output
    key_id = result.stdout.split("key id: ")[1].split()[0]
    token = result.stdout.split("token: ")[1].split()[0]
    assert token.startswith(f"{key_id}.")
    assert "shown once" in result.stderr

    principal = svc.access.authenticate(token)
    assert principal is not None
    assert principal.name == f"key:{key_id}"
    assert principal.scopes == {"events:write", "members:read"}
    assert principal.stores == {"S1"}

    revoked = upgraded("keys", "revoke", key_id)
    assert (revoked.exit_code, revoked.stdout) == (0, f"revoked {key_id}\n")
    # Revoked by another process: a service that has not just seen the key refuses it at once,
    # one that authenticated it refuses it once its memory of the key (PRINCIPAL_TTL) has passed.
    fresh = open_service(database_url, tmp_path / "fresh", upgrade=False)
    try:
        assert fresh.access.authenticate(token) is None
    finally:
        fresh.engine.dispose()
    later = svc.clock() + PRINCIPAL_TTL
    svc.access.clock = lambda: later
    assert svc.access.authenticate(token) is None
    again = upgraded("keys", "revoke", key_id)
    assert again.exit_code == 1 and "already revoked" in again.stderr


def test_keys_create_refuses_an_unknown_scope(upgraded: Perkflow) -> None:
    result = upgraded("keys", "create", "pos", "--scope", "events:everything")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: unknown scope [unknown_scope]")
    assert result.stdout == ""


def test_users_create_generate_prints_a_one_time_password_that_signs_in(
    upgraded: Perkflow, svc: Service
) -> None:
    result = upgraded("users", "create", "alice", "--role", "admin", "--generate")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("created user alice with role admin\n")
    password = result.stdout.split("one-time password: ")[1].strip()
    assert len(password) >= 12
    assert svc.access.check_password("alice", password)
    with svc.engine.connect() as conn:
        row = conn.execute(select(t.users).where(t.users.c.username == "alice")).one()
    assert row.roles == ["admin"] and row.must_change_password


def test_users_create_asks_for_the_password_twice_or_reads_stdin(upgraded: Perkflow, svc: Service) -> None:
    asked = upgraded(
        "users", "create", "bob", "--role", "approver", input="correct horse battery\ncorrect horse battery\n"
    )
    assert asked.exit_code == 0, asked.output
    assert "correct horse" not in asked.stdout  # not echoed
    assert svc.access.check_password("bob", "correct horse battery")

    piped = upgraded(
        "users", "create", "carol", "--role", "finance", "--password-stdin", input="staple battery horse\n"
    )
    assert piped.exit_code == 0, piped.output
    assert svc.access.check_password("carol", "staple battery horse")

    short = upgraded("users", "create", "dave", "--role", "admin", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "[weak_password]" in short.stderr
    taken = upgraded("users", "create", "bob", "--role", "admin", "--generate")
    assert taken.exit_code == 1 and "'bob' is taken" in taken.stderr


# --- versions ------------------------------------------------------------------------------------


def test_publish_waits_for_someone_else_then_versions_lists_it(upgraded: Perkflow) -> None:
    submitted = upgraded("publish", COFFEE, "--author", "alice", "--comment", "first terms")
    assert submitted.exit_code == 0, submitted.output
    assert submitted.stdout.startswith(
        "submitted as id:1, waiting for approval by someone else\nhash: sha256-v1:"
    )

    own = upgraded("approve", "id:1", "--approver", "alice")
    assert own.exit_code == 1
    assert "four eyes" in own.stderr

    approved = upgraded("approve", "id:1", "--approver", "bob")
    assert approved.exit_code == 0, approved.output
    assert approved.stdout.startswith("published as version 1\n")
    twice = upgraded("approve", "1", "--approver", "carol")
    assert twice.exit_code == 1 and "[not_submitted]" in twice.stderr

    listed = upgraded("versions")
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert lines[2].split("|")[1:9] == [
        " number ",
        " id   ",
        " status    ",
        " hash         ",
        " author ",
        " approver ",
        " when                      ",
        " comment     ",
    ]
    row = [cell.strip() for cell in lines[4].split("|")[1:9]]
    assert row[:6] == ["1", "id:1", "published", row[3], "alice", "bob"] and len(row[3]) == 12
    assert row[7] == "first terms"

    [version] = json.loads(upgraded("versions", "--json").stdout)
    assert (version["number"], version["status"], version["author"], version["approver"]) == (
        1,
        "published",
        "alice",
        "bob",
    )
    assert version["hash"].split(":")[1].startswith(row[3])


def test_publish_reports_scheme_errors_and_stores_nothing(upgraded: Perkflow, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        COFFEE.read_text(encoding="utf-8").replace("balance: points", "balance: pionts", 1), encoding="utf-8"
    )
    result = upgraded("publish", broken)
    assert result.exit_code == 1
    assert f"{broken}:" in result.stderr and "nothing was submitted" in result.stderr
    assert upgraded("versions", "--json").stdout.strip() == "[]"


def _richer(tmp_path: Path) -> Path:
    path = tmp_path / "v2.yaml"
    text = COFFEE.read_text(encoding="utf-8").replace(
        "benefits: {points_multiplier: 1.5}", "benefits: {points_multiplier: 2}"
    )
    assert text != COFFEE.read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    return path


def test_diff_compares_stored_versions_and_files(upgraded: Perkflow, tmp_path: Path) -> None:
    published(upgraded)
    published(upgraded, _richer(tmp_path))

    result = upgraded("diff", "v:1", "v:2")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("--- v:1 (sha256-v1:")
    assert "+++ v:2 (sha256-v1:" in result.stdout
    assert 'benefits.points_multiplier: 1.5 -> 2' in result.stdout

    [first, second] = json.loads(upgraded("versions", "--json").stdout)
    by_hash = upgraded("diff", first["hash"], "id:2", "--json")
    assert by_hash.exit_code == 0, by_hash.output
    assert json.loads(by_hash.stdout) == json.loads(
        upgraded("diff", COFFEE, _richer(tmp_path), "--json").stdout
    )
    assert upgraded("diff", "v:2", _richer(tmp_path)).stdout.endswith("no differences\n")

    missing = upgraded("diff", "v:1", "v:9")
    assert missing.exit_code == 1
    assert "no stored version 'v:9'" in missing.stderr


def test_rollback_submits_the_old_content_again_through_four_eyes(upgraded: Perkflow, tmp_path: Path) -> None:
    published(upgraded)
    published(upgraded, _richer(tmp_path))
    result = upgraded("rollback", "1", "--author", "alice")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("submitted as id:3, waiting for approval by someone else")
    assert upgraded("approve", "id:3", "--approver", "bob").stdout.startswith("published as version 3")
    versions = json.loads(upgraded("versions", "--json").stdout)
    assert versions[2]["hash"] == versions[0]["hash"]
    assert versions[2]["comment"] == "roll back to version 1"
    assert upgraded("rollback", "7").exit_code == 1


# --- import and export ---------------------------------------------------------------------------


def _export(perkflow: Perkflow, *args: str) -> list[dict[str, Any]]:
    result = perkflow("export", *args, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_import_twice_applies_nothing_new_and_ends_where_simulate_does(
    upgraded: Perkflow, tmp_path: Path
) -> None:
    published(upgraded)
    events = events_file(tmp_path)
    simulated = upgraded("simulate", COFFEE, events, "--json")
    assert simulated.exit_code == 0, simulated.output
    report = json.loads(simulated.stdout)
    refused_codes = Counter(r["code"] for r in report["rejections"])

    first = upgraded("import", events, "--json", "--batch-size", "7")
    counts = json.loads(first.stdout)
    assert counts["applied"] == report["events"]["applied"] > 100
    assert counts["already_applied"] == 0
    assert counts["refused_by_code"] == dict(refused_codes)
    assert first.exit_code == (1 if refused_codes else 0)

    second = upgraded("import", events)
    assert second.stdout, second.output
    refused = sum(refused_codes.values())
    assert (
        second.stdout.splitlines()[0]
        == f"{events}: 0 applied, {counts['applied']} already there, {refused} refused"
    )

    members = {m["external_id"]: m for m in _export(upgraded, "members")}
    assert set(members) == set(report["members"])
    for member_id, simulated_member in report["members"].items():
        held = {b: n for b, n in members[member_id]["balances"].items() if n}
        assert held == simulated_member["balances"], member_id
        assert members[member_id]["tier"] == simulated_member["tier"], member_id
    ledger = _export(upgraded, "ledger")
    issued = sum(row["amount"] for row in ledger if row["balance"] == "points" and row["amount"] > 0)
    assert issued == report["totals"]["balances"]["points"]["issued"]


def test_refused_events_go_to_the_rejects_file_with_their_problem(upgraded: Perkflow, tmp_path: Path) -> None:
    published(upgraded)
    events = tmp_path / "few.jsonl"
    signup = {
        "id": "t-1",
        "type": "signup",
        "member_id": "m1",
        "occurred_at": "2026-03-01T10:00:00+08:00",
        "store": "S1",
    }
    stranger = {
        **signup,
        "id": "t-2",
        "type": "purchase",
        "member_id": "ghost",
        "attributes": {"amount": 1000},
    }
    events.write_text(
        json.dumps(signup) + "\n\n" + json.dumps(stranger) + "\n" + "{not json\n", encoding="utf-8"
    )
    rejects = tmp_path / "rejects.jsonl"

    result = upgraded("import", events, "--rejects", rejects)
    assert result.exit_code == 1
    assert (
        result.stdout
        == f"{events}: 1 applied, 0 already there, 2 refused\n  invalid_json: 1\n  unknown_member: 1\n"
    )
    assert f"2 event(s) refused: see {rejects}" in result.stderr
    lines = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["problem"]["code"]) for r in lines] == [(3, "unknown_member"), (4, "invalid_json")]
    assert lines[0]["event"] == stranger
    assert lines[0]["problem"]["errors"][0]["pointer"] == "/member_id"

    reused = tmp_path / "reused.jsonl"
    reused.write_text(json.dumps({**signup, "store": "S2"}) + "\n", encoding="utf-8")
    conflict = upgraded("import", reused)
    assert conflict.exit_code == 1
    assert "event_id_reused: 1" in conflict.stdout


def test_import_of_a_missing_file_is_an_error(upgraded: Perkflow, tmp_path: Path) -> None:
    result = upgraded("import", tmp_path / "nope.jsonl")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no such file: ")


def test_export_members_csv_has_balances_and_no_personal_data(
    upgraded: Perkflow, svc: Service, tmp_path: Path
) -> None:
    published(upgraded)
    assert not isinstance(
        svc.members.put(
            "m1",
            {"phone": "13800000000", "email": "m1@example.com", "name": "Wang Fang", "home_store": "S1"},
            actor="test",
        ),
        Problem,
    )
    purchase = {
        "id": "p-1",
        "type": "purchase",
        "member_id": "m1",
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "store": "S1",
        "channel": "pos",
        "attributes": {"amount": 3500},
    }
    assert not isinstance(svc.events.post(purchase), Problem)

    output = tmp_path / "members.csv"
    result = upgraded("export", "members", "--output", output)
    assert result.exit_code == 0, result.output
    assert result.stderr == f"exported 1 member to {output}\n"
    text = output.read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == [
        "external_id",
        "status",
        "home_store",
        "tier",
        "joined_at",
        "balance.growth",
        "balance.points",
    ]
    assert rows == [
        {
            **rows[0],
            "external_id": "m1",
            "status": "active",
            "home_store": "S1",
            "tier": "member",
            "balance.points": "35",
            "balance.growth": "35",
        }
    ]
    for secret in ("13800000000", "+8613800000000", "m1@example.com", "Wang Fang", "phone", "email", "name"):
        assert secret not in text.replace("external_id", "")

    ledger = upgraded("export", "ledger")
    assert ledger.exit_code == 0
    ledger_rows = list(csv.DictReader(io.StringIO(ledger.stdout)))
    assert sorted((r["event_id"], r["balance"], r["kind"], r["amount"]) for r in ledger_rows) == [
        ("p-1", "growth", "earn", "35"),
        ("p-1", "points", "earn", "35"),
    ]
    assert json.loads(ledger_rows[0]["lots"])[0][1] == 35


# --- backup and restore --------------------------------------------------------------------------


def _tables(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order: what must survive a backup."""
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            dump = {
                table.name: [
                    tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key.columns))
                ]
                for table in t.metadata.sorted_tables
            }
            dump["alembic_version"] = [
                tuple(r) for r in conn.execute(text("SELECT version_num FROM alembic_version"))
            ]
    finally:
        engine.dispose()
    return dump


def _busy(perkflow: Perkflow, tmp_path: Path) -> None:
    published(perkflow)
    assert perkflow("import", events_file(tmp_path, 40)).exit_code in (0, 1)
    assert perkflow("keys", "create", "pos", "--scope", "events:write").exit_code == 0


def test_backup_then_restore_into_a_fresh_database_gives_identical_tables(
    upgraded: Perkflow, database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("sqlite") and shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    _busy(upgraded, tmp_path)
    before = _tables(database_url)
    assert before["ledger"] and before["scheme_versions"] and before["audit_log"]
    file = tmp_path / "perkflow.backup"

    made = upgraded("backup", file)
    assert made.exit_code == 0, made.output
    assert made.stdout.startswith("backed up ") and f"(migration {HEAD}) to {file}" in made.stdout

    if database_url.startswith("sqlite"):
        target = f"sqlite:///{tmp_path / 'restored' / 'perkflow.sqlite'}"
    else:
        target = fresh_url("postgresql", tmp_path)  # the same test database, emptied
    restored = upgraded("restore", file, "--database-url", target)
    assert restored.exit_code == 0, restored.output
    assert restored.stdout.startswith(f"restored {file} (migration {HEAD}) into ")
    assert _tables(target) == before


def test_restore_refuses_a_database_with_data_unless_forced(
    upgraded: Perkflow, database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("sqlite") and shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    published(upgraded)
    file = tmp_path / "one-version.backup"
    assert upgraded("backup", file).exit_code == 0
    before = _tables(database_url)
    published(upgraded, _richer(tmp_path))

    refused = upgraded("restore", file)
    assert refused.exit_code == 1
    assert "the database is not empty" in refused.stderr and "--force" in refused.stderr
    assert len(_tables(database_url)["scheme_versions"]) == 2

    forced = upgraded("restore", file, "--force")
    assert forced.exit_code == 0, forced.output
    assert _tables(database_url) == before


def test_backup_of_a_database_without_tables_or_file_is_an_error(perkflow: Perkflow, tmp_path: Path) -> None:
    result = perkflow("backup", tmp_path / "x.backup")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert not (tmp_path / "x.backup").exists()
    nothing = perkflow("restore", tmp_path / "missing.backup")
    assert nothing.exit_code == 1 and "no backup file" in nothing.stderr


def test_a_missing_pg_dump_is_named_with_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backups.shutil, "which", lambda name: None)
    monkeypatch.setattr(backups.Path, "glob", lambda self, pattern: iter(()))
    with pytest.raises(
        backups.BackupError, match="pg_dump is not installed: install the PostgreSQL client tools"
    ):
        backups.pg_tool("pg_dump", 15)


GOLD = """\
perkflow: 1
id: tiny-tea
name: Tiny Tea
balances:
  points: {}
tiers:
  metric: {balance: points}
  levels:
    - {id: member, name: Member, threshold: 0, benefits: {multiplier: 1}}
    - {id: gold, name: Gold, threshold: 100, benefits: {multiplier: 1.5}}
governance: {require_approval: false}
rules:
  - id: earn
    on: purchase
    then:
      - award: {balance: points, amount: "event.amount / 100 * tier.multiplier"}
"""


def test_a_fractional_tier_benefit_earns_the_same_after_import_as_in_simulate(
    upgraded: Perkflow, tmp_path: Path
) -> None:
    scheme = tmp_path / "gold.yaml"
    scheme.write_text(GOLD, encoding="utf-8")
    assert upgraded("publish", scheme).stdout.startswith("published as version 1")
    signup = {"id": "g-1", "type": "signup", "member_id": "m1", "occurred_at": "2026-03-01T10:00:00+08:00"}
    events = tmp_path / "gold.jsonl"
    events.write_text(
        "".join(
            json.dumps(e) + "\n"
            for e in [
                signup,
                {
                    **signup,
                    "id": "g-2",
                    "type": "purchase",
                    "attributes": {"amount": 20000},
                },  # 200: reaches gold
                {**signup, "id": "g-3", "type": "purchase", "attributes": {"amount": 1000}},  # 10 x 1.5
            ]
        ),
        encoding="utf-8",
    )
    simulated = json.loads(upgraded("simulate", scheme, events, "--json").stdout)
    assert simulated["members"]["m1"]["balances"] == {"points": 215}
    assert upgraded("import", events).exit_code == 0
    [member] = _export(upgraded, "members")
    assert member["balances"] == {"points": 215}


SHOP = REPO / "examples" / "shop"


def test_the_shop_example_imported_and_ticked_ends_in_its_expected_state(upgraded: Perkflow, svc: Service) -> None:
    """Pending growth, tier terms and welcome codes, through `perkflow import` and `perkflow tick`
    on a real database: the same balances, tiers, term ends and codes as expected.json."""
    expected = json.loads((SHOP / "expected.json").read_text(encoding="utf-8"))
    published(upgraded, SHOP / "scheme.yaml")
    upgraded("import", SHOP / "events.jsonl", "--json")
    ticked = upgraded("tick", "--until", expected["as_of"])
    assert ticked.exit_code == 0, ticked.output
    for member_id, want in expected["members"].items():
        got = svc.members.get(member_id)
        assert isinstance(got, dict), member_id
        assert {b: n for b, n in got["balances"].items() if n} == want["balances"], member_id
        assert (got["tier"], got.get("tier_review_at")) == (want["tier"], want.get("tier_review_at")), member_id
        assert [c.get("code") for c in got["coupons"]] == [c.get("code") for c in want["coupons"]], member_id


def test_import_opening_reports_each_refused_member_by_line_and_a_second_run_imports_nothing_new(upgraded: Perkflow, svc: Service) -> None:
    published(upgraded, SHOP / "scheme.yaml")
    opening = SHOP / "opening.jsonl"
    first = upgraded("import-opening", opening, "--json")
    assert first.exit_code == 1, first.output
    report = json.loads(first.stdout)
    assert (report["accepted"], report["already_there"]) == (2, 0)
    assert [(r["line"], r["code"]) for r in report["refused"]] == [(3, "lot_expired"), (4, "unknown_tier")]
    second = upgraded("import-opening", opening)
    assert second.stdout.splitlines()[0] == f"{opening}: 0 imported, 2 already there, 2 refused"
    assert f"{opening}:3: nv-80003:" in second.stdout and "[lot_expired] at /lots/0/expires_at" in second.stdout
    ledger = [row for row in _export(upgraded, "ledger") if row["event_id"] == "opening:nv-80002"]
    assert [(row["kind"], row["balance"], row["amount"]) for row in ledger] == [("opening", "points", 5200), ("opening", "growth", 2600)]
