"""Shared by the tests of the service's promises: worker processes, their own PostgreSQL database,
a full dump of the tables, and the ledger's invariants read straight from the database."""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from perkflow.service.core import Service
from perkflow.storage import tables as t

from ..databases import POSTGRES_URL

ROOT = Path(__file__).resolve().parents[2]


_OWN: dict[str, str] = {}  # database name -> the URL that drops it at exit


def own_database() -> str:
    """A PostgreSQL database of this test run's own (`<test database>_<pid>`, dropped at exit) with
    an empty `public` schema. Tests that start processes or keep a database for a whole module use
    it, so that another test run, which drops `public` in the shared database, cannot pull it from
    under them. Where databases cannot be created, the shared one is used."""
    assert POSTGRES_URL is not None
    url = make_url(POSTGRES_URL)
    own = url.set(database=f"{url.database}_{os.getpid()}")
    if own.database not in _OWN:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{own.database}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{own.database}"'))
            _OWN[str(own.database)] = POSTGRES_URL
        except ProgrammingError:  # no CREATEDB privilege
            own = url
        finally:
            admin.dispose()
    engine = create_engine(own, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return own.render_as_string(hide_password=False)


@atexit.register
def _drop_own_databases() -> None:
    for name, admin_url in _OWN.items():
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def start_worker(job: dict[str, Any], tmp_path: Path, name: str) -> tuple[subprocess.Popen[str], Path]:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(job))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.service.claim_worker", str(path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, path


def run_workers(
    svc: Service, tmp_path: Path, jobs: list[dict[str, Any]], *, timeout: float = 60
) -> list[Any]:
    """Run one worker process per job against the service's database, all released at once;
    every result line, and the test fails on any exception a worker met."""
    base = {
        "url": svc.engine.url.render_as_string(hide_password=False),
        "data_dir": str(tmp_path / "data"),
        "now": svc.clock().isoformat(),
    }
    go = tmp_path / "go"
    procs = []
    for n, job in enumerate(jobs):
        ready = tmp_path / f"ready-{n}"
        procs.append(
            (
                start_worker({**base, **job, "ready": str(ready), "go": str(go)}, tmp_path, f"job-{n}")[0],
                ready,
            )
        )
    deadline = time.monotonic() + timeout
    try:
        for proc, ready in procs:
            while not ready.exists():
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "a worker did not start in time"
                time.sleep(0.01)
        go.touch()
        outputs = []
        for proc, _ in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert proc.returncode == 0, err
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    errors = [e for output in outputs for e in output["errors"]]
    assert errors == [], errors[0]
    return [r for output in outputs for r in output["results"]]


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order: what 'changes nothing' is checked against."""
    out = {}
    with engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            rows = conn.execute(select(table)).all()
            out[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return out


def ledger_problems(engine: Engine) -> list[str]:
    """The ledger's invariants as stored: for every member and balance, the total equals the sum
    of its ledger and the sum of its lots less its debt; no lot below zero; every ledger row
    belongs to a stored event of the same member."""
    problems = []
    with engine.connect() as conn:
        totals = {
            (r.member_id, r.balance): (r.total, r.debt) for r in conn.execute(select(t.member_balances))
        }
        ledger = {
            (r.member_id, r.balance): r.total
            for r in conn.execute(
                select(
                    t.ledger.c.member_id, t.ledger.c.balance, func.sum(t.ledger.c.amount).label("total")
                ).group_by(t.ledger.c.member_id, t.ledger.c.balance)
            )
        }
        lots = {
            (r.member_id, r.balance): r.total
            for r in conn.execute(
                select(
                    t.lots.c.member_id, t.lots.c.balance, func.sum(t.lots.c.amount).label("total")
                ).group_by(t.lots.c.member_id, t.lots.c.balance)
            )
        }
        negative = conn.execute(select(t.lots.c.id).where(t.lots.c.amount < 0)).scalars().all()
        orphans = (
            conn.execute(
                select(t.ledger.c.event_id)
                .outerjoin(
                    t.events,
                    (t.events.c.id == t.ledger.c.event_id) & (t.events.c.member_id == t.ledger.c.member_id),
                )
                .where(t.events.c.id.is_(None))
            )
            .scalars()
            .all()
        )
    for key in sorted(set(totals) | set(ledger) | set(lots)):
        total, debt = totals.get(key, (0, 0))
        summed, held = ledger.get(key, 0), lots.get(key, 0)
        if not total == summed == held - debt:
            problems.append(f"member {key}: total {total}, ledger {summed}, lots {held} less debt {debt}")
    problems += [f"lot {lot} is below zero" for lot in negative]
    problems += [f"ledger row of event {event} has no event" for event in orphans]
    return problems


def ledger_rows_by_event(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    with engine.connect() as conn:
        for r in conn.execute(
            select(
                t.ledger.c.event_id, t.ledger.c.balance, t.ledger.c.kind, t.ledger.c.amount, t.ledger.c.lots
            )
        ):
            rows[r.event_id].append((r.balance, r.kind, r.amount, [list(x) for x in r.lots]))
    return {k: sorted(v, key=repr) for k, v in rows.items()}
