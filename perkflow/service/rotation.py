"""Data-key rotation: re-encrypt and re-index every member row still under an older key.

Each batch is one transaction that locks its rows, decrypts them with the key they name, and
writes the ciphertexts and blind indexes under the current key with the row's new key id. Where a
rotation stands is the data itself (rows whose key id is not the current one), so a rotation that
stops, crashes or is interrupted resumes by running again. Old and new keys are both configured
while it runs: a row is readable under the key it names, and a lookup matches the blind index under
every configured key, so every member stays readable and findable at every moment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from perkflow.storage import tables as t

from .crypto import DataKeys

_CIPHERS = ("phone", "email", "name", "birthday")
_INDEXED = ("phone", "email")


@dataclass(frozen=True)
class Rotation:
    rows: int  # rows re-encrypted by this run
    batches: int
    remaining: int  # rows still under an older key (0: the older keys can be retired)

    def to_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "batches": self.batches, "remaining": self.remaining}


def key_status(engine: Engine, keys: DataKeys) -> list[dict[str, Any]]:
    """Member rows with personal data, counted by the key that encrypted them."""
    m = t.members.c
    with engine.connect() as conn:
        counts = conn.execute(select(m.key_id, func.count()).where(m.key_id.is_not(None)).group_by(m.key_id)).all()
    configured = keys.ids
    out = []
    for kid, count in sorted(counts, key=lambda r: (r[0] != keys.current_id, r[0])):
        state = "current" if kid == keys.current_id else ("older, configured" if kid in configured else "unknown: not configured")
        out.append({"key_id": kid, "members": count, "key": state})
    return out


def _pending(conn: Connection, current: str) -> int:
    m = t.members.c
    return int(conn.execute(select(func.count()).where(m.key_id.is_not(None), m.key_id != current)).scalar_one())


def _rotate_row(row: Any, keys: DataKeys) -> dict[str, Any]:
    values: dict[str, Any] = {"key_id": keys.current_id}
    for field in _CIPHERS:
        blob = row[f"{field}_cipher"]
        if blob is None:
            continue
        plain = keys.decrypt(blob, row["key_id"], field)
        values[f"{field}_cipher"] = keys.encrypt(plain, field)
        if field in _INDEXED:
            values[f"{field}_index"] = keys.index(field, plain)
    return values


def rotate(
    engine: Engine, keys: DataKeys, *, batch_size: int = 500, max_batches: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Rotation:
    """Re-encrypt the rows under older keys, `batch_size` rows a transaction, until none is
    left or `max_batches` batches are done. A row under a key that is not configured stops the
    rotation with a KeyError naming that key id; the batches before it stay done."""
    m = t.members
    columns = [m.c.id, m.c.key_id, *(m.c[f"{f}_cipher"] for f in _CIPHERS)]
    rows = batches = 0
    while max_batches is None or batches < max_batches:
        with engine.begin() as conn:
            query = (
                select(*columns).where(m.c.key_id.is_not(None), m.c.key_id != keys.current_id)
                .order_by(m.c.id).limit(batch_size).with_for_update(skip_locked=True)
            )
            found = conn.execute(query).mappings().all()
            for row in found:
                conn.execute(update(m).where(m.c.id == row["id"]).values(**_rotate_row(row, keys)))
        if not found:
            break
        rows, batches = rows + len(found), batches + 1
        if on_batch is not None:
            on_batch(len(found))
    with engine.connect() as conn:
        remaining = _pending(conn, keys.current_id)
    return Rotation(rows, batches, remaining)
