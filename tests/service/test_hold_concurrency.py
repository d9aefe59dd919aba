"""Holds at many tills at once, as separate processes with threads, on SQLite and PostgreSQL.

Promise: concurrent holds, captures and cancels on one member never reserve or spend more points
than the member has; every point spent was captured from a hold. A deliberately naive
read-then-write hold runs through the same harness and must be seen reserving more than the
member has, which shows the harness can catch the bug.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from perkflow.service.core import Service
from perkflow.storage import tables as t

from ..databases import publish
from .harness import ledger_problems, run_workers

PROCESSES = 3
THREADS = 3
POINTS = 1_000
HOLD = 100

SCHEME = """
perkflow: 1
id: tills
name: Tills
auto_enroll: true
balances:
  points: {order_payment: {}}
rules:
  - id: earn
    on: purchase
    then: [{award: {balance: points, amount: "event.amount / 100"}}]
"""


def _member(svc: Service) -> int:
    publish(svc, SCHEME)
    raw = {
        "id": "seed", "type": "purchase", "member_id": "m1", "occurred_at": svc.clock().isoformat(), "store": "S1",
        "channel": "pos", "attributes": {"amount": POINTS * 100},
    }
    assert svc.events.post(raw).status == 201
    with svc.engine.connect() as conn:
        return int(conn.execute(select(t.members.c.id).where(t.members.c.external_id == "m1")).scalar_one())


def test_concurrent_holds_and_captures_never_reserve_or_spend_more_than_the_member_has(shared_service: Service, tmp_path: Path):
    _member(shared_service)
    actions = ["capture", "capture", "cancel", "keep"]
    holds = [["m1", HOLD, actions[i % len(actions)], f"pay-{i}"] for i in range(36)]  # 3600 points wanted, 1000 held
    jobs = [{"task": "hold", "threads": THREADS, "holds": holds[p::PROCESSES]} for p in range(PROCESSES)]
    results = run_workers(shared_service, tmp_path, jobs)

    outcomes = {r[0]: (r[1], r[2]) for r in results}
    assert set(outcomes) == {h[3] for h in holds}
    assert {placed for placed, _ in outcomes.values()} <= {"placed", "insufficient_balance"}
    assert {then for placed, then in outcomes.values() if placed == "placed"} <= {201, "cancelled", "kept"}
    with shared_service.engine.connect() as conn:
        rows = conn.execute(select(t.holds.c.status, t.holds.c.amounts, t.holds.c.captured_by)).all()
        spent = -sum(conn.execute(select(t.ledger.c.amount).where(t.ledger.c.kind == "spend")).scalars())
        balance = conn.execute(select(t.member_balances.c.total)).scalar_one()
    captured = sum(r.amounts["points"] for r in rows if r.status == "captured")
    active = sum(r.amounts["points"] for r in rows if r.status == "active")
    print(f"holds: {len(rows)} placed, {captured} points captured, {active} still held, of {POINTS}")
    assert captured + active <= POINTS
    assert spent == captured == sum(HOLD for placed, then in outcomes.values() if then == 201)
    assert balance == POINTS - captured >= active
    assert sum(1 for placed, _ in outcomes.values() if placed == "insufficient_balance") > 0
    assert ledger_problems(shared_service.engine) == []


def test_the_harness_sees_a_naive_read_then_write_hold_over_reserve(shared_service: Service, tmp_path: Path):
    member_pk = _member(shared_service)
    holds = [[member_pk, f"naive-{i}", HOLD] for i in range(36)]
    jobs = [{"task": "naive_hold", "threads": 4, "pause": 0.01, "holds": holds[p::PROCESSES]} for p in range(PROCESSES)]
    run_workers(shared_service, tmp_path, jobs)

    with shared_service.engine.connect() as conn:
        reserved = sum(h["points"] for h in conn.execute(select(t.holds.c.amounts)).scalars())
    print(f"naive hold: {reserved} points reserved of {POINTS}")
    assert reserved > POINTS, "the harness could not provoke the race: it would not catch a real one either"
