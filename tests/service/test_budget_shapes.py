"""Budgets of a day and a store, and a money budget, under concurrent claims from several worker
processes (the harness of test_concurrency.py, whose naive read-then-write control shows it sees
over-issuing): no budget is ever exceeded, and each row is made once when first used."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select

from perkflow.service.core import Service
from perkflow.storage import tables as t

from ..databases import publish
from .harness import ledger_problems, run_workers

PER_DAY_AND_STORE, FACE, MONEY = 4, 500, 500 * 14
SCHEME = f"""
perkflow: 1
id: shapes
name: Budget shapes
auto_enroll: true
timezone: Asia/Shanghai
balances:
  points: {{}}
event_types:
  coupon_claim: {{}}
rules:
  - id: claim
    on: coupon_claim
    then: [{{issue_coupon: {{coupon: daily}}}}]
coupons:
  daily:
    name: Daily store gift
    benefit: {{kind: amount_off, amount: {FACE}}}
    validity: {{days: 30}}
    budget: {PER_DAY_AND_STORE}
    budget_per: day
    budget_by_store: true
    money_budget: {MONEY}
"""


def test_periodic_store_and_money_budgets_are_never_exceeded_under_concurrent_claims(shared_service: Service, tmp_path: Path):
    publish(shared_service, SCHEME)
    jobs: list[list[dict[str, Any]]] = [[], [], []]
    n = 0
    for day in ("2026-11-18", "2026-11-19"):
        for store in ("S1", "S2"):
            for i in range(9):  # 9 claims for 4 coupons, in each day and store
                n += 1
                jobs[n % 3].append({
                    "id": f"claim-{n}", "type": "coupon_claim", "member_id": f"m{n}",
                    "occurred_at": f"{day}T10:{i:02d}:00+08:00", "store": store, "channel": "app", "attributes": {},
                })
    results = run_workers(shared_service, tmp_path, [{"task": "post", "threads": 3, "events": events} for events in jobs])

    assert sorted(status for _, status, _ in results) == [201] * n
    with shared_service.engine.connect() as conn:
        issued = conn.execute(select(t.coupons.c.source_event)).scalars().all()
        budgets = {r.key: (r.used, r.limit) for r in conn.execute(select(t.budgets))}
    events = {e["id"]: e for job in jobs for e in job}
    per_day_and_store = Counter((events[i]["occurred_at"][:10], events[i]["store"]) for i in issued)
    assert max(per_day_and_store.values()) <= PER_DAY_AND_STORE
    assert len(issued) * FACE <= MONEY and len(issued) == MONEY // FACE  # the money budget binds first
    assert all(used <= limit for used, limit in budgets.values())
    assert budgets["coupon_value:daily"] == (len(issued) * FACE, MONEY)
    assert {k for k in budgets if k.startswith("coupon:daily@")} <= {f"coupon:daily@{d}|{s}" for d, s in per_day_and_store}
    reasons = Counter(line["reason"] for _, _, body in results for line in body["trace"] if line["outcome"] == "skipped")
    assert set(reasons) == {"budget_exhausted"} and sum(reasons.values()) == n - len(issued)
    assert ledger_problems(shared_service.engine) == []
