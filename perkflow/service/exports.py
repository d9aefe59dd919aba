"""Exports for reporting: members without personal data, and the ledger, streamed.

Rows are read through a streaming cursor (a server-side cursor on PostgreSQL), a few hundred at a
time, so an export of millions of rows holds only one batch in memory. Member rows never read the
personal-data columns: what leaves here is the external id, status, home store, tier, joining
time and balances. A member's balances are as of their latest event: expiry that fell due since
is written when their next event, or the scheduler, applies it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import Engine, select

from perkflow.rules import loads
from perkflow.storage import tables as t

BATCH = 500

MEMBER_FIELDS = ("external_id", "status", "home_store", "tier", "joined_at")
LEDGER_FIELDS = (
    "id",
    "member_id",
    "event_id",
    "balance",
    "part",
    "kind",
    "amount",
    "debt",
    "rule",
    "version",
    "occurred_at",
    "recorded_at",
    "lots",
)


def _instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def balance_names(engine: Engine) -> list[str]:
    """The balances members hold: the latest published scheme's, in its order, then any other
    a member still holds (from an older version)."""
    with engine.connect() as conn:
        content = conn.execute(
            select(t.scheme_versions.c.content)
            .where(t.scheme_versions.c.status == "published")
            .order_by(t.scheme_versions.c.number.desc())
            .limit(1)
        ).scalar()
        held = sorted(conn.execute(select(t.member_balances.c.balance).distinct()).scalars())
    names: list[str] = []
    if content is not None:
        loaded = loads(content, "published version")
        if loaded.scheme is not None:
            names = list(loaded.scheme.balances)
    return names + [name for name in held if name not in names]


def members(engine: Engine) -> Iterator[dict[str, Any]]:
    """Every member in id order: external id, status, home store, tier, joined_at, balances."""
    m, b = t.members, t.member_balances
    query = (
        select(m.c.id, *(m.c[f] for f in MEMBER_FIELDS), b.c.balance, b.c.total)
        .select_from(m.outerjoin(b, b.c.member_id == m.c.id))
        .order_by(m.c.id, b.c.balance)
    )
    with engine.connect() as conn:
        rows = conn.execution_options(yield_per=BATCH).execute(query)
        for _, group in groupby(rows, key=lambda row: row.id):
            parts = list(group)
            first = parts[0]
            yield {
                "external_id": first.external_id,
                "status": first.status,
                "home_store": first.home_store,
                "tier": first.tier,
                "joined_at": _instant(first.joined_at),
                "balances": {row.balance: row.total for row in parts if row.balance is not None},
            }


def ledger(engine: Engine) -> Iterator[dict[str, Any]]:
    """Every ledger row in the order it was written, members named by their external id."""
    ledger_, m = t.ledger, t.members
    columns = [ledger_.c[f] for f in LEDGER_FIELDS if f != "member_id"]
    query = (
        select(m.c.external_id.label("member_id"), *columns)
        .select_from(ledger_.join(m, m.c.id == ledger_.c.member_id))
        .order_by(ledger_.c.id)
    )
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=BATCH).execute(query):
            item = {f: getattr(row, f) for f in LEDGER_FIELDS}
            item["occurred_at"] = _instant(row.occurred_at)
            item["recorded_at"] = _instant(row.recorded_at)
            yield item


def flat(item: dict[str, Any], balances: list[str]) -> dict[str, Any]:
    """A member or ledger row as CSV cells: a column per balance, lots as compact JSON."""
    out = {k: v for k, v in item.items() if k not in ("balances", "lots")}
    if "balances" in item:
        out |= {f"balance.{name}": item["balances"].get(name, 0) for name in balances}
    if "lots" in item:
        out["lots"] = json.dumps(item["lots"], separators=(",", ":"))
    return out
