"""HTTP benchmark: end-to-end events/s over HTTP, p50 / p99 latency, beside the raw limits.

    .venv/bin/python benchmarks/http.py                  # SQLite and PostgreSQL, 1 and 2 workers
    .venv/bin/python benchmarks/http.py --quick --sqlite-only   # the smoke test's short run
    .venv/bin/python benchmarks/http.py --json           # the same figures as JSON

PostgreSQL is measured when --postgres-url is given, or PERKFLOW_TEST_POSTGRES_URL is set; the
latter's database name is replaced by `perkflow_bench` (created if missing), so a test run that
uses the test database at the same time is never wiped. The schema `public` of the benchmark's
database is dropped and created again for each configuration. The default run takes about nine
minutes on two cores (with 2,000 members, 10 rounds of 1.5 s, 16 sides in all).

For each backend and worker count (1 and 2), on a fresh database:
- setup: `perkflow db upgrade`, examples/coffee/scheme.yaml published by one author and approved
  by another, an API key (`perkflow keys create`), then --members members made with
  PUT /api/v1/members/{id};
- the sides, measured back to back in each round, the order rotating from round to round:
  * engine: `perkflow serve --api-only --workers N`, POST /api/v1/events with purchase events of
    unique ids for random members, `occurred_at` now;
  * empty endpoint: a Starlette app that reads the body and answers `{}` (201), under
    `uvicorn --workers N` with the same uvicorn settings (access log on; h11, asyncio), sent the
    same requests;
  * with two workers, both again with the listening socket marked IPPROTO_TCP ("TCP_NODELAY"
    rows; see `serve_nodelay`): uvicorn's multi-worker supervisor leaves Nagle's algorithm on, which
    adds ~40 ms to every kept-alive request, engine or empty;
  * bare transaction: the raw driver (sqlite3 / psycopg) doing, per event, one transaction with
    the reads and writes the service does for a purchase of the coffee scheme (see BARE below), on
    the same tables and the same members, with N connections in N processes;
- HTTP load comes from a separate process (this script run with --generate) with 2×N threads, each
  on a keep-alive http.client connection; the bare side runs in N processes (this script run with
  --bare). "At equal concurrency" (docs: /work/shared/SETTLED.md, "Measuring on a 2-core
  machine") is N worker processes against N database connections.

Events/s and CPU are the median over the rounds (default 10) of one window each (default 1.5 s,
after a warm-up); p50 / p99 are taken over every request of every round. The ratio engine ÷ bare
is the median of the per-round ratios. CPU is read from /proc for each window: "app" is the server
processes (uvicorn supervisor and workers) or the bare driver's processes; "db" is the PostgreSQL
backends of this database's connections (SQLite runs inside the app); "gen" is the load
generator's own CPU; "others" is what the rest of the machine used meanwhile, in cores. Figures
are printed, never asserted: tests only check that the script runs. Any answer other than 2xx is
an error: the run reports it and exits with status 1.
"""

from __future__ import annotations

import os
import sys

# This file is named http.py: when it runs as a script its folder comes first on sys.path and would
# shadow the standard library's `http` package (http.client, and everything uvicorn imports).
if sys.path and os.path.realpath(sys.path[0] or os.getcwd()) == os.path.dirname(os.path.realpath(__file__)):
    del sys.path[0]

import argparse  # noqa: E402
import hashlib  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCHEME = ROOT / "examples" / "coffee" / "scheme.yaml"
TARGET_RATIO = 0.5  # engine ÷ bare transaction, PostgreSQL, two workers against two connections
BENCH_DATABASE = "perkflow_bench"
STORES = ["sh-jingan", "sh-lujiazui", "hz-xihu", "S001"]
TICK = os.sysconf("SC_CLK_TCK")
SIDES = ("engine", "engine_metrics", "engine_nodelay", "empty", "empty_nodelay", "bare")
METRICS_TOKEN = "bench-metrics-token-0123456789"
LABELS = {
    "engine": "engine (perkflow serve)",
    "engine_metrics": "engine, metrics on",
    "engine_nodelay": "engine, TCP_NODELAY",
    "empty": "empty endpoint",
    "empty_nodelay": "empty, TCP_NODELAY",
    "bare": "bare transaction",
}
RATIOS = {
    "engine_metrics/engine": "metrics on ÷ off (engine)",
    "engine/bare": "engine ÷ bare transaction",
    "engine_nodelay/bare": "engine (TCP_NODELAY) ÷ bare",
    "engine/empty": "engine ÷ empty endpoint",
    "engine_nodelay/empty_nodelay": "engine ÷ empty (both TCP_NODELAY)",
}

EMPTY_APP = '''"""The empty endpoint of benchmarks/http.py: read the body, answer {}."""
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def event(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({}, status_code=201)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/api/v1/events", event, methods=["POST"]), Route("/healthz", healthz)])
'''


def now_utc() -> datetime:
    return datetime.now(UTC)  # noqa: TID251  (a benchmark stamps events with the real time)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# CPU from /proc


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of user + system time, all threads) of a process, if it exists."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(b")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def _processes() -> dict[int, tuple[int, float]]:
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (found := _stat(int(name))) is not None:
            table[int(name)] = found
    return table


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _serves_database(pid: int, database: str) -> bool:
    """Whether a PostgreSQL process is a backend serving a connection to `database` (its title is
    "user database host(port) state"). The checkpointer, the background and WAL writers and
    autovacuum are left out: their work comes per second more than per event, and would be
    charged to whichever side runs slowest."""
    title = _cmdline(pid).removeprefix("postgres:").split()
    if title and title[0].endswith(":"):  # the cluster's name, as Debian sets cluster_name
        title = title[1:]
    connection = any("(" in word or word == "[local]" for word in title)
    return connection and len(title) > 1 and title[1] == database


