"""Reports benchmark (issue 10): fill a database with realistic members, then time every report.

    .venv/bin/python benchmarks/reports.py fill --url sqlite:///bench.sqlite --members 100000
    .venv/bin/python benchmarks/reports.py fill --url postgresql+psycopg://postgres@127.0.0.1/perkflow_reports_bench --members 1000000
    .venv/bin/python benchmarks/reports.py time --url sqlite:///bench.sqlite [--rounds 3] [--json]
    .venv/bin/python benchmarks/reports.py --quick     # a small fill and timing on SQLite (the smoke test)

`fill` makes each member's events (a signup, purchases at the member's own pace, a few refunds and
reward redemptions) and evaluates them with the pure engine in memory, under the coffee example's
scheme, so every ledger row, lot, coupon, tier change and campaign group is what the service would
have written. The rows are then bulk-loaded: COPY on PostgreSQL, executemany on SQLite. Events are
stored with their body and an empty decision (the reports never read decisions). It checks the free
disk space first. It runs outside CI; figures are printed, never asserted.

Members are made in chunks of 5,000, each with its own seeded random stream, by `--processes`
worker processes (default: one per core) that each write their chunks; the data does not depend on
the number of processes. A budget of the scheme (a campaign's points, a coupon's count) is shared
out between the chunks in equal parts, so the members of every chunk meet an exhausted budget, as
they would in a service, and the total never exceeds it. On PostgreSQL the secondary indexes are
dropped for the load and built again after it (the same definitions, read from pg_indexes).
About 20 ledger rows a member: 1,000,000 members make about 20,000,000 ledger rows.

`time` runs every report with no filter and then with one filter at a time (a store, a tier, a
channel, a campaign, day buckets) and prints the median of the rounds in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# benchmarks/http.py would shadow the standard library's http (which httpx imports) while this
# folder is first on sys.path, as it is when this file runs as a script
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.engine import make_url

from perkflow.engine import Decision, Event, Program, compile, evaluate, new_member, next_due
from perkflow.engine.exposure import campaign_groups, campaign_rules
from perkflow.rules.load import loads
from perkflow.service.core import Service
from perkflow.service.crypto import load_keys
from perkflow.storage import migrate
from perkflow.storage import tables as t
from perkflow.storage.db import open_engine
from perkflow.storage.reports import REPORTS, Filters, rollup, run
from perkflow.storage.reports.segments import recompute_segments

ROOT = Path(__file__).resolve().parent.parent
COFFEE = ROOT / "examples" / "coffee" / "scheme.yaml"
TZ = ZoneInfo("Asia/Shanghai")
FIRST_SIGNUP = datetime(2025, 1, 1, tzinfo=TZ)
LAST_SIGNUP = datetime(2026, 9, 30, tzinfo=TZ)
END = datetime(2026, 11, 1, tzinfo=TZ)  # the fill's "now": events stop here, reports are as of it
STORES = ("sh-jingan", "sh-lujiazui", "hz-xihu", "hz-binjiang", "bj-sanlitun", "sz-nanshan")
CHANNELS = ("pos", "app", "mini")
BYTES_PER_LEDGER_ROW = 900  # rows of every table and their indexes, per ledger row, measured on PostgreSQL, with margin
CHUNK = 5000  # members evaluated and written at a time


# --- fill ----------------------------------------------------------------------------------------


def _program() -> Program:
    loaded = loads(COFFEE.read_text(), "scheme.yaml")
    assert loaded.scheme is not None, loaded.errors
    return compile(loaded.scheme)


def _member_events(rng: random.Random, n: int) -> list[Event]:
    """One member's events in time order: signup, purchases at their own pace, refunds, redemptions."""
    member = f"bench-{n:07d}"
    store = STORES[n % len(STORES)]
    joined = FIRST_SIGNUP + timedelta(seconds=rng.randrange(int((LAST_SIGNUP - FIRST_SIGNUP).total_seconds())))
    events = [Event(f"su-{n}", "signup", member, joined, store, rng.choice(CHANNELS), {})]
    gap_days = rng.choice((7, 10, 14, 21, 30, 45))  # the member's own pace
    lapse = joined + timedelta(days=rng.expovariate(1 / 130))  # when they stop coming
    at, k = joined, 0
    while True:
        at += timedelta(days=rng.expovariate(1 / gap_days), hours=rng.uniform(-3, 3))
        if at >= min(END, lapse):
            break
        k += 1
        amount = int(math.exp(rng.gauss(math.log(3000), 0.5)))
        event_id = f"pos-{n}-{k}"
        events.append(Event(event_id, "purchase", member, at, store, rng.choice(CHANNELS), {"amount": amount, "items": []}))
        if rng.random() < 0.02:
            events.append(Event(f"rf-{n}-{k}", "refund", member, at + timedelta(hours=2), store, "pos", {"original_event_id": event_id, "amount": amount}))
        if k % 12 == 0:
            events.append(Event(f"rw-{n}-{k}", "reward_redemption", member, at + timedelta(minutes=5), store, "app", {"reward": "ten-off"}))
    return events


