"""Idempotency keys for the API's POSTs other than events (events use their own id).

A key is claimed by inserting its row, under a unique constraint, before the request runs; the
answer is stored when it succeeds. A repeat replays the stored answer (status and body); the same
key with another request is a 422; a key whose first request is still running is a 409. A refused
request (a problem) releases its key, so a corrected retry may use it again and nothing of the
refused request is kept. A claim older than `STALE` that never finished (its process died) may
be taken over. Keys are scoped to the principal that sent them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from perkflow.storage import tables as t

from .problems import FieldError, Problem, conflict, invalid

STALE = timedelta(minutes=5)
MAX_KEY = 200


@dataclass(frozen=True)
class Replay:
    status: int
    body: Any


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\0".join((method.encode(), path.encode(), body))).hexdigest()


class IdempotencyKeys:
    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine, self.clock = engine, clock

    def claim(self, key: str, principal: str, digest: str) -> Replay | Problem | None:
        """None: the caller goes ahead and must `finish` or `release` the key. Otherwise the stored
        answer to replay, or the problem to answer."""
        if not key or len(key) > MAX_KEY or not key.isprintable():
            return invalid(
                "bad Idempotency-Key",
                [
                    FieldError(
                        "",
                        "invalid_idempotency_key",
                        f"an Idempotency-Key is 1 to {MAX_KEY} printable characters",
                    )
                ],
                code="invalid_idempotency_key",
            )
        for _ in range(3):
            now = self.clock()
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        insert(t.idempotency_keys).values(
                            key=key, principal=principal, request_hash=digest, created_at=now
                        )
                    )
                return None
            except IntegrityError:
                pass
            with self.engine.begin() as conn:
                where = (t.idempotency_keys.c.key == key, t.idempotency_keys.c.principal == principal)
                row = conn.execute(select(t.idempotency_keys).where(*where)).first()
                if row is None:
                    continue  # released meanwhile: claim it again
                if row.request_hash != digest:
                    return Problem(
                        422,
                        "idempotency_key_reused",
                        "The request is not valid",
                        "this Idempotency-Key was used with another request: use a new key for a new request",
                        (
                            FieldError(
                                "", "idempotency_key_reused", "send the same request again, or a new key"
                            ),
                        ),
                    )
                if row.status_code is not None:
                    return Replay(row.status_code, row.response)
                if row.created_at > now - STALE:
                    return conflict(
                        "idempotency_key_in_flight",
                        "the first request with this Idempotency-Key is still running: retry later",
                    )
                taken = conn.execute(
                    update(t.idempotency_keys)
                    .where(*where, t.idempotency_keys.c.created_at == row.created_at)
                    .values(created_at=now)
                )
                if taken.rowcount == 1:
                    return None
        return conflict(
            "idempotency_key_in_flight",
            "the first request with this Idempotency-Key is still running: retry later",
        )

    def finish(self, key: str, principal: str, status: int, body: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(t.idempotency_keys)
                .where(t.idempotency_keys.c.key == key, t.idempotency_keys.c.principal == principal)
                .values(status_code=status, response=body)
            )

    def release(self, key: str, principal: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(t.idempotency_keys).where(
                    t.idempotency_keys.c.key == key, t.idempotency_keys.c.principal == principal
                )
            )
