"""Coupon-code benchmark (issue 8): generating a batch of 1,000,000 codes.

    .venv/bin/python benchmarks/codes.py            # 1,000,000 codes
    .venv/bin/python benchmarks/codes.py --quick    # 20,000 (the smoke test)
    .venv/bin/python benchmarks/codes.py --postgres postgresql+psycopg://...   # on PostgreSQL too (an empty database)

Two figures, each from one run on this machine, printed and never asserted:
1. drawing the codes (`random_codes`: `secrets` bytes mapped to 31 characters), median of 3 runs,
   with the collision check: the number of different codes equals the number asked for;
2. the whole batch through the service (`CodeService.generate`) into a new SQLite file: drawing,
   checking each chunk against the stored codes, inserting, in one transaction; then the codes in
   the table are counted and checked different (the primary key) and equal to the count asked for.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

# benchmarks/http.py would shadow the standard library's http package that the service imports
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from sqlalchemy import func, select  # noqa: E402

from perkflow.service.codes import random_codes  # noqa: E402
from perkflow.service.core import open_service, system_clock  # noqa: E402
from perkflow.storage import tables as t  # noqa: E402

SCHEME = """
perkflow: 1
id: bench-codes
name: Bench codes
governance: {require_approval: false}
balances:
  points: {}
coupons:
  launch:
    name: Launch ¥10
    benefit: {kind: amount_off, amount: 1000}
    validity: {days: 30}
    codes: {prefix: LN, length: 10}
"""


def draw(count: int) -> None:
    times, different = [], 0
    for _ in range(3):
        started = time.perf_counter()
        codes = random_codes(count, 10, "LN")
        times.append(time.perf_counter() - started)
        different = len(set(codes))
    median = statistics.median(times)
    print(f"  drawing {count:,} codes (10 random characters, prefix LN), median of 3: {median:.2f} s ({count / median:,.0f} codes/s)")
    print(f"  collisions: {count - different} ({different:,} different codes of {count:,})")


def stored(count: int, url: str, label: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        service = open_service(url or f"sqlite:///{folder}/codes.db", Path(folder) / "data", clock=system_clock)
        published = service.versions.submit(SCHEME, author="bench", comment="bench")
        assert not hasattr(published, "code"), published
        started = time.perf_counter()
        made = service.codes.generate("launch", count, actor="bench")
        elapsed = time.perf_counter() - started
        assert isinstance(made, dict), made
        with service.engine.connect() as conn:
            rows = conn.execute(select(func.count(), func.count(func.distinct(t.coupon_codes.c.code))).where(t.coupon_codes.c.batch == made["batch"])).one()
        service.engine.dispose()
    print(f"  {label}: {count:,} codes generated and stored in {elapsed:.2f} s ({count / elapsed:,.0f} codes/s)")
    print(f"  stored: {rows[0]:,} rows, {rows[1]:,} different codes; collisions: {count - rows[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20,000 codes instead of 1,000,000")
    parser.add_argument("--postgres", default="", help="also store the batch in this PostgreSQL database, which must be empty (migrated here)")
    args = parser.parse_args()
    count = 20_000 if args.quick else 1_000_000
    print("Perkflow coupon-code benchmark")
    print("==============================")
    draw(count)
    stored(count, "", "SQLite file")
    if args.postgres:
        stored(count, args.postgres, "PostgreSQL")


if __name__ == "__main__":
    main()