def cpu_sample(spec: dict[str, Any]) -> dict[str, dict[int, float]]:
    """CPU seconds so far, per process: "app" (the process trees under spec["trees"]) and "db"
    (PostgreSQL's processes for spec["pg"]["database"], children of its postmaster)."""
    table = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    app: dict[int, float] = {}
    todo = [p for p in spec.get("trees", []) if p in table]
    while todo:
        pid = todo.pop()
        app[pid] = table[pid][1]
        todo += children.get(pid, [])
    db: dict[int, float] = {}
    pg = spec.get("pg")
    if pg:
        for pid in children.get(pg["postmaster"], []):
            if _serves_database(pid, pg["database"]):
                db[pid] = table[pid][1]
    return {"app": app, "db": db}


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two samples; a process that appeared in between counts whole."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (every core), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / TICK


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Window:
    """The timed window shared by the load's threads or processes: every side warms up, waits at
    the start line, then runs until `deadline`; CPU and the clock are read at the start and the end."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def open(self) -> None:
        self.cpu0, self.busy0 = cpu_sample(self.spec), machine_busy()
        self.rusage0 = resource.getrusage(resource.RUSAGE_SELF)
        self.t0 = time.perf_counter()

    def close(self) -> dict[str, float]:
        t1 = time.perf_counter()
        rusage1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu1, busy1 = cpu_sample(self.spec), machine_busy()
        return {
            "elapsed_s": t1 - self.t0,
            "app_cpu_s": cpu_delta(self.cpu0["app"], cpu1["app"]),
            "db_cpu_s": cpu_delta(self.cpu0["db"], cpu1["db"]),
            "self_cpu_s": (rusage1.ru_utime - self.rusage0.ru_utime)
            + (rusage1.ru_stime - self.rusage0.ru_stime),
            "machine_busy_s": busy1 - self.busy0,
        }


# --------------------------------------------------------------------------------------------------
# The load generator (a process of its own: this script with --generate)


def purchase(event_id: str, member: str, rnd: random.Random, amount: int | None = None) -> dict[str, Any]:
    """A purchase of ¥10 to ¥600 (a large one lifts the member's tier and issues a coupon, as in
    life), stamped now."""
    return {
        "id": event_id,
        "type": "purchase",
        "member_id": member,
        "occurred_at": now_utc().isoformat(timespec="milliseconds"),
        "store": rnd.choice(STORES),
        "channel": "pos",
        "attributes": {"amount": amount or rnd.randrange(1000, 60000)},
    }


def member_id(k: int) -> str:
    return f"m{k:05d}"


def generate(spec: dict[str, Any]) -> dict[str, Any]:
    """POST purchase events from spec["connections"] threads, each on its own keep-alive
    connection, for spec["duration"] seconds after spec["warmup"] seconds of warm-up."""
    host, port, token = spec["host"], spec["port"], spec["token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    n = spec["connections"]
    start_line = threading.Barrier(n + 1)
    go = threading.Event()
    deadline = [0.0]
    results: list[dict[str, Any]] = [{} for _ in range(n)]

    def worker(i: int) -> None:
        rnd = random.Random(f"{spec['prefix']}-{i}")
        conn = http.client.HTTPConnection(host, port, timeout=30)
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        first_error = ""
        ok = 0
        k = 0

        def one() -> float:
            nonlocal conn, k, ok, first_error
            k += 1
            body = json.dumps(
                purchase(f"{spec['prefix']}-{i}-{k}", member_id(rnd.randrange(spec["members"])), rnd)
            )
            t = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/events", body.encode(), headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
                errors[type(exc).__name__] += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"
                return time.perf_counter() - t
            elapsed = time.perf_counter() - t
            if 200 <= response.status < 300:
                ok += 1
            else:
                errors[str(response.status)] += 1
                first_error = first_error or f"{response.status}: {data[:500].decode(errors='replace')}"
            return elapsed

        warm_until = time.perf_counter() + spec["warmup"]
        while time.perf_counter() < warm_until:
            one()
        warm_ok, warm_errors = ok, sum(errors.values())
        start_line.wait()
        go.wait()
        while time.perf_counter() < deadline[0]:
            latencies.append(one())
        conn.close()
        results[i] = {
            "latencies": latencies,
            "ok": ok - warm_ok,
            "ok_total": ok,
            "errors": dict(errors),
            "window_errors": sum(errors.values()) - warm_errors,
            "first_error": first_error,
        }

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    window = Window(spec["cpu"])
    start_line.wait()
    window.open()
    deadline[0] = window.t0 + spec["duration"]
    go.set()
    for thread in threads:
        thread.join()
    figures = window.close()
    return _summary(figures, results)


def _summary(figures: dict[str, float], results: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = sorted(x for r in results for x in r["latencies"])
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r["errors"])
    count = sum(r["ok"] for r in results) + sum(r["window_errors"] for r in results)
    return {
        **figures,
        "count": count,
        "ok_total": sum(r["ok_total"] for r in results),
        "errors": dict(errors),
        "first_error": next((r["first_error"] for r in results if r["first_error"]), ""),
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "latencies": [round(x, 6) for x in latencies],
    }


# --------------------------------------------------------------------------------------------------
# BARE: the same writes in a bare transaction with the raw driver (this script with --bare)
#
# Per event, one transaction, as the service does for a purchase of the coffee scheme (statement by
# statement, from perkflow/service/events.py and state_store.py): look the event id up; read the
# member (FOR UPDATE on PostgreSQL; SQLite takes the write lock at BEGIN IMMEDIATE, as the service
# does); read its lots with something left, its debts, its coupons, and the budgets; insert the
# event (the body as posted and a decision of the engine's size, JSON), two ledger rows, two lots,
# the earnings record; upsert the two balances; look for a webhook subscription and write the
# outbox messages the engine wrote for the same purchase (when the schema has them); update the
# member row. Not done here, and done by the service: the API key look-up (its own connection),
# reading the scheme version in force, and evaluating the rules. The counters, caps and tags are
# written back as read. Before the rounds, one bare transaction and one engine event for the same
# purchase are checked to write the same number of rows in every table.

SQL = {
    "event": "SELECT body_hash, decision FROM events WHERE id = ?",
    "member": "SELECT * FROM members WHERE external_id = ?",
    "lots": "SELECT * FROM lots WHERE member_id = ? AND amount > 0",
    "debts": "SELECT * FROM member_balances WHERE member_id = ? AND debt > 0",
    "coupons": "SELECT * FROM coupons WHERE member_id = ? ORDER BY issued_at, id",
    "budgets": 'SELECT key, used, "limit" FROM budgets',
    "subscriptions": "SELECT id FROM webhook_subscriptions WHERE active = ? LIMIT 1",
    "insert_event": "INSERT INTO events (id, member_id, external_member_id, type, occurred_at, store, channel, "
    "body, body_hash, decision, version, source, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "insert_ledger": "INSERT INTO ledger (member_id, event_id, balance, part, kind, amount, debt, lots, rule, "
    "version, occurred_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "insert_lots": "INSERT INTO lots (id, member_id, balance, part, amount, original, earned_at, expires_at, "
    "available_at, source_event, rule) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "upsert_balance": "INSERT INTO member_balances (member_id, balance, total, debt) VALUES (?, ?, ?, 0) "
    "ON CONFLICT (member_id, balance) DO UPDATE SET total = excluded.total, debt = excluded.debt",
    "insert_earning": "INSERT INTO earnings (event_id, member_id, event_type, amount, refunded, earned, lots) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)",
    "insert_outbox": "INSERT INTO outbox (kind, member_id, event_id, payload, created_at, status, attempts, "
    "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "update_member": "UPDATE members SET tags = ?, tier = ?, tier_since = ?, tier_review_at = ?, "
    "grace_until = ?, counters = ?, caps = ?, rewards = ?, last_event_at = ?, updated_at = ?{more} WHERE id = ?",
}


class Bare:
    """One connection doing purchase transactions with the raw driver."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.template: dict[str, Any] = spec["decision"]
        self.version: str = self.template["version"]
        self.outbox: list[tuple[str, dict[str, Any]]] = spec.get("outbox") or []
        self.subscriptions: bool = spec.get("subscriptions", False)
        self.last_purchase: bool = spec.get("last_purchase_at", False)
        self.sqlite = spec["backend"] == "sqlite"
        sql = {
            **SQL,
            "update_member": SQL["update_member"].format(
                more=", last_purchase_at = ?" if self.last_purchase else ""
            ),
        }
        if self.sqlite:
            self.conn: Any = sqlite3.connect(
                spec["path"], timeout=30, isolation_level=None, check_same_thread=False
            )
            self.conn.row_factory = sqlite3.Row
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
                self.conn.execute(f"PRAGMA {pragma}")
            self.sql = sql
            self.json: Callable[[Any], Any] = json.dumps
            self.load: Callable[[Any], Any] = json.loads
            self.time: Callable[[datetime], Any] = _sqlite_time
        else:
            import psycopg
            from psycopg.types.json import Jsonb

            self.conn = psycopg.connect(spec["dsn"], autocommit=True)
            self.sql = {k: v.replace("?", "%s") for k, v in sql.items()}
            self.sql["member"] += " FOR UPDATE"
            self.json, self.load, self.time = Jsonb, _same, _same

    def close(self) -> None:
        self.conn.close()

    def apply(self, event: dict[str, Any]) -> None:
        if self.sqlite:
            cursor = self.conn.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                self._transaction(cursor, event)
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            finally:
                cursor.close()
        else:
            from psycopg.rows import dict_row

            with self.conn.transaction(), self.conn.cursor(row_factory=dict_row) as cursor:
                self._transaction(cursor, event)

    def _transaction(self, c: Any, event: dict[str, Any]) -> None:
        sql, as_json, load, stamp = self.sql, self.json, self.load, self.time
        eid, mid, amount = event["id"], event["member_id"], event["attributes"]["amount"]
        points = growth = amount // 100
        now = now_utc()
        at, recorded, expires = (
            stamp(datetime.fromisoformat(event["occurred_at"])),
            stamp(now),
            stamp(now + timedelta(days=366)),
        )
        if c.execute(sql["event"], (eid,)).fetchone() is not None:
            raise RuntimeError(f"event {eid} exists")
        m = c.execute(sql["member"], (mid,)).fetchone()
        if m is None:
            raise RuntimeError(f"no member {mid}")
        pk = m["id"]
        lots = c.execute(sql["lots"], (pk,)).fetchall()
        c.execute(sql["debts"], (pk,)).fetchall()
        c.execute(sql["coupons"], (pk,)).fetchall()
        c.execute(sql["budgets"]).fetchall()
        totals = {"points": points, "growth": growth}
        for lot in lots:
            if lot["balance"] in totals:
                totals[lot["balance"]] += lot["amount"]
        earned = (("points", points), ("growth", growth))
        decision = self._decision(event, points, growth, totals)
        c.execute(
            sql["insert_event"],
            (
                eid,
                pk,
                mid,
                "purchase",
                at,
                event["store"],
                event["channel"],
                as_json(event),
                _hash(event),
                as_json(decision),
                self.version,
                "api",
                recorded,
            ),
        )
        c.executemany(
            sql["insert_ledger"],
            [
                (
                    pk,
                    eid,
                    b,
                    None,
                    "earn",
                    n,
                    0,
                    as_json([[f"{eid}#{k}", n]]),
                    "base-earn",
                    self.version,
                    at,
                    recorded,
                )
                for k, (b, n) in enumerate(earned, 1)
            ],
        )
        c.executemany(
            sql["insert_lots"],
            [
                (f"{eid}#{k}", pk, b, None, n, n, at, expires, None, eid, "base-earn")
                for k, (b, n) in enumerate(earned, 1)
            ],
        )
        c.executemany(sql["upsert_balance"], [(pk, b, totals[b]) for b, _ in earned])
        c.execute(
            sql["insert_earning"],
            (
                eid,
                pk,
                "purchase",
                amount,
                0,
                as_json([[b, None, n] for b, n in earned]),
                as_json([[f"{eid}#{k}", n] for k, (_, n) in enumerate(earned, 1)]),
            ),
        )
        if self.subscriptions:
            c.execute(sql["subscriptions"], (True,)).fetchone()
        if self.outbox:
            ids = {"event_id": eid, "member_id": mid}
            c.executemany(
                sql["insert_outbox"],
                [
                    (
                        kind,
                        pk,
                        eid,
                        as_json({**payload, **{k: v for k, v in ids.items() if k in payload}}),
                        recorded,
                        "pending",
                        0,
                        recorded,
                    )
                    for kind, payload in self.outbox
                ],
            )
        values = [
            as_json(load(m[k])) if k in ("tags", "counters", "caps", "rewards") else m[k]
            for k in (
                "tags",
                "tier",
                "tier_since",
                "tier_review_at",
                "grace_until",
                "counters",
                "caps",
                "rewards",
            )
        ]
        c.execute(sql["update_member"], (*values, at, recorded, *((at,) if self.last_purchase else ()), pk))

    def _decision(
        self, event: dict[str, Any], points: int, growth: int, totals: dict[str, int]
    ) -> dict[str, Any]:
        eid = event["id"]
        effects = [
            {**self.template["effects"][0], "amount": points, "lots": [[f"{eid}#1", points]]},
            {**self.template["effects"][1], "amount": growth, "lots": [[f"{eid}#2", growth]]},
        ]
        return {
            **self.template,
            "event_id": eid,
            "member_id": event["member_id"],
            "effects": effects,
            "occurred_at": event["occurred_at"],
            "balances": totals,
        }


