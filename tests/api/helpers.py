"""Helpers that keep the API tests reading as transcripts."""

from __future__ import annotations

from typing import Any

import httpx2
from sqlalchemy import Engine, select

from perkflow.storage.tables import metadata


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def event(event_id: str = "pos-1", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": event_id,
        "type": "purchase",
        "member_id": "m1",
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "store": "S1",
        "channel": "pos",
        "attributes": {"amount": 3500},
    }
    return body | changes


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order: equal dumps mean nothing was written."""
    out = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = conn.execute(select(table)).all()
            out[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return out


def problem(response: httpx2.Response, status: int, code: str) -> dict[str, Any]:
    """Assert a problem+json answer with this status and code; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status and body["title"] and body["type"].startswith("https://")
    return body
