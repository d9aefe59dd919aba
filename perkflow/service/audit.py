"""The audit log: every publish, approval, adjustment and key change, hash-chained.

Each row holds the hash of the previous row and of its own content, so editing, removing or
inserting a row breaks the chain at that row (`verify`). Rows never hold personal data: members
are named by their external id.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, text

from perkflow.storage import tables as t

GENESIS = "sha256-v1:" + "0" * 64
_CHAIN_LOCK = 7_202_611  # any constant: serializes appends to the chain on PostgreSQL


def _digest(prev_hash: str, at: datetime, actor: str, action: str, target: str, detail: dict[str, Any]) -> str:
    body = json.dumps(
        [prev_hash, at.isoformat(timespec="microseconds"), actor, action, target, detail],
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )
    return "sha256-v1:" + hashlib.sha256(body.encode()).hexdigest()


def record(conn: Connection, at: datetime, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    last = conn.execute(select(t.audit_log.c.hash).order_by(t.audit_log.c.id.desc()).limit(1)).scalar()
    prev_hash = last or GENESIS
    conn.execute(
        insert(t.audit_log).values(
            at=at, actor=actor, action=action, target=target, detail=detail,
            prev_hash=prev_hash, hash=_digest(prev_hash, at, actor, action, target, detail),
        )
    )


def verify(conn: Connection) -> tuple[int, str] | None:
    """The first row whose content or link is wrong, as (row id, what is wrong); None if intact."""
    expected_prev = GENESIS
    for row in conn.execute(select(t.audit_log).order_by(t.audit_log.c.id)):
        if row.prev_hash != expected_prev:
            return row.id, "the row before it was removed, inserted or altered"
        if row.hash != _digest(row.prev_hash, row.at, row.actor, row.action, row.target, row.detail):
            return row.id, "the row's content was altered"
        expected_prev = row.hash
    return None