def _same(x: Any) -> Any:
    return x


def _sqlite_time(instant: datetime) -> str:
    """How SQLAlchemy stores the service's UTC instants in SQLite."""
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _hash(raw: dict[str, Any]) -> str:
    text = json.dumps(raw, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _bare_process(
    spec: dict[str, Any], i: int, start_line: Any, go: Any, deadline: Any, out: Any, sampled: Any
) -> None:
    bare = Bare(spec)
    rnd = random.Random(f"{spec['prefix']}-{i}")
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    first_error = ""
    ok = k = 0

    def one() -> float:
        nonlocal ok, k, first_error
        k += 1
        event = purchase(f"{spec['prefix']}-{i}-{k}", member_id(rnd.randrange(spec["members"])), rnd)
        t = time.perf_counter()
        try:
            bare.apply(event)
            ok += 1
        except Exception as exc:  # a failed transaction is an error of the run, reported
            errors[type(exc).__name__] += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
        return time.perf_counter() - t

    try:
        warm_until = time.perf_counter() + spec["warmup"]
        while time.perf_counter() < warm_until:
            one()
        warm_ok, warm_errors = ok, sum(errors.values())
        start_line.wait()
        go.wait()
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        while time.perf_counter() < deadline.value:
            latencies.append(one())
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        out.put(
            {
                "latencies": latencies,
                "ok": ok - warm_ok,
                "ok_total": ok,
                "errors": dict(errors),
                "window_errors": sum(errors.values()) - warm_errors,
                "first_error": first_error,
                "cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
            }
        )
        sampled.wait(timeout=120)
    finally:
        bare.close()


def bare_run(spec: dict[str, Any]) -> dict[str, Any]:
    """spec["connections"] processes, each with one connection, for the same window as the HTTP
    load; "app" CPU is their own."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    n = spec["connections"]
    start_line, go, deadline, out = ctx.Barrier(n + 1), ctx.Event(), ctx.Value("d", 0.0), ctx.Queue()
    sampled = ctx.Event()  # the connections stay open until their database processes' CPU is read
    workers = [
        ctx.Process(target=_bare_process, args=(spec, i, start_line, go, deadline, out, sampled))
        for i in range(n)
    ]
    for w in workers:
        w.start()
    window = Window({**spec["cpu"], "trees": []})
    start_line.wait(timeout=120)
    window.open()
    deadline.value = window.t0 + spec["duration"]
    go.set()
    results = [out.get(timeout=spec["duration"] + 120) for _ in workers]
    figures = window.close()
    sampled.set()
    for w in workers:
        w.join(timeout=30)
    figures["app_cpu_s"] = sum(r["cpu_s"] for r in results)
    return _summary(figures, results)


# --------------------------------------------------------------------------------------------------
# The orchestra: databases, servers, rounds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_postgres_url(given: str | None) -> str | None:
    """--postgres-url as given; else PERKFLOW_TEST_POSTGRES_URL with the database `perkflow_bench`."""
    if given:
        return given
    test_url = os.environ.get("PERKFLOW_TEST_POSTGRES_URL")
    if not test_url:
        return None
    parts = urlsplit(test_url)
    return urlunsplit(parts._replace(path="/" + BENCH_DATABASE))


def dsn(url: str) -> str:
    """A SQLAlchemy URL as a libpq URI for psycopg."""
    scheme, _, rest = url.partition("://")
    return "postgresql://" + rest


def reset_postgres(url: str) -> None:
    import psycopg

    parts = urlsplit(dsn(url))
    database = parts.path.lstrip("/")
    try:
        conn = psycopg.connect(dsn(url), autocommit=True)
    except psycopg.OperationalError as exc:
        if f'"{database}" does not exist' not in str(exc):
            raise
        with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        conn = psycopg.connect(dsn(url), autocommit=True)
    with conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


def postgres_facts(url: str) -> dict[str, Any]:
    """The postmaster's pid (to read its processes' CPU, when it runs on this machine) and settings."""
    import psycopg

    with psycopg.connect(dsn(url), autocommit=True) as conn:
        backend, database = conn.execute("SELECT pg_backend_pid(), current_database()").fetchone()  # type: ignore[misc]
        settings = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in ("server_version", "synchronous_commit", "fsync", "shared_buffers")
        }
        found = _stat(backend)
        postmaster = found[0] if found is not None and "postgres" in _cmdline(found[0]) else None
    return {"postmaster": postmaster, "database": database, "settings": settings}


def count_rows(backend: str, where: str) -> dict[str, Any]:
    """Events stored and lots per member, after a configuration's run; and the rows per table that
    the template engine event and the first bare event wrote (the same writes, checked)."""
    queries = {
        "events": "SELECT count(*) FROM events",
        "members": "SELECT count(*) FROM members",
        "lots": "SELECT count(*) FROM lots",
    }
    if backend == "sqlite":
        with sqlite3.connect(where) as conn:
            return {k: conn.execute(q).fetchone()[0] for k, q in queries.items()}
    import psycopg

    with psycopg.connect(dsn(where)) as conn:
        return {k: conn.execute(q).fetchone()[0] for k, q in queries.items()}  # type: ignore[index]


def rows_written(backend: str, where: str, event_id: str) -> dict[str, int]:
    queries = {
        "events": "SELECT count(*) FROM events WHERE id = {p}",
        "ledger": "SELECT count(*) FROM ledger WHERE event_id = {p}",
        "lots": "SELECT count(*) FROM lots WHERE source_event = {p}",
        "earnings": "SELECT count(*) FROM earnings WHERE event_id = {p}",
        "coupons": "SELECT count(*) FROM coupons WHERE source_event = {p}",
        "tier_history": "SELECT count(*) FROM tier_history WHERE event_id = {p}",
        "outbox": "SELECT count(*) FROM outbox WHERE event_id = {p}",
    }
    if backend == "sqlite":
        with sqlite3.connect(where) as conn:
            return {k: conn.execute(q.format(p="?"), (event_id,)).fetchone()[0] for k, q in queries.items()}
    import psycopg

    with psycopg.connect(dsn(where)) as conn:
        return {k: conn.execute(q.format(p="%s"), (event_id,)).fetchone()[0] for k, q in queries.items()}  # type: ignore[index]


def schema_facts(backend: str, where: str, event_id: str) -> dict[str, Any]:
    """What the bare transaction must mirror of the schema as it is now: whether webhook
    subscriptions exist (the service looks for one per event), whether members have
    last_purchase_at, and the outbox messages the engine wrote for `event_id`."""
    if backend == "sqlite":
        with sqlite3.connect(where) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            columns = {r[1] for r in conn.execute("PRAGMA table_info(members)")}
            outbox = [
                (k, json.loads(p))
                for k, p in conn.execute(
                    "SELECT kind, payload FROM outbox WHERE event_id = ? ORDER BY id", (event_id,)
                )
            ]
    else:
        import psycopg

        with psycopg.connect(dsn(where)) as conn:
            tables = {
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                )
            }
            columns = {
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                    "AND table_name = 'members'"
                )
            }
            outbox = [
                (k, p)
                for k, p in conn.execute(
                    "SELECT kind, payload FROM outbox WHERE event_id = %s ORDER BY id", (event_id,)
                )
            ]
    return {
        "subscriptions": "webhook_subscriptions" in tables,
        "last_purchase_at": "last_purchase_at" in columns,
        "outbox": outbox,
    }


def perkflow(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "perkflow", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"perkflow {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


class Server:
    """A server process this script started, in its own process group, its output in a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, folder: Path) -> None:
        self.name, self.port = name, port
        self.log_path = folder / f"{name}.log"
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen(
            argv, env=env, stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True, cwd=folder
        )

    def wait_healthy(self, timeout: float = 90) -> None:
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} server exited ({self.process.returncode}):\n{self.tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{self.name} server did not answer /healthz in {timeout:.0f} s:\n{self.tail()}")

    def tail(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # the group this script created
                self.process.wait(timeout=10)
        self.log_file.close()


@contextmanager
def servers(*started: Server) -> Iterator[tuple[Server, ...]]:
    try:
        for s in started:
            s.wait_healthy()
        yield started
    finally:
        for s in started:
            s.stop()


def request(port: int, method: str, path: str, token: str, body: Any) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            method,
            path,
            json.dumps(body).encode(),
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def create_members(port: int, token: str, count: int, threads: int = 4) -> None:
    """PUT /api/v1/members/{id} for every member, a new connection each (no keep-alive: see
    `serve_nodelay` for why a kept-alive connection to several workers is slow)."""
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Connection": "close"}

    def work(start: int) -> None:
        for k in range(start, count, threads):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            body = json.dumps({"home_store": STORES[k % len(STORES)]}).encode()
            conn.request("PUT", f"/api/v1/members/{member_id(k)}", body, headers)
            response = conn.getresponse()
            data = response.read()
            conn.close()
            if response.status not in (200, 201):
                failures.append(f"{member_id(k)}: {response.status} {data[:300]!r}")
                return

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if failures:
        raise SystemExit("creating members failed: " + "; ".join(failures[:3]))


def serve_nodelay(spec: dict[str, Any]) -> None:
    """uvicorn with several workers, its listening socket marked IPPROTO_TCP.

    uvicorn's supervisor binds the socket itself (Config.bind_socket) with `proto` left at 0; the
    sockets it accepts inherit that, and asyncio turns TCP_NODELAY on only for sockets that say
    IPPROTO_TCP (uvicorn issue #3149). Nagle's algorithm then holds the body of each answer until
    the client acknowledges its headers, which a client waiting for the body delays by ~40 ms: every
    request on a kept-alive connection after the first takes 40 ms more. With one worker uvicorn
    lets asyncio bind from getaddrinfo (proto 6) and the problem does not arise. Here the socket
    is wrapped again from its descriptor, which reads the protocol back from the kernel; the
    workers receive it with proto 6. Everything else is `uvicorn.run` as `perkflow serve` calls it."""
    import uvicorn
    from uvicorn.config import Config

    bind = Config.bind_socket

    def bind_tcp(self: Config) -> socket.socket:
        sock = bind(self)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            sock = socket.socket(fileno=sock.detach())
            sock.set_inheritable(True)
        return sock

    Config.bind_socket = bind_tcp  # type: ignore[method-assign]
    if spec.get("path"):
        sys.path.insert(0, spec["path"])
    uvicorn.run(
        spec["app"],
        factory=spec["factory"],
        workers=spec["workers"],
        host="127.0.0.1",
        port=spec["port"],
        log_level="info",
    )


def run_child(mode: str, spec: dict[str, Any]) -> dict[str, Any]:
    """This script in another process (--generate or --bare), the spec on stdin, figures on stdout."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), mode],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=spec["duration"] + spec["warmup"] + 180,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def config_name(backend: str, workers: int) -> str:
    return (
        f"{'SQLite' if backend == 'sqlite' else 'PostgreSQL'}, {workers} worker{'s' if workers > 1 else ''}"
    )


def measure_config(
    backend: str, workers: int, args: argparse.Namespace, pg_url: str | None
) -> dict[str, Any]:
    name = config_name(backend, workers)
    log(f"{name}: setting up")
    with tempfile.TemporaryDirectory(prefix="perkflow-http-bench-") as tmp:
        folder = Path(tmp)
        if backend == "sqlite":
            url = where = f"sqlite:///{folder / 'perkflow.sqlite'}"
            where = str(folder / "perkflow.sqlite")
            pg = None
        else:
            assert pg_url is not None
            reset_postgres(pg_url)
            url, where = pg_url, pg_url
            pg = postgres_facts(pg_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERKFLOW_")}
        env.update(PERKFLOW_DATABASE_URL=url, PERKFLOW_DATA_DIR=str(folder / "data"), PYTHONUNBUFFERED="1")
        # The load comes from one address and one key, far past the default rate limits.
        env.update(PERKFLOW_RATE_PER_KEY="0", PERKFLOW_RATE_PER_ADDRESS="0")
        perkflow(["db", "upgrade"], env)
        submitted = json.loads(perkflow(["publish", str(SCHEME), "--author", "bench-author", "--json"], env))
        perkflow(["approve", str(submitted["id"]), "--approver", "bench-approver", "--json"], env)
        scopes = ["--scope", "events:write", "--scope", "members:write", "--scope", "members:read"]
        token = json.loads(perkflow(["keys", "create", "bench", *scopes, "--json"], env))["token"]
        (folder / "perkflow_bench_empty.py").write_text(EMPTY_APP)
        me = [sys.executable, str(Path(__file__).resolve())]
        ports = {kind: free_port() for kind in SIDES}
        started = {
            "engine": Server(
                "engine",
                [
                    sys.executable,
                    "-m",
                    "perkflow",
                    "serve",
                    "--api-only",
                    "--workers",
                    str(workers),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ports["engine"]),
                ],
                env,
                ports["engine"],
                folder,
            ),
            "empty": Server(
                "empty",
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "perkflow_bench_empty:app",
                    "--app-dir",
                    str(folder),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ports["empty"]),
                    "--workers",
                    str(workers),
                    "--log-level",
                    "info",
                ],
                env,
                ports["empty"],
                folder,
            ),
        }
        if args.metrics:
            # The same server with PERKFLOW_METRICS_TOKEN set: everything /metrics counts is counted.
            port = ports["engine_metrics"]
            argv = [*started["engine"].process.args[:-1], str(port)]  # type: ignore[index]
            started["engine_metrics"] = Server("engine_metrics", argv, {**env, "PERKFLOW_METRICS_TOKEN": METRICS_TOKEN}, port, folder)
        if workers > 1 and args.nodelay:
            nodelay = {"workers": workers}
            started["engine_nodelay"] = Server(
                "engine_nodelay",
                [
                    *me,
                    "--serve-nodelay",
                    json.dumps(
                        {
                            **nodelay,
                            "app": "perkflow.app:api_factory",
                            "factory": True,
                            "port": ports["engine_nodelay"],
                        }
                    ),
                ],
                env,
                ports["engine_nodelay"],
                folder,
            )
            started["empty_nodelay"] = Server(
                "empty_nodelay",
                [
                    *me,
                    "--serve-nodelay",
                    json.dumps(
                        {
                            **nodelay,
                            "app": "perkflow_bench_empty:app",
                            "factory": False,
                            "port": ports["empty_nodelay"],
                            "path": str(folder),
                        }
                    ),
                ],
                env,
                ports["empty_nodelay"],
                folder,
            )
        kinds = [k for k in SIDES if k in started or k == "bare"]
        with servers(*started.values()):
            create_members(ports["engine"], token, args.members)
            template = purchase("template-1", member_id(0), random.Random(0), 2500)
            status, decision = request(ports["engine"], "POST", "/api/v1/events", token, template)
            if status != 201:
                raise SystemExit(f"the first event failed: {status} {decision}")
            cpu_pg = (
                {"postmaster": pg["postmaster"], "database": pg["database"]}
                if pg and pg["postmaster"]
                else None
            )
            common = {"duration": args.duration, "warmup": args.warmup, "members": args.members}
            bare_spec = {
                **common,
                **schema_facts(backend, where, "template-1"),
                "backend": backend,
                "connections": workers,
                "decision": decision,
                "path": where if backend == "sqlite" else None,
                "dsn": dsn(where) if backend == "postgresql" else None,
                "cpu": {"pg": cpu_pg},
            }
            # The same writes, checked: one bare transaction writes the rows the engine's event wrote.
            probe = Bare(bare_spec)
            probe.apply(purchase("bare-probe", member_id(1), random.Random(1), 2500))
            probe.close()
            engine_rows = rows_written(backend, where, "template-1")
            bare_rows = rows_written(backend, where, "bare-probe")
            if engine_rows != bare_rows:
                raise SystemExit(
                    "the bare transaction does not write what the engine writes: "
                    f"{engine_rows} vs {bare_rows}"
                )

            def side(kind: str, r: int) -> dict[str, Any]:
                if kind == "bare":
                    return run_child("--bare", {**bare_spec, "prefix": f"b{r}"})
                return run_child(
                    "--generate",
                    {
                        **common,
                        "host": "127.0.0.1",
                        "port": ports[kind],
                        "token": token,
                        "prefix": f"{kind}{r}",
                        "connections": workers * args.connections_per_worker,
                        "cpu": {
                            "trees": [started[kind].process.pid],
                            "pg": cpu_pg if kind.startswith("engine") else None,
                        },
                    },
                )

            rounds: list[dict[str, Any]] = []
            for r in range(args.rounds):
                k = r % len(kinds)
                order = kinds[k:] + kinds[:k]
                here: dict[str, Any] = {kind: side(kind, r) for kind in order}
                here["order"] = order
                rounds.append(here)
                log(
                    f"{name}: round {r + 1}/{args.rounds}: "
                    + ", ".join(
                        f"{kind} {here[kind]['count'] / here[kind]['elapsed_s']:.0f}/s" for kind in kinds
                    )
                )
            writers = [kind for kind in kinds if kind.startswith("engine") or kind == "bare"]
            expected = 2 + sum(rnd[kind]["ok_total"] for rnd in rounds for kind in writers)
        stored = count_rows(backend, where)
    return {
        "name": name,
        "backend": backend,
        "workers": workers,
        "sides": kinds,
        "http_connections": workers * args.connections_per_worker,
        "bare_connections": workers,
        "postgres": pg["settings"] if pg else None,
        "db_cpu_measured": cpu_pg is not None,
        "rounds": [
            {
                k: ({kk: vv for kk, vv in v.items() if kk != "latencies"} if isinstance(v, dict) else v)
                for k, v in rnd.items()
            }
            for rnd in rounds
        ],
        "summary": {kind: side_summary([rnd[kind] for rnd in rounds]) for kind in kinds},
        "ratios": {
            f"{a}/{b}": ratios(rounds, a, b)
            for a, b in (
                ("engine_metrics", "engine"),
                ("engine", "bare"),
                ("engine_nodelay", "bare"),
                ("engine", "empty"),
                ("engine_nodelay", "empty_nodelay"),
            )
            if a in kinds and b in kinds
        },
        "errors": {kind: sum(sum(rnd[kind]["errors"].values()) for rnd in rounds) for kind in kinds},
        "first_errors": {
            kind: next((rnd[kind]["first_error"] for rnd in rounds if rnd[kind]["first_error"]), "")
            for kind in kinds
        },
        "events_stored": stored["events"],
        "events_expected": expected,
        "lots_per_member": stored["lots"] / max(stored["members"], 1),
        "rows_per_event": engine_rows,
    }


def side_summary(samples: list[dict[str, Any]]) -> dict[str, float]:
    """Rates and CPU: the median over the rounds. Latencies: percentiles of every request of every
    round (a round of an engine side holds too few requests for its own p99)."""

    def med(f: Callable[[dict[str, Any]], float]) -> float:
        return statistics.median(f(s) for s in samples)

    def per_event(key: str) -> Callable[[dict[str, Any]], float]:
        return lambda s: s[key] / s["count"] * 1e6 if s["count"] else float("nan")

    latencies = sorted(x for s in samples for x in s["latencies"])
    return {
        "events_per_s": med(lambda s: s["count"] / s["elapsed_s"]),
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "requests": len(latencies),
        "app_cpu_us": med(per_event("app_cpu_s")),
        "db_cpu_us": med(per_event("db_cpu_s")),
        "gen_cpu_us": med(per_event("self_cpu_s")),
        "machine_busy_cores": med(lambda s: s["machine_busy_s"] / s["elapsed_s"]),
        "other_cores": med(
            lambda s: (
                (s["machine_busy_s"] - s["app_cpu_s"] - s["db_cpu_s"] - s["self_cpu_s"]) / s["elapsed_s"]
            )
        ),
        "min_events_per_s": min(s["count"] / s["elapsed_s"] for s in samples),
        "max_events_per_s": max(s["count"] / s["elapsed_s"] for s in samples),
    }


def ratios(rounds: list[dict[str, Any]], a: str, b: str) -> dict[str, float]:
    """a's rate ÷ b's rate in the same round: the median, the least and the most."""
    values = [
        (rnd[a]["count"] / rnd[a]["elapsed_s"]) / (rnd[b]["count"] / rnd[b]["elapsed_s"])
        for rnd in rounds
        if rnd[b]["count"]
    ]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# --------------------------------------------------------------------------------------------------
# Output


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("uvicorn", "starlette", "SQLAlchemy", "psycopg", "h11", "httptools", "uvloop"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "-"
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def calibration() -> float:
    """µs for `sum(range(1000))`, best of 5, as benchmarks/engine.py reports it (a current desktop
    takes about 6 µs): how fast this machine runs Python, to compare runs made on different machines."""
    import timeit

    return min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6


def _f(x: float | None, digits: int = 0, none: str = "-") -> str:
    if x is None or x != x:  # None or NaN
        return none
    return f"{x:,.{digits}f}"


def render(report: dict[str, Any]) -> str:
    s, v, machine = report["settings"], report["versions"], report["machine"]
    lines = [
        "Perkflow HTTP benchmark (benchmarks/http.py)",
        "",
        f"machine: {machine['cores']} cores, {machine['cpu']}, "
        f"sum(range(1000)) in {machine['calibration_us']:.1f} µs; "
        f"Python {v['python']}; uvicorn {v['uvicorn']} (h11 {v['h11']}, httptools {v['httptools']}, "
        f"uvloop {v['uvloop']}), Starlette {v['starlette']}, SQLAlchemy {v['SQLAlchemy']}, "
        f"psycopg {v['psycopg']}",
        f"rounds: {s['rounds']} of {s['duration']:g} s per side (after {s['warmup']:g} s of warm-up), "
        "the sides interleaved, the order rotating each round;",
        "  events/s and CPU: medians over the rounds; p50 / p99: over every request of every round",
        f"load: {s['connections_per_worker']} keep-alive http.client connections per worker, from one "
        "separate process; bare: one connection per worker, each in its own process;",
        f"  {s['members']:,} members, purchases of the coffee scheme with unique ids for random members",
        "CPU µs per event, from /proc over each window: app = the server's processes (the bare driver's "
        "for the bare side),",
        "  db = PostgreSQL's backends for this database's connections, gen = the load generator; "
        "others = cores busy with anything else on the machine",
        "TCP_NODELAY rows (2 workers): the same app under uvicorn with its listener marked IPPROTO_TCP "
        "(uvicorn issue #3149);",
        "  `perkflow serve --workers N` and `uvicorn --workers N` leave Nagle on: ~40 ms more per kept-alive "
        "request",
    ]
    for note in report["notes"]:
        lines.append(f"note: {note}")
    header = (
        f"  {'':<22} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'app µs':>8} {'db µs':>7} "
        f"{'app+db µs':>10} {'gen µs':>7} {'others':>7}"
    )
    for config in report["configs"]:
        lines += [
            "",
            f"{config['name']}  (HTTP: {config['http_connections']} connections; "
            f"bare: {config['bare_connections']} connection{'s' if config['bare_connections'] > 1 else ''})",
        ]
        if config.get("postgres"):
            p = config["postgres"]
            lines.append(
                f"  PostgreSQL {p['server_version']}, synchronous_commit={p['synchronous_commit']}, "
                f"fsync={p['fsync']}, "
                f"shared_buffers={p['shared_buffers']}"
            )
        lines.append(header)
        for kind in config["sides"]:
            m = config["summary"][kind]
            db = m["db_cpu_us"] if config["db_cpu_measured"] and not kind.startswith("empty") else None
            lines.append(
                f"  {LABELS[kind]:<22} {_f(m['events_per_s']):>9} "
                f"{_f(m['p50_ms'], 2):>8} {_f(m['p99_ms'], 2):>8} "
                f"{_f(m['app_cpu_us']):>8} {_f(db):>7} {_f(m['app_cpu_us'] + (db or 0.0)):>10} "
                f"{_f(m['gen_cpu_us']) if kind != 'bare' else '-':>7} {_f(m['other_cores'], 2):>7}"
            )
        targeted = config["backend"] == "postgresql" and config["workers"] == 2
        for key, label in RATIOS.items():
            if key not in config["ratios"]:
                continue
            r = config["ratios"][key]
            verdict = ""
            if key == "engine/bare":
                verdict = (
                    f"  target >= {TARGET_RATIO:g}: {'PASS' if r['median'] >= TARGET_RATIO else 'MISS'}"
                    if targeted
                    else "  (the target is for PostgreSQL, 2 workers)"
                )
            lines.append(
                f"  {label:<34} {r['median']:.2f}  (rounds {r['min']:.2f} to {r['max']:.2f}){verdict}"
            )
        lines.append(
            f"  events stored {config['events_stored']:,} (answered 2xx: {config['events_expected']:,}); "
            f"{config['lots_per_member']:.1f} lots per member at the end; errors: "
            + ", ".join(f"{k} {config['errors'][k]}" for k in config["sides"])
        )
        for kind in config["sides"]:
            if config["first_errors"][kind]:
                lines.append(f"  first {kind} error: {config['first_errors'][kind][:300]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, help="rounds per configuration (default 10; --quick 2)")
    parser.add_argument(
        "--duration", type=float, help="seconds of load per side and round (default 1.5; --quick 1)"
    )
    parser.add_argument(
        "--warmup", type=float, help="seconds of warm-up before each window (default 0.3; --quick 0.2)"
    )
    parser.add_argument(
        "--members", type=int, help="members created before the rounds (default 2000; --quick 200)"
    )
    parser.add_argument(
        "--connections-per-worker", type=int, default=2, help="HTTP connections per worker (default 2)"
    )
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated (default 1,2)")
    parser.add_argument(
        "--no-nodelay",
        dest="nodelay",
        action="store_false",
        help="skip the TCP_NODELAY servers of the configurations with several workers",
    )
    parser.add_argument(
        "--metrics", action="store_true", help="add the engine with metrics on (PERKFLOW_METRICS_TOKEN set) as a side"
    )
    parser.add_argument("--quick", action="store_true", help="2 rounds of 1 s and 200 members: a smoke test")
    parser.add_argument(
        "--sqlite-only", action="store_true", help="SQLite only, even when a PostgreSQL URL is set"
    )
    parser.add_argument("--postgres-only", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--postgres-url",
        help="the PostgreSQL database to use (its schema public is dropped); "
        "default: PERKFLOW_TEST_POSTGRES_URL "
        f"with the database {BENCH_DATABASE}",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-nodelay", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve_nodelay:
        serve_nodelay(json.loads(args.serve_nodelay))
        return 0
    if args.generate or args.bare:
        spec = json.loads(sys.stdin.read())
        print(json.dumps(generate(spec) if args.generate else bare_run(spec)))
        return 0

    args.rounds = args.rounds or (2 if args.quick else 10)
    args.duration = args.duration or (1.0 if args.quick else 1.5)
    args.warmup = args.warmup if args.warmup is not None else (0.2 if args.quick else 0.3)
    args.members = args.members or (200 if args.quick else 2000)
    worker_counts = [int(x) for x in args.workers.split(",") if x.strip()]
    notes: list[str] = []
    pg_url = None if args.sqlite_only else bench_postgres_url(args.postgres_url)
    backends = [] if args.postgres_only else ["sqlite"]
    if pg_url:
        backends.append("postgresql")
    elif not args.sqlite_only:
        notes.append("PostgreSQL not measured: pass --postgres-url or set PERKFLOW_TEST_POSTGRES_URL")
    started = time.monotonic()
    report: dict[str, Any] = {
        "machine": {
            "cores": os.cpu_count(),
            "cpu": cpu_model(),
            "platform": platform.platform(),
            "calibration_us": calibration(),
        },
        "versions": versions(),
        "settings": {
            "rounds": args.rounds,
            "duration": args.duration,
            "warmup": args.warmup,
            "members": args.members,
            "connections_per_worker": args.connections_per_worker,
            "workers": worker_counts,
        },
        "notes": notes,
        "configs": [],
    }
    for backend in backends:
        for workers in worker_counts:
            report["configs"].append(measure_config(backend, workers, args, pg_url))
    for config in report["configs"]:
        if config["events_stored"] != config["events_expected"]:
            notes.append(
                f"{config['name']}: {config['events_stored']} events stored, "
                f"{config['events_expected']} answered 2xx"
            )
    report["run_seconds"] = time.monotonic() - started
    print(json.dumps(report, indent=2) if args.json else render(report))
    failed = sum(sum(c["errors"].values()) for c in report["configs"])
    if failed:
        log(f"{failed} requests or transactions failed: see the errors above")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