class Rows:
    """The rows one chunk of members adds to each table."""

    def __init__(self) -> None:
        self.by_table: dict[str, list[dict[str, Any]]] = {name: [] for name in (
            "members", "member_balances", "lots", "ledger", "earnings", "coupons", "events", "tier_history", "campaign_members",
        )}

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.by_table[table].append(row)


def _evaluate_member(program: Program, owners: dict[str, str], budgets: dict[str, int], pk: int, events: list[Event], rows: Rows) -> int:
    """Evaluate one member's events as the service would and add the rows it would write; the
    number of ledger rows."""
    signup = events[0]
    state = new_member(signup.member_id, signup.occurred_at, tier=program.lowest_tier(), home_store=signup.store)
    ledger_rows = 0
    originals: dict[str, int] = {}
    groups: dict[str, tuple[str, datetime]] = {}

    def record(decision: Decision, event: Event) -> None:
        nonlocal ledger_rows
        for key, units in decision.budget_uses.items():
            budgets[key] = budgets.get(key, 0) + units
        rows.add("events", {
            "id": event.id, "member_id": pk, "external_member_id": event.member_id, "type": event.type, "occurred_at": event.occurred_at,
            "store": event.store, "channel": event.channel, "body": {"attributes": dict(event.attributes)}, "body_hash": "",
            "decision": {}, "version": decision.version, "source": "import", "recorded_at": event.occurred_at,
        })
        for e in decision.effects:
            if e.balance is not None:
                ledger_rows += 1
                rows.add("ledger", {
                    "member_id": pk, "event_id": event.id, "balance": e.balance, "part": e.part, "kind": e.kind, "amount": e.amount,
                    "debt": e.debt, "lots": [list(x) for x in e.lots], "rule": e.rule, "version": decision.version,
                    "occurred_at": event.occurred_at, "recorded_at": event.occurred_at,
                })
                if e.kind == "earn":
                    originals.update({lot_id: units for lot_id, units in e.lots})
            elif e.kind == "tier_changed":
                rows.add("tier_history", {"member_id": pk, "event_id": event.id, "from_tier": e.previous_tier, "to_tier": e.tier, "reason": e.reason or "", "at": event.occurred_at})
        for campaign, group in campaign_groups(owners, decision).items():
            groups.setdefault(campaign, (group, event.occurred_at))

    def advance(until: datetime) -> None:
        nonlocal state
        while batch := next_due(program, state, until):
            for due in batch:
                decision = evaluate(program, state, due, budgets)
                record(decision, due)
                state = decision.state

    windows = [(c.start.replace(tzinfo=program.tz), c.end.replace(tzinfo=program.tz)) for c in program.scheme.campaigns]
    for event in events:
        advance(event.occurred_at)
        # the trace only matters where a campaign draws its groups; it changes no decision
        traced = any(start <= event.occurred_at < end for start, end in windows)
        decision = evaluate(program, state, event, budgets, trace=traced)
        if decision.rejection is not None:
            continue
        record(decision, event)
        state = decision.state
    advance(END)
    rows.add("members", {
        "id": pk, "external_id": state.member_id, "status": "active", "home_store": state.home_store, "joined_at": state.joined_at,
        "tags": sorted(state.tags), "attributes": {}, "tier": state.tier, "tier_since": state.tier_since, "tier_review_at": state.tier_review_at,
        "grace_until": state.grace_until, "counters": {}, "caps": {}, "rewards": dict(state.rewards), "last_event_at": state.last_event_at,
        "created_at": state.joined_at, "updated_at": END, "last_purchase_at": state.last_purchase_at,
    })
    for balance in program.balances:
        if state.lots.get(balance) or state.debts.get(balance):
            rows.add("member_balances", {"member_id": pk, "balance": balance, "total": state.balance(balance), "debt": state.debts.get(balance, 0)})
        for lot in state.lots.get(balance, ()):
            rows.add("lots", {
                "id": lot.id, "member_id": pk, "balance": lot.balance, "part": lot.part, "amount": lot.amount,
                "original": originals.get(lot.id, lot.amount), "earned_at": lot.earned_at, "expires_at": lot.expires_at,
                "available_at": lot.available_at, "source_event": lot.source, "rule": lot.rule,
            })
    for c in state.coupons:
        rows.add("coupons", {
            "id": c.id, "member_id": pk, "policy": c.policy, "code": None, "issued_at": c.issued_at, "valid_from": c.valid_from,
            "valid_until": c.valid_until, "source_event": c.source, "rule": c.rule, "redeemed_at": c.redeemed_at,
            "redeemed_by": c.redeemed_by, "voided": c.voided,
        })
    for e in state.earnings.values():
        rows.add("earnings", {
            "event_id": e.event_id, "member_id": pk, "event_type": e.event_type, "amount": e.amount, "refunded": e.refunded,
            "earned": [list(x) for x in e.earned], "lots": list(e.lots),
        })
    for campaign, (group, at) in groups.items():
        rows.add("campaign_members", {"campaign": campaign, "member_id": pk, "grp": group, "first_at": at})
    return ledger_rows


