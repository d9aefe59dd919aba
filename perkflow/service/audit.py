"""The audit log: every publish, approval, adjustment and key change, hash-chained.

Each row holds the hash of the previous row and of its own content, so editing, removing or
inserting a row breaks the chain at that row (`verify`). Rows never hold personal data: members
are named by their external id.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, NamedTuple

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


class Break(NamedTuple):
    """Where the chain breaks: the row to look at, and what happened to it."""

    row_id: int
    kind: str  # altered, removed (a row before this one is missing) or inserted
    message: str


def verify(conn: Connection) -> Break | None:
    """The first place where the chain breaks; None when every row links to the one before it.

    A row whose hash does not cover its content was altered. A row that the next row links past
    was inserted (even a forger who recomputes its hashes cannot make the next row point at it). A
    row that does not link to the row before it follows a removal when ids are missing in between;
    with no gap, either it was inserted or the row before it was rewritten, hash and all.
    """
    rows = iter(conn.execute(select(t.audit_log).order_by(t.audit_log.c.id)))
    before_id, expected_prev = 0, GENESIS
    row = next(rows, None)
    while row is not None:
        following = next(rows, None)
        if following is not None and following.prev_hash == expected_prev:
            return Break(row.id, "inserted", f"row {row.id} was inserted: row {following.id} links past it")
        if row.hash != _digest(row.prev_hash, row.at, row.actor, row.action, row.target, row.detail):
            return Break(row.id, "altered", f"row {row.id} was altered: its hash does not cover its content")
        if row.prev_hash != expected_prev:
            if row.id > before_id + 1:
                gone = f"row {before_id + 1}" if row.id == before_id + 2 else f"rows {before_id + 1} to {row.id - 1}"
                return Break(before_id + 1, "removed", f"{gone} removed: row {row.id} links to a row that is gone")
            return Break(
                row.id, "unlinked",
                f"row {row.id} does not link to row {before_id}: it was inserted, or row {before_id} was rewritten with its hash",
            )
        before_id, expected_prev, row = row.id, row.hash, following
    return None
