"""Opening a database: an SQLite file by default, PostgreSQL when the URL says so."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event


def open_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine configured for Perkflow's transactions.

    SQLite: WAL journal, synchronous=FULL, a busy timeout, and write transactions begun with
    BEGIN IMMEDIATE so two writers queue instead of failing on lock upgrade; the threads of one
    process queue on a lock of their own first (see `_sqlite_transactions`). PostgreSQL: psycopg 3
    at READ COMMITTED; conflicting writes are serialized by row locks and guarded updates."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Connections are kept (the PRAGMAs run once per connection, not per transaction).
        engine = create_engine(url, pool_size=pool_size, connect_args={"timeout": 30, "check_same_thread": False})
        _sqlite_transactions(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


WRITE_LOCK_WAIT = 30.0  # seconds, as the busy timeout: past it, the transaction waits on SQLite alone


def _sqlite_transactions(engine: Engine) -> None:
    """SQLite lets one writer in at a time. A writer that finds the database locked polls in
    SQLite's busy handler, sleeping 1, 2, 5, 10... ms between tries, so a transaction of a few
    milliseconds often waits ten. The threads of this process (the API's worker threads) queue on
    `writing` instead, and are let in the moment the transaction before them ends; other processes
    still meet SQLite's own lock. The lock is taken at BEGIN IMMEDIATE and given back when the
    transaction commits or rolls back."""
    writing = threading.RLock()
    held = "perkflow_write_lock"  # in the connection's info while its transaction holds `writing`
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin below decide when a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A read-only connection (reports) begins deferred: it takes no write lock, so a long
        # report never holds up the events being written meanwhile (WAL readers see a snapshot).
        if connection.get_execution_options().get("read_only", False):
            connection.exec_driver_sql("BEGIN")
            return
        taken = writing.acquire(timeout=WRITE_LOCK_WAIT)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            if taken:
                writing.release()
            raise
        if taken:
            connection.info[held] = True

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(connection: Any) -> None:
        if connection.info.pop(held, False):
            writing.release()