def _copy(engine: Engine, rows: Rows) -> None:
    """PostgreSQL: COPY each table's rows (instants as ISO text, JSON as text)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for name, items in rows.by_table.items():
            if not items:
                continue
            columns = list(items[0])
            with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for item in items:
                    copy.write_row([json.dumps(v) if isinstance(v, dict | list) else v for v in item.values()])
        raw.commit()
    finally:
        raw.close()


def _insert(engine: Engine, rows: Rows) -> None:
    with engine.begin() as conn:
        for name, items in rows.by_table.items():
            if items:
                conn.execute(insert(t.metadata.tables[name]), items)


def _publish(engine: Engine, data_dir: Path) -> None:
    service = Service(engine, load_keys(data_dir, None), clock=lambda: FIRST_SIGNUP - timedelta(days=1))
    version = service.versions.submit(COFFEE.read_text(), author="bench")
    assert not hasattr(version, "code"), version
    if getattr(version, "status", "") == "submitted":
        approved = service.versions.approve(version.id, approver="bench-approver")  # type: ignore[union-attr]
        assert not hasattr(approved, "code"), approved


def _free_bytes(url: str) -> int:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        folder = Path(parsed.database or ".").resolve().parent
        folder.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(folder).free
    # a local PostgreSQL: its data directory is on this machine's root file system
    return shutil.disk_usage("/").free


def _limits(program: Program) -> dict[str, int]:
    """The scheme's budgets by key, as the engine names them; a budget per period or store has a
    key per period or store, which chunks cannot share out ahead, so such a scheme is refused."""
    scheme = program.scheme
    out: dict[str, int] = {}
    for c in scheme.campaigns:
        if c.budget is not None:
            out[f"campaign:{c.id}"] = c.budget.limit
            if c.budget.liability is not None:
                out[f"campaign_value:{c.id}"] = c.budget.liability
    for policy_id, policy in scheme.coupons.items():
        if policy.budget_per is not None or policy.budget_by_store:
            sys.exit(f"coupon '{policy_id}' has a budget per period or store: the fill cannot share it out between chunks")
        if policy.budget is not None:
            out[f"coupon:{policy_id}"] = policy.budget
        if policy.money_budget is not None:
            out[f"coupon_value:{policy_id}"] = policy.money_budget
    for reward_id, reward in scheme.rewards.items():
        if reward.stock is not None:
            out[f"reward:{reward_id}"] = reward.stock
    return out


_WORKER: dict[str, Any] = {}


def _start_worker(url: str, writing: Any) -> None:
    _WORKER["writing"] = writing
    _WORKER["engine"] = open_engine(url)
    _WORKER["program"] = program = _program()
    _WORKER["owners"] = campaign_rules(program.scheme)
    _WORKER["limits"] = _limits(program)


def _fill_chunk(job: tuple[int, int, int, int, int]) -> tuple[int, int, dict[str, int], float, float]:
    """Evaluate and write one chunk of members; its ledger rows, events, budget uses and times."""
    chunk, chunks, first, last, seed = job
    engine: Engine = _WORKER["engine"]
    program: Program = _WORKER["program"]
    # this chunk's share of each budget: the rest counts as used by the other chunks
    taken = {key: limit - (limit // chunks + (1 if chunk < limit % chunks else 0)) for key, limit in _WORKER["limits"].items()}
    budgets = dict(taken)
    rng = random.Random(f"{seed}:{chunk}")
    rows = Rows()
    tick = time.perf_counter()
    ledger_rows = sum(_evaluate_member(program, _WORKER["owners"], budgets, n + 1, _member_events(rng, n), rows) for n in range(first, last))
    evaluated = time.perf_counter() - tick
    tick = time.perf_counter()
    if engine.dialect.name == "postgresql":
        _copy(engine, rows)
    else:
        with _WORKER["writing"]:  # one writer at a time: SQLite's own lock would time out on a long chunk
            _insert(engine, rows)
    uses = {key: used - taken.get(key, 0) for key, used in budgets.items()}
    return ledger_rows, len(rows.by_table["events"]), uses, evaluated, time.perf_counter() - tick


BULK_TABLES = ("members", "member_balances", "lots", "ledger", "earnings", "coupons", "events", "tier_history", "campaign_members")


@contextmanager
def _indexes_dropped(engine: Engine) -> Iterator[None]:
    """PostgreSQL: drop the loaded tables' secondary indexes (not those of a key or a unique
    constraint) and build them again afterwards, which is faster than keeping them up row by row."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.begin() as conn:
        definitions = conn.execute(text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() AND i.tablename = ANY(:tables) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
        ), {"tables": list(BULK_TABLES)}).all()
        for name, _ in definitions:
            conn.execute(text(f'DROP INDEX "{name}"'))
    yield
    tick = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("SET maintenance_work_mem = '1GB'"))
        for _, definition in definitions:
            conn.execute(text(definition))
    print(f"  {len(definitions)} indexes built again in {time.perf_counter() - tick:.1f} s", file=sys.stderr, flush=True)


