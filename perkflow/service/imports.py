"""Importing history: events applied one by one, each in its own transaction, as if posted.

An import can be run again: an event already stored with the same body is counted as already
there without being evaluated again (one query per batch finds them); any other event goes
through `EventService.post`, so it gets exactly the checks and answers of the API, and an id
stored with another body is refused as `event_id_reused`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select

from perkflow.storage import tables as t

from .core import Service
from .events import Applied, body_hash
from .problems import Problem

Outcome = Literal["applied", "already_applied", "refused"]


@dataclass(frozen=True)
class Imported:
    outcome: Outcome
    problem: Problem | None = None


def import_batch(service: Service, events: Iterable[Any]) -> Iterator[Imported]:
    """Apply a batch of events in order, one transaction each; one result per event."""
    batch = list(events)
    ids = [raw["id"] for raw in batch if isinstance(raw, dict) and isinstance(raw.get("id"), str)]
    stored: dict[str, str] = {}
    if ids:
        with service.engine.connect() as conn:
            query = select(t.events.c.id, t.events.c.body_hash).where(t.events.c.id.in_(set(ids)))
            stored = {row.id: row.body_hash for row in conn.execute(query)}
    for raw in batch:
        event_id = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(event_id, str) and stored.get(event_id) == body_hash(raw):
            yield Imported("already_applied")
            continue
        result = service.events.post(raw, source="import")
        if isinstance(result, Problem):
            yield Imported("refused", result)
        elif isinstance(result, Applied) and result.status == 201:
            yield Imported("applied")
        else:  # stored by someone else since the batch was checked
            yield Imported("already_applied")
