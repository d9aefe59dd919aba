"""Personal-data benchmark: what encryption costs on the event and member paths, and lookup by
phone through the blind index at a million members on PostgreSQL.

    .venv/bin/python benchmarks/privacy.py                 # both parts (lookup: 1,000,000 members)
    .venv/bin/python benchmarks/privacy.py --quick         # the smoke test's short run, SQLite only

1. Event path, encryption on and off. Two databases of the same kind (SQLite files; PostgreSQL too
   with --postgres-url), the coffee example scheme published in each, --members members each: "on"
   made with phone, email, name and birthday (AES-GCM and two blind indexes each), "off" with none.
   Each round posts --events purchase events through `EventService.post` to each side and PUTs
   --events member updates (phone and email, or tags only), the sides' order alternating from round
   to round. Figures: the median over the rounds of µs per operation, and on/off as the median of the
   per-round ratios. Events never touch personal data, so their two sides should match; the PUT
   shows what encrypting costs where it happens.
2. Lookup by phone at --lookup-members members (default 1,000,000) on PostgreSQL, in a database of
   its own (`perkflow_pii_bench` on the server of --postgres-url, created if missing, reused when
   it already holds that many members). Members are bulk-loaded with COPY through psycopg, each with
   an encrypted phone and email and their blind indexes. Then `MemberService.find(phone=...)` (the
   API's lookup: normalise to E.164, HMAC, index probe, the member's row) for --lookups random
   members' phones, and the bare index query alone; p50 / p99 / max in ms.

Figures are printed, never asserted.
"""

from __future__ import annotations

import os
import sys

# benchmarks/http.py would shadow the standard library's `http` package, which httpx imports.
if sys.path and os.path.realpath(sys.path[0] or os.getcwd()) == os.path.dirname(os.path.realpath(__file__)):
    del sys.path[0]

import argparse  # noqa: E402
import base64  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

from sqlalchemy import create_engine, make_url, select, text  # noqa: E402

from perkflow.service.core import Service, open_service  # noqa: E402
from perkflow.service.crypto import new_key, parse_keys  # noqa: E402
from perkflow.storage import tables as t  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SCHEME = (REPO / "examples" / "coffee" / "scheme.yaml").read_text()
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BENCH_DATABASE = "perkflow_pii_bench"


class Clock:
    """Later than every benchmark event, so none is refused as future or late."""

    def __call__(self) -> datetime:
        return START + timedelta(days=300)


def phone(n: int) -> str:
    return f"13{n % 9 + 1}{n:08d}"


def publish(svc: Service) -> None:
    version = svc.versions.submit(SCHEME, author="bench-author")
    assert not hasattr(version, "code"), version
    if version.status == "submitted":  # type: ignore[union-attr]
        svc.versions.approve(version.id, approver="bench-approver")  # type: ignore[union-attr]


def side(url: str, data_dir: Path, members: int, personal: bool) -> Service:
    svc = open_service(url, data_dir, data_key=KEY, clock=Clock())
    publish(svc)
    for n in range(members):
        body = {"phone": phone(n), "email": f"m{n}@example.com", "name": f"会员 {n}", "birthday": "1990-05-17"} if personal else {}
        svc.members.put(f"m{n}", body, actor="bench")
    return svc


KEY = new_key()


def timed(fn: Callable[[], object], count: int) -> float:
    """µs per operation."""
    began = time.perf_counter()
    for _ in range(count):
        fn()
    return (time.perf_counter() - began) / count * 1e6


class Workload:
    def __init__(self, svc: Service, members: int, personal: bool, label: str) -> None:
        self.svc, self.members, self.personal, self.label = svc, members, personal, label
        self.n = 0
        self.rng = random.Random(label)

    def event(self) -> None:
        self.n += 1
        raw = {
            "id": f"{self.label}-{self.n}", "type": "purchase", "member_id": f"m{self.rng.randrange(self.members)}",
            "occurred_at": (START + timedelta(seconds=self.n)).isoformat(), "store": "sh-jingan", "channel": "pos",
            "attributes": {"amount": 1500, "items": [{"sku": "AMERICANO-M", "category": "coffee", "quantity": 1, "amount": 1500}]},
        }
        result = self.svc.events.post(raw)
        assert not hasattr(result, "code"), result

    def put(self) -> None:
        self.n += 1
        k = self.rng.randrange(self.members)
        body = {"phone": phone(k), "email": f"m{k}@example.com"} if self.personal else {"tags": ["bench"]}
        result = self.svc.members.put(f"m{k}", body, actor="bench")
        assert isinstance(result, tuple), result


