"""A worker process for the concurrency and crash tests: `python -m tests.service.claim_worker JOB.json`.

The job file says which database to open, what to run and how many threads run it:

- `post`: the events are dealt out to the threads round robin and each thread posts its share
  through `EventService.post`, as an API worker would;
- `naive`: each thread runs `naive_claim` for its members, the read-then-write claim that the
  service must never do (kept here so that the harness proves it can see over-issuing);
- `stream`: one thread posts the events in order and writes each id and its answer to `<out>`
  (the crash test kills the process somewhere in the middle);
- `hold`: each thread places holds of points at the till (`HoldService.place`) and captures each
  with a purchase naming it, cancels it or keeps it, as a till would;
- `naive_hold`: each thread runs `naive_hold`, a read-then-write hold without the member lock,
  which must be seen reserving more than the member has.

The worker touches `<ready>` when it is set up and waits for `<go>` to exist, so that every process
starts at the same moment; threads start together behind a barrier. It prints one JSON line: per
event the status or problem code, and any exception with its traceback (a test fails on those).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update

from perkflow.service.core import open_service
from perkflow.service.events import Applied
from perkflow.storage import tables as t

NAIVE_POLICY = "naive"


def naive_claim(engine: Engine, member_pk: int, claim_id: str, now: datetime, pause: float) -> bool:
    """Medusa's old `registerUsage`: read `used`, compare with the limit in Python, write back
    `used + 1` and insert the coupon, with no guard in the UPDATE. Wrong on purpose.

    On PostgreSQL the read and the write share one READ COMMITTED transaction, the classic lost
    update. SQLite opens every transaction with BEGIN IMMEDIATE (storage/db.py), which would make
    even this code serial, so there the read is its own transaction, as an ORM session that reads
    before it writes would do it."""
    key = f"coupon:{NAIVE_POLICY}"

    def read(conn: Any) -> tuple[int, int]:
        row = conn.execute(select(t.budgets.c.used, t.budgets.c.limit).where(t.budgets.c.key == key)).one()
        return row.used, row.limit

    def write(conn: Any, used: int) -> None:
        conn.execute(update(t.budgets).where(t.budgets.c.key == key).values(used=used + 1))
        conn.execute(
            insert(t.coupons).values(
                id=f"{claim_id}#c1",
                member_id=member_pk,
                policy=NAIVE_POLICY,
                issued_at=now,
                valid_from=now,
                valid_until=now,
                source_event=claim_id,
                rule="naive",
                voided=False,
            )
        )

    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            used, limit = read(conn)
        if used >= limit:
            return False
        time.sleep(pause)
        with engine.begin() as conn:
            write(conn, used)
        return True
    with engine.begin() as conn:
        used, limit = read(conn)
        if used >= limit:
            return False
        time.sleep(pause)
        write(conn, used)
    return True


def naive_hold(engine: Engine, member_pk: int, hold_id: str, units: int, now: datetime, pause: float) -> bool:
    """Read the balance and the active holds, compare in Python, insert the hold: no member lock,
    no guard. Wrong on purpose; on SQLite the read is its own transaction, as in `naive_claim`."""

    def room(conn: Any) -> int:
        total = conn.execute(
            select(t.member_balances.c.total).where(t.member_balances.c.member_id == member_pk, t.member_balances.c.balance == "points")
        ).scalar_one()
        holds = conn.execute(select(t.holds.c.amounts).where(t.holds.c.member_id == member_pk, t.holds.c.status == "active")).scalars()
        return int(total) - sum(h["points"] for h in holds)

    def write(conn: Any) -> None:
        conn.execute(
            insert(t.holds).values(
                id=hold_id, member_id=member_pk, order_amount=units, amounts={"points": units}, status="active",
                store="", created_at=now, expires_at=now + timedelta(minutes=5),
            )
        )

    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            enough = room(conn) >= units
        if not enough:
            return False
        time.sleep(pause)
        with engine.begin() as conn:
            write(conn)
        return True
    with engine.begin() as conn:
        if room(conn) < units:
            return False
        time.sleep(pause)
        write(conn)
    return True


def _till(service: Any, item: list[Any], now: datetime) -> list[Any]:
    """Hold `units` points for member `member`, then capture, cancel or keep the hold."""
    member, units, action, event_id = item
    hold = service.holds.place(member, units, {"points_paid": units})
    if not isinstance(hold, dict):
        return [event_id, hold.code, None]
    if action == "cancel":
        cancelled = service.holds.cancel(member, hold["id"])
        return [event_id, "placed", cancelled["status"] if isinstance(cancelled, dict) else cancelled.code]
    if action == "keep":
        return [event_id, "placed", "kept"]
    raw = {
        "id": event_id, "type": "purchase", "member_id": member, "occurred_at": now.isoformat(), "store": "S1",
        "channel": "pos", "attributes": {"amount": 0, "points_paid": units, "hold": hold["id"]},
    }
    result = service.events.post(raw)
    return [event_id, "placed", result.status if isinstance(result, Applied) else result.code]


def _wait_for(path: Path, deadline: float) -> None:
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.002)


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    now = datetime.fromisoformat(job["now"])
    service = open_service(job["url"], Path(job["data_dir"]), upgrade=False, clock=lambda: now)
    results: list[Any] = []
    errors: list[str] = []
    lock = threading.Lock()

    if job["task"] == "stream":
        Path(job["ready"]).touch()
        with open(job["out"], "a", buffering=1) as out:
            for raw in job["events"]:
                result = service.events.post(raw)
                out.write(f"{raw['id']} {result.status if isinstance(result, Applied) else result.code}\n")
        service.engine.dispose()
        return 0

    items: list[Any] = job["events"] if job["task"] == "post" else job["holds"] if job["task"] in ("hold", "naive_hold") else job["members"]
    threads_n = job["threads"]
    shares = [items[i::threads_n] for i in range(threads_n)]
    barrier = threading.Barrier(threads_n)

    def run(share: list[Any]) -> None:
        barrier.wait(timeout=30)
        for item in share:
            try:
                if job["task"] == "post":
                    result = service.events.post(item)
                    outcome = [
                        item["id"],
                        result.status,
                        result.body if isinstance(result, Applied) else result.code,
                    ]
                elif job["task"] == "hold":
                    outcome = _till(service, item, now)
                elif job["task"] == "naive_hold":
                    placed = naive_hold(service.engine, item[0], item[1], item[2], now, job["pause"])
                    outcome = [item[1], placed, None]
                else:
                    claimed = naive_claim(service.engine, item[0], item[1], now, job["pause"])
                    outcome = [item[1], claimed, None]
            except Exception:  # reported to the parent, which fails the test
                with lock:
                    errors.append(traceback.format_exc())
                continue
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=run, args=(share,)) for share in shares]
    Path(job["ready"]).touch()
    _wait_for(Path(job["go"]), time.monotonic() + 60)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if any(thread.is_alive() for thread in threads):
        errors.append("a thread did not finish within 60 s")
    service.engine.dispose()
    print(json.dumps({"results": results, "errors": errors}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
