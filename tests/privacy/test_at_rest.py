"""What the raw database holds: no plaintext phone, email, name or birth date, in the SQLite file's
bytes or a PostgreSQL dump, while lookup by phone and email still finds the members; and the event
path (events, the scheduler's birthdays, imports) never decrypts personal data."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import make_url, select

from perkflow.service import crypto
from perkflow.service.core import Service
from perkflow.service.imports import import_batch
from perkflow.service.problems import Problem
from perkflow.storage import tables as t
from perkflow.storage.backup import pg_tool
from tests.databases import Clock

from .helpers import PEOPLE, PLAINTEXTS, ready

# Every form a plaintext could take in storage: as given, E.164, UTF-8 and UTF-16 (SQLite may store text either way).
NEEDLES = [*PLAINTEXTS, "+8613812340000", "+8613912345678"]


def _raw_database(service: Service, database_url: str) -> bytes:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        service.engine.dispose()  # every connection closed: the WAL is checkpointed into the file
        path = Path(url.database or "")
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    with service.engine.connect() as conn:
        major = int(conn.exec_driver_sql("SHOW server_version_num").scalar_one()) // 10000
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run([pg_tool("pg_dump", major), "--data-only", f"--dbname={dsn}"], capture_output=True, check=True)
    return done.stdout


def test_the_raw_database_holds_no_plaintext_personal_data_while_lookup_finds_the_members(service: Service, clock: Clock, database_url: str):
    ready(service, clock)
    raw = _raw_database(service, database_url)
    assert b"pos-m1-0" in raw and b"prefers oat milk" in raw  # the rows are there, in plain text where not personal
    for needle in NEEDLES:
        for encoding in ("utf-8", "utf-16-le"):
            assert needle.encode(encoding) not in raw, (needle, encoding)
    for member, person in PEOPLE.items():
        assert service.members.find(phone=person["phone"]) == [member]
        assert service.members.find(email=person["email"].upper()) == [member]


def test_the_event_path_never_decrypts_personal_data(service: Service, clock: Clock, monkeypatch: pytest.MonkeyPatch):
    ready(service, clock, purchases=0)

    def refuse(*args: object, **kwargs: object) -> str:
        raise AssertionError("personal data was decrypted on the event path")

    monkeypatch.setattr(crypto.DataKeys, "decrypt", refuse)
    for i in range(3):
        posted = service.events.post({
            "id": f"pos-{i}", "type": "purchase", "member_id": "m1", "occurred_at": clock.now.isoformat(),
            "store": "S1", "channel": "pos", "attributes": {"amount": 60000},
        })
        assert not isinstance(posted, Problem), posted
    imported = list(import_batch(service, [{
        "id": "pos-import-1", "type": "purchase", "member_id": "m2", "occurred_at": clock.now.isoformat(),
        "store": "S1", "channel": "pos", "attributes": {"amount": 1000},
    }]))
    assert len(imported) == 1
    # m2's birthday is 1 December: the scheduler finds it through month and day alone.
    clock.set("2026-12-01T12:00:00+00:00")
    ticked = service.scheduler.tick()
    assert ticked.events >= 1
    with service.engine.connect() as conn:
        birthdays = conn.execute(select(t.events.c.id).where(t.events.c.type == "birthday")).scalars().all()
    assert birthdays == ["birthday:m2:2026"]
    assert service.members.find(phone=PEOPLE["m1"]["phone"]) == ["m1"]  # lookup needs no decryption either
