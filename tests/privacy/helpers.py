"""Members with personal data, and what the database holds, for the personal-data tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from perkflow.service.access import Principal
from perkflow.service.core import Service
from perkflow.service.problems import Problem
from perkflow.storage import tables as t
from tests.databases import Clock, publish

PEOPLE = {
    "m1": {"phone": "13812340000", "email": "alice.wang@example.com", "name": "王爱丽", "birthday": "1990-05-17"},
    "m2": {"phone": "+8613912345678", "email": "bob.li@example.org", "name": "Bob Li", "birthday": "1985-12-01"},
}
PLAINTEXTS = ["13812340000", "alice.wang@example.com", "王爱丽", "1990-05-17", "13912345678", "bob.li@example.org", "Bob Li", "1985-12-01"]


def principal(*scopes: str, stores: frozenset[str] | None = None) -> Principal:
    return Principal("key:pk_test", frozenset({"members:read", *scopes}), stores)


def ready(svc: Service, clock: Clock, purchases: int = 3) -> None:
    """The coffee scheme, the two members with personal data, and purchases that earn points,
    change tiers and issue coupons."""
    clock.set("2026-11-20T12:00:00+00:00")
    publish(svc, "examples/coffee/scheme.yaml")
    for member, body in PEOPLE.items():
        done = svc.members.put(member, {**body, "home_store": "S1", "attributes": {"note": "prefers oat milk"}}, actor="test")
        assert isinstance(done, tuple), done
    post: Callable[[str, int], Any] = lambda member, i: svc.events.post({  # noqa: E731
        "id": f"pos-{member}-{i}", "type": "purchase", "member_id": member, "occurred_at": clock.now.isoformat(),
        "store": "S1", "channel": "pos", "attributes": {"amount": 60000},
    })
    for i in range(purchases):
        for member in PEOPLE:
            assert not isinstance(post(member, i), Problem)


def every_row(svc: Service) -> str:
    """Every row of every table, as text (bytes shown as Python shows them)."""
    parts = []
    with svc.engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                parts.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(parts)


def money(svc: Service) -> dict[str, Any]:
    """Balances and ledger sums per internal member id, and their totals: what an erasure keeps."""
    with svc.engine.connect() as conn:
        balances = sorted(tuple(r) for r in conn.execute(select(t.member_balances.c.member_id, t.member_balances.c.balance, t.member_balances.c.total)))
        ledger = sorted(
            tuple(r) for r in conn.execute(
                select(t.ledger.c.member_id, t.ledger.c.balance, func.sum(t.ledger.c.amount), func.count()).group_by(t.ledger.c.member_id, t.ledger.c.balance)
            )
        )
        lots = conn.execute(select(func.sum(t.lots.c.amount), func.count())).one()
        coupons = conn.execute(select(func.count()).select_from(t.coupons)).scalar_one()
    return {"balances": balances, "ledger": ledger, "lots": tuple(lots), "coupons": coupons}
