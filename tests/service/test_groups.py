"""A `best` group under concurrent claims, on SQLite and PostgreSQL: the rule worth most wins
while its budget lasts; when the guarded claim finds the budget spent, the event is decided again
and the next best rule fires in its place. A rule that lost never takes budget."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select

from perkflow.service.core import Service
from perkflow.storage import tables as t

from ..databases import publish
from .harness import ledger_problems, run_workers

GIFTS = 5
SCHEME = f"""
perkflow: 1
id: group-budget
name: A best group with a budget
auto_enroll: true
timezone: Asia/Shanghai
balances:
  points: {{value: 1}}
groups:
  welcome-gift: {{policy: best}}
rules:
  - id: gift-coupon
    on: purchase
    group: welcome-gift
    then: [{{issue_coupon: {{coupon: ten-off}}}}]
  - id: gift-points
    on: purchase
    group: welcome-gift
    then: [{{award: {{balance: points, amount: "200"}}}}]
coupons:
  ten-off:
    name: 10 off
    benefit: {{kind: amount_off, amount: 1000}}
    min_spend: 5000
    validity: {{days: 30}}
    budget: {GIFTS}
"""


def test_the_next_best_rule_fires_when_the_winners_budget_runs_out_under_concurrency(shared_service: Service, tmp_path: Path):
    publish(shared_service, SCHEME)
    jobs: list[list[dict[str, Any]]] = [[], [], []]
    n = 18
    for i in range(n):
        jobs[i % 3].append({
            "id": f"order-{i}", "type": "purchase", "member_id": f"m{i}",
            "occurred_at": f"2026-11-18T10:{i:02d}:00+08:00", "store": "S1", "channel": "pos",
            "attributes": {"amount": 6000},
        })
    results = run_workers(shared_service, tmp_path, [{"task": "post", "threads": 3, "events": events} for events in jobs])

    assert sorted(status for _, status, _ in results) == [201] * n
    fired = Counter(
        line["rule"] for _, _, body in results for line in body["trace"] if line["outcome"] == "fired"
    )
    assert fired == {"gift-coupon": GIFTS, "gift-points": n - GIFTS}
    for _, _, body in results:
        outcomes = {line["rule"]: line.get("reason", line["outcome"]) for line in body["trace"]}
        assert outcomes in (
            {"gift-coupon": "fired", "gift-points": "group_lost"},
            {"gift-coupon": "budget_exhausted", "gift-points": "fired"},
        )
    with shared_service.engine.connect() as conn:
        issued = conn.execute(select(t.coupons.c.id)).scalars().all()
        budgets = {r.key: (r.used, r.limit) for r in conn.execute(select(t.budgets))}
    assert len(issued) == GIFTS and budgets == {"coupon:ten-off": (GIFTS, GIFTS)}
    assert ledger_problems(shared_service.engine) == []