def fill(url: str, members: int, seed: int = 1, processes: int | None = None) -> dict[str, Any]:
    need = members * 25 * BYTES_PER_LEDGER_ROW
    free = _free_bytes(url)
    if free < 2 * need:
        sys.exit(f"not enough disk: {members} members need about {need / 2**30:.1f} GiB, twice that must be free, {free / 2**30:.1f} GiB is")
    engine = open_engine(url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(t.members)).scalar():
            sys.exit(f"{url} already holds members: fill an empty database")
    with tempfile.TemporaryDirectory() as data_dir:
        _publish(engine, Path(data_dir))
    chunks = -(-members // CHUNK)
    jobs = [(c, chunks, c * CHUNK, min((c + 1) * CHUNK, members), seed) for c in range(chunks)]
    processes = max(1, min(processes or os.cpu_count() or 1, chunks))
    started = time.perf_counter()
    evaluated = loaded = 0.0
    ledger_rows = events = done = 0
    budgets: dict[str, int] = {}
    forked = multiprocessing.get_context("fork")
    with _indexes_dropped(engine), forked.Pool(processes, _start_worker, (url, forked.Lock())) as pool:
        for rows, made, uses, evaluate_s, load_s in pool.imap_unordered(_fill_chunk, jobs):
            ledger_rows, events, done = ledger_rows + rows, events + made, done + 1
            evaluated, loaded = evaluated + evaluate_s, loaded + load_s
            for key, used in uses.items():
                budgets[key] = budgets.get(key, 0) + used
            elapsed = time.perf_counter() - started
            print(f"  {min(done * CHUNK, members):>9} members, {ledger_rows:>11} ledger rows, {elapsed:7.1f} s, "
                  f"{min(done * CHUNK, members) / elapsed:6.0f} members/s", file=sys.stderr, flush=True)
    with engine.begin() as conn:
        for key, used in budgets.items():
            conn.execute(update(t.budgets).where(t.budgets.c.key == key).values(used=min(used, 2**62)))
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('members', 'id'), (SELECT max(id) FROM members))"))
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return {
        "members": members, "events": events, "ledger_rows": ledger_rows, "processes": processes,
        "evaluate_cpu_s": round(evaluated, 1), "load_s": round(loaded, 1), "wall_s": round(time.perf_counter() - started, 1),
    }


# --- time ----------------------------------------------------------------------------------------


