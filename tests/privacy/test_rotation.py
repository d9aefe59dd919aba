"""Data-key rotation: every member stays readable and findable by phone before, during and after
a rotation that is stopped halfway and resumed; key material comes only from configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from perkflow.cli.main import app
from perkflow.service import rotation
from perkflow.service.core import Service, open_service
from perkflow.service.crypto import DataKeys, load_keys, new_key, parse_keys
from perkflow.storage import tables as t

PHONES = [f"138{n:04d}{n:04d}" for n in range(23)]


def _members(svc: Service) -> None:
    for n, phone in enumerate(PHONES):
        result = svc.members.put(f"m{n}", {"phone": phone, "email": f"m{n}@example.com", "name": f"Member {n}", "birthday": "1990-05-17"}, actor="test")
        assert isinstance(result, tuple) and result[0] == 201, result


def _readable(svc: Service) -> None:
    """Every member's personal data decrypts, and every phone and email finds its member."""
    keys = svc.keys
    with svc.engine.connect() as conn:
        rows = conn.execute(select(t.members).order_by(t.members.c.id)).mappings().all()
    assert len(rows) == len(PHONES)
    for n, row in enumerate(rows):
        assert keys.decrypt(row["phone_cipher"], row["key_id"], "phone") == f"+86{PHONES[n]}"
        assert keys.decrypt(row["name_cipher"], row["key_id"], "name") == f"Member {n}"
        assert keys.decrypt(row["birthday_cipher"], row["key_id"], "birthday") == "1990-05-17"
    for n, phone in enumerate(PHONES):
        assert svc.members.find(phone=phone) == [f"m{n}"]
        assert svc.members.find(email=f"M{n}@Example.com") == [f"m{n}"]


def _key_ids(svc: Service) -> dict[str, int]:
    return {item["key_id"]: item["members"] for item in rotation.key_status(svc.engine, svc.keys)}


def test_a_rotation_stopped_halfway_and_resumed_leaves_every_member_readable_and_findable(database_url: str, tmp_path: Path):
    old, new = new_key(), new_key()
    first = open_service(database_url, tmp_path / "data", data_key=old)
    _members(first)
    old_id = first.keys.current_id
    first.engine.dispose()

    svc = open_service(database_url, tmp_path / "data", data_key=f"{new},{old}")
    new_id = svc.keys.current_id
    _readable(svc)  # configured, not yet rotated
    # A member written now, mid-rotation, stays under the key its row already has.
    assert svc.members.put("m3", {"phone": PHONES[3]}, actor="test")[0] == 200  # type: ignore[index]

    done = rotation.rotate(svc.engine, svc.keys, batch_size=5, max_batches=2)
    assert (done.rows, done.batches, done.remaining) == (10, 2, 13)
    assert _key_ids(svc) == {new_id: 10, old_id: 13}
    _readable(svc)  # halfway: rows under both keys

    resumed = rotation.rotate(svc.engine, svc.keys, batch_size=5)
    assert (resumed.rows, resumed.remaining) == (13, 0)
    assert _key_ids(svc) == {new_id: 23}
    _readable(svc)
    svc.engine.dispose()

    # The old key can now be retired: the new key alone reads and finds everyone.
    retired = open_service(database_url, tmp_path / "data", data_key=new)
    _readable(retired)
    retired.engine.dispose()


def test_a_row_under_a_key_that_is_not_configured_stops_the_rotation_naming_the_key(database_url: str, tmp_path: Path):
    lost = new_key()
    svc = open_service(database_url, tmp_path / "data", data_key=lost)
    _members(svc)
    lost_id = svc.keys.current_id
    svc.engine.dispose()
    other = open_service(database_url, tmp_path / "data", data_key=new_key())
    with pytest.raises(KeyError, match=lost_id):
        rotation.rotate(other.engine, other.keys)
    other.engine.dispose()


def test_data_key_rotate_on_the_command_line_resumes_until_nothing_remains(database_url: str, tmp_path: Path):
    old, new = new_key(), new_key()
    svc = open_service(database_url, tmp_path / "data", data_key=old)
    _members(svc)
    svc.engine.dispose()
    runner = CliRunner(env={"PERKFLOW_DATABASE_URL": database_url, "PERKFLOW_DATA_DIR": str(tmp_path / "data"), "PERKFLOW_DATA_KEY": f"{new},{old}"})

    stopped = runner.invoke(app, ["data-key", "rotate", "--batch-size", "10", "--max-batches", "1"], prog_name="perkflow")
    assert stopped.exit_code == 1
    assert "re-encrypted 10 members in 1 batches; 13 remain under older keys" in stopped.output
    resumed = runner.invoke(app, ["data-key", "rotate", "--batch-size", "10"], prog_name="perkflow")
    assert resumed.exit_code == 0, resumed.output
    assert "re-encrypted 13 members in 2 batches; 0 remain" in resumed.output
    status = runner.invoke(app, ["data-key", "status"], prog_name="perkflow")
    assert f"{parse_keys(new, 'k').current_id}: 23 members (current)" in status.output


def test_keys_come_from_the_environment_or_the_key_file_never_the_database(tmp_path: Path):
    old, new = new_key(), new_key()
    from_env = load_keys(tmp_path / "unused", f"{new}, {old}")
    assert from_env.ids == (parse_keys(new, "k").current_id, parse_keys(old, "k").current_id)
    assert not (tmp_path / "unused").exists()
    folder = tmp_path / "data"
    made = load_keys(folder)  # first start: one fresh key, readable by its owner only
    assert (folder / "data.key").stat().st_mode & 0o777 == 0o600
    (folder / "data.key").write_text(f"{new}\n{old}\n")
    assert load_keys(folder).ids == from_env.ids
    assert made.current_id not in from_env.ids
    with pytest.raises(ValueError, match="decodes to 5 bytes"):
        parse_keys(f"{new},c2hvcnQ=", "PERKFLOW_DATA_KEY")


def test_a_rotation_that_crashes_mid_batch_loses_nothing_and_resumes(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    old, new = new_key(), new_key()
    first = open_service(database_url, tmp_path / "data", data_key=old)
    _members(first)
    first.engine.dispose()
    svc = open_service(database_url, tmp_path / "data", data_key=f"{new},{old}")
    calls = {"n": 0}
    encrypt = DataKeys.encrypt

    def crash_on_the_30th(self: DataKeys, text: str, context: str, kid: str | None = None) -> bytes:
        calls["n"] += 1
        if calls["n"] == 30:  # inside the second batch of 4 rows (4 ciphertexts a row)
            raise RuntimeError("the process died")
        return encrypt(self, text, context, kid)

    monkeypatch.setattr(DataKeys, "encrypt", crash_on_the_30th)
    with pytest.raises(RuntimeError, match="the process died"):
        rotation.rotate(svc.engine, svc.keys, batch_size=4)
    monkeypatch.setattr(DataKeys, "encrypt", encrypt)
    assert sorted(_key_ids(svc).values()) == [4, 19]  # the first batch committed, the second rolled back
    _readable(svc)
    resumed = rotation.rotate(svc.engine, svc.keys, batch_size=4)
    assert (resumed.rows, resumed.remaining) == (19, 0)
    _readable(svc)
    svc.engine.dispose()