def event_path(kind: str, url_for: Callable[[str], str], members: int, events: int, rounds: int, folder: Path) -> None:
    on = Workload(side(url_for("on"), folder / f"{kind}-on", members, True), members, True, f"{kind}-on")
    off = Workload(side(url_for("off"), folder / f"{kind}-off", members, False), members, False, f"{kind}-off")
    for w in (on, off):  # warm-up
        timed(w.event, 20)
        timed(w.put, 20)
    figures: dict[str, list[float]] = {"event on": [], "event off": [], "put on": [], "put off": []}
    for r in range(rounds):
        for w in (on, off) if r % 2 == 0 else (off, on):
            figures[f"event {'on' if w.personal else 'off'}"].append(timed(w.event, events))
            figures[f"put {'on' if w.personal else 'off'}"].append(timed(w.put, events))
    print(f"\n{kind}: {members} members a side, {events} operations a side a round, {rounds} rounds (median µs/op)")
    print(f"  machine load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"  {'path':<28}{'encryption on':>15}{'off':>10}{'on/off':>9}")
    for path, name in (("event", "POST event (purchase)"), ("put", "PUT member (phone, email)")):
        a, b = figures[f"{path} on"], figures[f"{path} off"]
        ratio = statistics.median(x / y for x, y in zip(a, b, strict=True))
        print(f"  {name:<28}{statistics.median(a):>15.0f}{statistics.median(b):>10.0f}{ratio:>9.2f}")
    for w in (on, off):
        w.svc.engine.dispose()


def _pg_url(base: str, database: str) -> str:
    return make_url(base).set(database=database).render_as_string(hide_password=False)


def _reset(base: str, database: str) -> str:
    url = _pg_url(base, database)
    admin = create_engine(_pg_url(base, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": database}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    return url


def bulk_load(svc: Service, count: int) -> None:
    keys, kid = svc.keys, svc.keys.current_id
    now = Clock()()
    columns = ("external_id", "status", "home_store", "joined_at", "tags", "attributes", "counters", "caps", "rewards",
               "key_id", "phone_cipher", "phone_index", "email_cipher", "email_index", "created_at", "updated_at")
    began = time.perf_counter()
    raw = svc.engine.raw_connection()
    try:
        cur = raw.driver_connection.cursor()  # type: ignore[union-attr]
        with cur.copy(f"COPY members ({', '.join(columns)}) FROM STDIN") as copy:
            for n in range(count):
                p, e = f"+86{phone(n)}", f"m{n}@example.com"
                copy.write_row((
                    f"m{n}", "active", f"store-{n % 50}", now, "[]", "{}", "{}", "{}", "{}", kid,
                    keys.encrypt(p, "phone"), keys.index("phone", p), keys.encrypt(e, "email"), keys.index("email", e), now, now,
                ))
        raw.driver_connection.commit()  # type: ignore[union-attr]
        cur.execute("ANALYZE members")
        raw.driver_connection.commit()  # type: ignore[union-attr]
    finally:
        raw.close()
    print(f"  loaded {count:,} members with COPY in {time.perf_counter() - began:.0f} s (encryption and indexes included)")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def lookup(base: str, count: int, lookups: int, folder: Path) -> None:
    url = _reset(base, BENCH_DATABASE)
    key_file = folder / "lookup.key"
    # The same key on every run, so that a database loaded by an earlier run is reused.
    key = base64.b64encode(b"perkflow-privacy-benchmark-key!!").decode()
    key_file.write_text(key)
    svc = open_service(url, folder / "lookup", data_key=key, clock=Clock())
    with svc.engine.connect() as conn:
        have = conn.execute(select(text("count(*)")).select_from(t.members)).scalar_one()
    print(f"\nLookup by phone on PostgreSQL ({BENCH_DATABASE}), {count:,} members")
    if have != count:
        svc.engine.dispose()
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        admin.dispose()
        svc = open_service(url, folder / "lookup", data_key=key, clock=Clock())
        bulk_load(svc, count)
    else:
        print(f"  reusing the {count:,} members already loaded")
    with svc.engine.connect() as conn:
        size = conn.execute(text("SELECT pg_size_pretty(pg_total_relation_size('members'))")).scalar_one()
    print(f"  members table with its indexes: {size}")
    rng = random.Random(9)
    sample = [rng.randrange(count) for _ in range(lookups)]
    keys = parse_keys(key, "bench")
    for n in sample[:50]:  # warm-up, and the answers are right
        assert svc.members.find(phone=phone(n)) == [f"m{n}"]
    finds: list[float] = []
    bare: list[float] = []
    with svc.engine.connect() as conn:
        for n in sample:
            began = time.perf_counter()
            svc.members.find(phone=phone(n))
            finds.append((time.perf_counter() - began) * 1000)
            index = keys.index("phone", f"+86{phone(n)}")
            began = time.perf_counter()
            conn.execute(select(t.members.c.external_id).where(t.members.c.phone_index == index)).all()
            bare.append((time.perf_counter() - began) * 1000)
    print(f"  {'':<34}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, values in (("MemberService.find(phone=...)", finds), ("bare index query", bare)):
        print(f"  {name:<34}{percentile(values, 0.5):>9.2f}{percentile(values, 0.99):>9.2f}{max(values):>9.2f}")
    print(f"  ({lookups} lookups of random members' phones; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    svc.engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="A short run on SQLite only (the smoke test).")
    parser.add_argument("--postgres-url", help="PostgreSQL server for the PostgreSQL sides and the lookup part.")
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--events", type=int, default=100, help="Operations a side a round.")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--lookup-members", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--lookup-only", action="store_true", help="Only part 2 (needs --postgres-url).")
    args = parser.parse_args()
    if args.quick:
        args.members, args.events, args.rounds = 20, 5, 2
    print("Perkflow personal-data benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not args.lookup_only:
            event_path("SQLite", lambda name: f"sqlite:///{folder / name}.sqlite", args.members, args.events, args.rounds, folder)
        if args.postgres_url and args.lookup_only:
            lookup(args.postgres_url, args.lookup_members, args.lookups, folder)
        elif args.postgres_url and not args.quick:
            def pg(name: str) -> str:
                url = _reset(args.postgres_url, f"perkflow_pii_bench_{name}")
                engine = create_engine(url, isolation_level="AUTOCOMMIT")
                with engine.connect() as conn:
                    conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                    conn.execute(text("CREATE SCHEMA public"))
                engine.dispose()
                return url
            event_path("PostgreSQL", pg, args.members, args.events, args.rounds, folder)
            lookup(args.postgres_url, args.lookup_members, args.lookups, folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