def _variants(program: Program) -> Iterator[tuple[str, Filters]]:
    period = {"start": date(2025, 11, 1), "end": date(2026, 10, 31)}
    yield "no period (the day's)", Filters()
    yield "no filter", Filters(**period)
    yield "store", Filters(**period, stores=frozenset({STORES[0]}))
    yield "tier", Filters(**period, tier="gold")
    yield "channel", Filters(**period, channel="app")
    yield "campaign", Filters(**period, campaign=program.scheme.campaigns[0].id)
    yield "day buckets, 1 month", Filters(start=date(2026, 10, 1), end=date(2026, 10, 31), bucket="day")


def time_reports(url: str, rounds: int) -> dict[str, dict[str, float]]:
    engine = open_engine(url)
    migrate.upgrade(engine)  # a database filled by an earlier version gets the tables the reports read
    program = _program()
    as_of = END.astimezone(UTC)
    out: dict[str, dict[str, float]] = {}
    tick = time.perf_counter()  # what `perkflow tick` does once a day: here every closed day at once
    built = rollup.build(engine, program.scheme.timezone, as_of, as_of, full=True)
    out["_rollup"] = {"full build s": round(time.perf_counter() - tick, 1), "days": float(built.days)}
    tick = time.perf_counter()
    rollup.build(engine, program.scheme.timezone, as_of + timedelta(days=1), as_of)
    out["_rollup"]["next day s"] = round(time.perf_counter() - tick, 2)
    tick = time.perf_counter()  # the daily segment run of the as-of day, which the day's rfm report reads
    with engine.begin() as conn:
        segmented = recompute_segments(conn, program.scheme, as_of.astimezone(TZ).date(), as_of)
    out["_rollup"]["segment run s"] = round(time.perf_counter() - tick, 1)
    out["_rollup"]["segmented"] = float(segmented)
    with engine.connect() as conn:
        sizes = {name: conn.execute(select(func.count()).select_from(t.metadata.tables[name])).scalar() for name in ("members", "ledger", "events", "lots")}
        for name in REPORTS:
            out[name] = {}
            for label, filters in _variants(program):
                seconds = []
                for _ in range(rounds):
                    tick = time.perf_counter()
                    run(name, conn, program.scheme, as_of, filters)
                    seconds.append(time.perf_counter() - tick)
                out[name][label] = round(statistics.median(seconds) * 1000, 1)
        out["flows, ledger only"] = {}  # the same flows without the rollup, for comparison
        for label, filters in _variants(program):
            seconds = []
            for _ in range(rounds):
                tick = time.perf_counter()
                run("flows", conn, program.scheme, as_of, replace(filters, rollups=False))
                seconds.append(time.perf_counter() - tick)
            out["flows, ledger only"][label] = round(statistics.median(seconds) * 1000, 1)
    engine.dispose()
    out["_sizes"] = {k: float(v or 0) for k, v in sizes.items()}
    return out


def _print_times(url: str, figures: dict[str, dict[str, float]], rounds: int) -> None:
    sizes = figures["_sizes"]
    print(f"Perkflow reports benchmark: {make_url(url).get_backend_name()}, {int(sizes['members'])} members, "
          f"{int(sizes['ledger'])} ledger rows, {int(sizes['events'])} events, {int(sizes['lots'])} lots; median of {rounds} rounds, ms")
    labels = [label for label, _ in _variants(_program())]
    print(f"{'report':<19}" + "".join(f"{label:>22}" for label in labels))
    for name in (*REPORTS, "flows, ledger only"):
        print(f"{name:<19}" + "".join(f"{figures[name][label]:>22.1f}" for label in labels))
    print(f"rollup: {figures['_rollup']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", choices=("fill", "time"))
    parser.add_argument("--url")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--processes", type=int, help="worker processes for fill (default: one per core)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="fill 300 members into a temporary SQLite file and time the reports once")
    args = parser.parse_args()
    if args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.sqlite"
            print(json.dumps(fill(url, 300)))
            figures = time_reports(url, 1)
            _print_times(url, figures, 1)
        return
    if args.command is None or args.url is None:
        parser.error("give a command (fill or time) and --url, or --quick")
    if args.command == "fill":
        print(json.dumps(fill(args.url, args.members, processes=args.processes)))
    else:
        figures = time_reports(args.url, args.rounds)
        if args.json:
            print(json.dumps(figures))
        else:
            _print_times(args.url, figures, args.rounds)


if __name__ == "__main__":
    main()
