"""Consistent backups of a whole Perkflow database, and restoring them.

SQLite: the online backup API of `sqlite3` copies the database page by page from one snapshot, so
a backup taken while the server writes is still consistent; a restore copies the backup file back
the same way. PostgreSQL: `pg_dump --format=custom` takes one snapshot of the database, and
`pg_restore --clean --if-exists --single-transaction` puts it back, all or nothing. The client
tools must be at least as new as the server; the one found on PATH or under
/usr/lib/postgresql/<major>/bin that fits is used.

Every refusal is a `BackupError` whose message says what to do; nothing here prints.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, inspect, make_url, select, text
from sqlalchemy.engine import URL

from . import migrate
from .tables import metadata

_VERSION = re.compile(r"\b(\d+)(?:\.(\d+))?")
_REVISION = re.compile(r"^[0-9a-z_]+$")


class BackupError(Exception):
    """A backup or restore that cannot be done; the message names the cause and the fix."""


@dataclass(frozen=True)
class Outcome:
    path: Path
    revision: str | None  # the migration the backup is at
    size: int  # bytes of the backup file


def is_empty(engine: Engine) -> bool:
    """Whether the database holds no Perkflow rows: nothing there yet, or only migrated tables
    without data. A restore may write into an empty database without --force."""
    with engine.connect() as conn:
        present = set(inspect(conn).get_table_names())
        for table in metadata.sorted_tables:
            if table.name in present and conn.execute(select(text("1")).select_from(table).limit(1)).first():
                return False
    return True


def backup(url: str, engine: Engine, path: Path) -> Outcome:
    """Write a consistent copy of the database at `url` to `path` (replaced if it exists)."""
    revision = _revision(engine)
    if revision is None:
        raise BackupError("the database has no Perkflow tables: there is nothing to back up")
    if _is_sqlite(url):
        _sqlite_backup(_sqlite_path(url, must_exist=True), path)
    else:
        _pg_dump(engine, make_url(url), path)
    return Outcome(path, revision, path.stat().st_size)


def restore(url: str, engine: Engine, path: Path, *, force: bool = False) -> Outcome:
    """Replace the database at `url` with the backup at `path`. An empty database is written
    without asking; one that holds data only with `force`."""
    if not path.is_file():
        raise BackupError(f"no backup file {path}")
    revision = _sqlite_backup_revision(path) if _is_sqlite(url) else _pg_backup_revision(path)
    if revision is not None and revision not in migrate.revisions():
        raise BackupError(
            f"{path} is at migration {revision}, which this version of Perkflow does not know: "
            "restore it with the Perkflow version that made it, or a newer one"
        )
    if not force and not is_empty(engine):
        raise BackupError(
            "the database is not empty: restoring would replace its data; pass --force to do so"
        )
    engine.dispose()
    if _is_sqlite(url):
        _sqlite_restore(path, _sqlite_path(url, must_exist=False))
    else:
        _pg_restore(engine, make_url(url), path)
    return Outcome(path, revision, path.stat().st_size)


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if "alembic_version" not in inspect(conn).get_table_names():
            return None
    return migrate.current(engine)


# --- SQLite ------------------------------------------------------------------------------------


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_path(url: str, *, must_exist: bool) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored: use a file")
    path = Path(database)
    if must_exist and not path.is_file():
        raise BackupError(f"no database file {path}")
    return path


def _copy(source: sqlite3.Connection, target: sqlite3.Connection) -> None:
    with target:
        source.backup(target)


def _sqlite_backup(database: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        target = sqlite3.connect(partial)
        try:
            _copy(source, target)
            # A backup is one self-contained file: no WAL beside it.
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            source.close()
            target.close()
        os.replace(partial, path)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up {database}: {exc}") from None
    finally:
        Path(partial).unlink(missing_ok=True)


def _sqlite_backup_revision(path: Path) -> str | None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        raise BackupError(f"{path} is not a Perkflow backup of an SQLite database") from None
    return row[0] if row else None


def _sqlite_restore(path: Path, database: Path) -> None:
    database.parent.mkdir(parents=True, exist_ok=True)
    try:
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        target = sqlite3.connect(database)
        try:
            _copy(source, target)
            target.execute("PRAGMA journal_mode=WAL")  # as Perkflow opens it
        finally:
            source.close()
            target.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot restore {path} into {database}: {exc}") from None


# --- PostgreSQL --------------------------------------------------------------------------------


def _server_major(engine: Engine) -> int:
    with engine.connect() as conn:
        number = int(conn.execute(text("SHOW server_version_num")).scalar_one())
    return number // 10000


def _client_major(program: str) -> int | None:
    try:
        out = subprocess.run([program, "--version"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return None
    match = _VERSION.search(out)
    return int(match.group(1)) if match else None


def pg_tool(name: str, server_major: int) -> str:
    """The newest `pg_dump` or `pg_restore` that can talk to a server of this major version."""
    candidates = [shutil.which(name)] + sorted(
        str(p) for p in Path("/usr/lib/postgresql").glob(f"*/bin/{name}")
    )
    found = {c: _client_major(c) for c in dict.fromkeys(c for c in candidates if c)}
    usable = [(major, c) for c, major in found.items() if major is not None and major >= server_major]
    if usable:
        return max(usable)[1]
    if not any(major is not None for major in found.values()):
        raise BackupError(
            f"{name} is not installed: install the PostgreSQL client tools, version {server_major} or newer "
            "(on Debian: apt-get install postgresql-client)"
        )
    have = ", ".join(f"{c} ({major})" for c, major in found.items() if major is not None)
    raise BackupError(
        f"the server runs PostgreSQL {server_major} but the only {name} found is older: {have}; "
        f"install the client tools of version {server_major} or newer"
    )


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection URI without the password, and the environment that carries it."""
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = done.stderr.strip() or f"exit status {done.returncode}"
        raise BackupError(f"{what} failed: {detail}")


def _pg_dump(engine: Engine, url: URL, path: Path) -> None:
    program = pg_tool("pg_dump", _server_major(engine))
    dsn, env = _libpq(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        _run(
            [program, "--format=custom", "--no-owner", f"--file={partial}", f"--dbname={dsn}"], env, "pg_dump"
        )
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)


def _pg_backup_revision(path: Path) -> str | None:
    """The migration recorded in a pg_dump archive, read with pg_restore without a server."""
    program = pg_tool("pg_restore", 0)
    done = subprocess.run(
        [program, "--data-only", "--table=alembic_version", "--file=-", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"{path} is not a pg_dump archive of a Perkflow database: {done.stderr.strip()}")
    lines = done.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line and i + 1 < len(lines):
            value = lines[i + 1].strip()
            return value if _REVISION.match(value) else None
    return None


def _pg_restore(engine: Engine, url: URL, path: Path) -> None:
    program = pg_tool("pg_restore", _server_major(engine))
    dsn, env = _libpq(url)
    _run(
        [
            program,
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--no-owner",
            f"--dbname={dsn}",
            str(path),
        ],
        env,
        "pg_restore",
    )
