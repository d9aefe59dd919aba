"""A report reads without taking SQLite's write lock: events are written while one runs."""

from __future__ import annotations

from sqlalchemy import func, insert, select

from perkflow.service.core import Service
from perkflow.storage import tables as t

from ..databases import Clock


def test_a_read_only_connection_lets_a_writer_in_while_it_is_open(service: Service, clock: Clock):
    with service.engine.connect() as reader:
        reader.execution_options(read_only=True)
        assert reader.execute(select(func.count()).select_from(t.members)).scalar() == 0  # its transaction is open
        with service.engine.begin() as writer:
            writer.execute(insert(t.stores).values(id="S1", name="Jing'an"))
        assert reader.execute(select(func.count()).select_from(t.stores)).scalar() in (0, 1)
    with service.engine.connect() as conn:
        assert conn.execute(select(t.stores.c.id)).scalars().all() == ["S1"]
