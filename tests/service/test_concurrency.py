"""Many workers at once, as separate processes with threads, on SQLite and PostgreSQL.

Promises: a budget of C coupons issues at most C whatever the concurrency, and a member never
holds more than the per-member cap; concurrent purchases of one member add up exactly; the same
event id posted at once takes effect once. A deliberately naive read-then-write claim runs through
the same harness and must be seen over-issuing, which shows the harness can catch the bug.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from perkflow.service.core import Service
from perkflow.storage import tables as t

from ..databases import publish
from .claim_worker import NAIVE_POLICY
from .harness import ledger_problems, run_workers

PROCESSES = 3
THREADS = 3
BUDGET = 25

SCHEME = f"""
perkflow: 1
id: claims
name: Launch coupons
auto_enroll: true
balances:
  points: {{}}
event_types:
  coupon_claim: {{}}
rules:
  - id: claim
    on: coupon_claim
    then: [{{issue_coupon: {{coupon: launch}}}}]
  - id: earn
    on: purchase
    then: [{{award: {{balance: points, amount: "event.amount / 100"}}}}]
coupons:
  launch:
    name: Launch gift
    benefit: {{kind: amount_off, amount: 500}}
    validity: {{days: 30}}
    budget: {BUDGET}
    per_member: 1
  {NAIVE_POLICY}:
    name: Claimed by the naive control
    benefit: {{kind: amount_off, amount: 500}}
    validity: {{days: 30}}
    budget: {BUDGET}
"""


def _event(event_id: str, kind: str, member: str, minute: int, **attributes: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": kind,
        "member_id": member,
        "occurred_at": f"2026-11-20T10:{minute:02d}:00+08:00",
        "store": "S1",
        "channel": "app",
        "attributes": attributes,
    }


def _issued(svc: Service, policy: str) -> tuple[int, int, Counter[int]]:
    with svc.engine.connect() as conn:
        per_member = Counter(
            conn.execute(select(t.coupons.c.member_id).where(t.coupons.c.policy == policy)).scalars()
        )
        used = conn.execute(
            select(t.budgets.c.used).where(t.budgets.c.key == f"coupon:{policy}")
        ).scalar_one()
    return sum(per_member.values()), used, per_member


def test_a_budget_of_c_coupons_issues_exactly_min_n_c_and_one_per_member(
    shared_service: Service, tmp_path: Path
):
    publish(shared_service, SCHEME)
    members = 40
    twice = 12  # these members claim twice, their two claims in different processes
    jobs: list[list[dict[str, Any]]] = [[] for _ in range(PROCESSES)]
    for i in range(members):
        jobs[i % PROCESSES].append(_event(f"claim-{i}-a", "coupon_claim", f"m{i}", 1))
        if i < twice:
            jobs[(i + 1) % PROCESSES].append(_event(f"claim-{i}-b", "coupon_claim", f"m{i}", 2))
    results = run_workers(
        shared_service, tmp_path, [{"task": "post", "threads": THREADS, "events": events} for events in jobs]
    )

    assert sorted(status for _, status, _ in results) == [201] * (members + twice)
    issued, used, per_member = _issued(shared_service, "launch")
    assert issued == min(members, BUDGET)
    assert used == issued
    assert max(per_member.values()) == 1
    # every claim that got nothing says why in its trace
    reasons = Counter(
        line["reason"]
        for _, _, body in results
        if not any(e["kind"] == "coupon_issued" for e in body["effects"])
        for line in body["trace"]
        if line["rule"] == "claim"
    )
    assert sum(reasons.values()) == members + twice - issued
    assert set(reasons) <= {"budget_exhausted", "member_cap_reached"}
    with shared_service.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.members)).scalar_one() == members


def test_concurrent_purchases_of_one_member_add_up_to_the_sum_of_their_awards(
    shared_service: Service, tmp_path: Path
):
    publish(shared_service, SCHEME)
    rng = random.Random(7)
    amounts = [rng.randrange(0, 50_000) for _ in range(60)]
    purchases = [_event(f"buy-{n}", "purchase", "one", 5, amount=amount) for n, amount in enumerate(amounts)]
    run_workers(
        shared_service,
        tmp_path,
        [{"task": "post", "threads": THREADS, "events": purchases[p::PROCESSES]} for p in range(PROCESSES)],
    )

    assert ledger_problems(shared_service.engine) == []
    with shared_service.engine.connect() as conn:
        total = conn.execute(select(t.member_balances.c.total)).scalar_one()
        rows = conn.execute(select(func.count()).select_from(t.ledger)).scalar_one()
        events = conn.execute(select(func.count()).select_from(t.events)).scalar_one()
    assert total == sum(amount // 100 for amount in amounts)
    assert rows == sum(1 for amount in amounts if amount >= 100)
    assert events == len(amounts)


def test_the_same_event_id_posted_at_once_takes_effect_once(shared_service: Service, tmp_path: Path):
    publish(shared_service, SCHEME)
    # every thread of every process posts all of them, in the same order; nobody is a member yet
    events = [
        _event(f"same-{n}", "purchase", "twin" if n % 2 else f"solo-{n}", 10, amount=1_000 * (n + 1))
        for n in range(6)
    ]
    results = run_workers(
        shared_service,
        tmp_path,
        [{"task": "post", "threads": THREADS, "events": events * THREADS} for _ in range(PROCESSES)],
    )

    copies = PROCESSES * THREADS
    for event in events:
        answers = [(status, body) for event_id, status, body in results if event_id == event["id"]]
        assert sorted(status for status, _ in answers) == [200] * (copies - 1) + [201]
        assert all(body == answers[0][1] for _, body in answers)
    with shared_service.engine.connect() as conn:
        stored = Counter(conn.execute(select(t.events.c.id)).scalars())
        ledger = Counter(conn.execute(select(t.ledger.c.event_id)).scalars())
        members = conn.execute(select(func.count()).select_from(t.members)).scalar_one()
    assert stored == {e["id"]: 1 for e in events}
    assert ledger == {e["id"]: 1 for e in events}
    assert members == 4
    assert ledger_problems(shared_service.engine) == []


def test_the_harness_sees_a_naive_read_then_write_claim_over_issue(shared_service: Service, tmp_path: Path):
    publish(shared_service, SCHEME)
    for i in range(40):
        shared_service.members.put(f"n{i}", {}, actor="test")
    with shared_service.engine.connect() as conn:
        members = [
            [pk, f"naive-{pk}"]
            for pk in conn.execute(select(t.members.c.id).order_by(t.members.c.id)).scalars()
        ]
    jobs = [
        {"task": "naive", "threads": 4, "pause": 0.01, "members": members[p::PROCESSES]}
        for p in range(PROCESSES)
    ]
    run_workers(shared_service, tmp_path, jobs)

    issued, used, _ = _issued(shared_service, NAIVE_POLICY)
    print(f"naive claim: {issued} coupons issued on a budget of {BUDGET}; the budget row says {used} used")
    assert issued > BUDGET, "the harness could not provoke the race: it would not catch a real one either"
