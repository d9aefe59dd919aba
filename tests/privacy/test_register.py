"""The erasure register: a restore from a backup older than an erasure erases the member again."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from perkflow.cli.main import app
from perkflow.service.core import Service
from perkflow.service.problems import Problem
from perkflow.storage import tables as t
from tests.databases import Clock

from .helpers import PLAINTEXTS, every_row, money, principal, ready


def test_a_restore_from_an_older_backup_erases_the_member_again(service: Service, clock: Clock, database_url: str, tmp_path: Path):
    ready(service, clock)
    runner = CliRunner(env={"PERKFLOW_DATABASE_URL": database_url, "PERKFLOW_DATA_DIR": str(tmp_path / "data")})
    backed = runner.invoke(app, ["backup", str(tmp_path / "before.bak")], prog_name="perkflow")
    assert backed.exit_code == 0, backed.output
    before = money(service)
    erased = service.subjects.erase("m1", {"reason": "erasure request"}, principal=principal("members:erase"))
    assert not isinstance(erased, Problem)
    # Only the database knows the erasure now: restore reads it before replacing the database.
    (tmp_path / "data" / "erasures.jsonl").unlink()
    service.engine.dispose()

    restored = runner.invoke(app, ["restore", str(tmp_path / "before.bak"), "--force"], prog_name="perkflow")
    assert restored.exit_code == 0, restored.output
    assert "erased 1 member again from the erasure register" in restored.output
    with service.engine.connect() as conn:
        row = conn.execute(select(t.members).where(t.members.c.external_id == erased["id"])).mappings().one()
    assert row["status"] == "erased" and row["phone_cipher"] is None
    assert money(service) == before
    dump = every_row(service)
    assert all(p not in dump for p in PLAINTEXTS[:4])
    assert service.members.find(phone="13812340000") == [] and service.members.find(phone="13912345678") == ["m2"]
    assert '"pseudonym": "' + erased["id"] in (tmp_path / "data" / "erasures.jsonl").read_text()

    listed = runner.invoke(app, ["erasures", "reapply"], prog_name="perkflow")
    assert listed.exit_code == 0 and "erased 0 members again" in listed.output  # already done: a no-op


def test_members_commands_mask_reveal_and_erase_with_a_reason(service: Service, clock: Clock, database_url: str, tmp_path: Path):
    ready(service, clock, purchases=1)
    runner = CliRunner(env={"PERKFLOW_DATABASE_URL": database_url, "PERKFLOW_DATA_DIR": str(tmp_path / "data")})

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args), prog_name="perkflow")
        return result.exit_code, result.output

    code, out = run("members", "profile", "m1")
    assert code == 0 and '"phone": "138****0000"' in out
    code, out = run("members", "reveal", "m1", "--field", "email", "--reason", "member called")
    assert code == 0 and '"email": "alice.wang@example.com"' in out
    code, out = run("members", "personal-data")
    assert code == 0 and "m2,139****5678,b***@example.org,B*****,****-12-01" in out
    code, out = run("members", "personal-data", "--full")
    assert code == 1 and "missing_reason" in out
    code, out = run("members", "erase", "m1", "--reason", "erasure request")
    assert code == 0 and "erased member m1: its ledger is kept under erased-" in out
