"""Running a deployment from the command line: migrations, API keys, users, scheme versions,
imports, exports and backups.

Each command opens the database named by `--database-url` (default: the server's settings,
perkflow/settings.py: PERKFLOW_DATABASE_URL, else perkflow.sqlite in the data folder), calls one
function of the service or of storage, and prints the outcome: results on stdout, messages for
people and `Error: ...` on stderr. Exit status: 0 when it worked, 1 when the service or the
database refused, 2 for a usage error.

The commands are registered on the `perkflow` app by `register`, in perkflow/cli/main.py.
"""

from __future__ import annotations

import csv
import getpass
import json
import os
import re
import secrets
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any, NoReturn

import typer
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from perkflow.engine.events import parse_instant
from perkflow.rules import Loaded, canonical_json, load, loads
from perkflow.service import exports, subjects
from perkflow.service.core import Service, open_service
from perkflow.service.imports import Imported, import_batch
from perkflow.service.problems import Problem
from perkflow.service.versions import Version
from perkflow.settings import Settings, SettingsError
from perkflow.storage import backup as backups
from perkflow.storage import migrate
from perkflow.storage.db import open_engine

from . import views

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        help="The database, sqlite:///path/to/file.sqlite or postgresql://user:password@host/name. "
        "Default: PERKFLOW_DATABASE_URL, else perkflow.sqlite in the data folder.",
        show_default=False,
    ),
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        metavar="DIR",
        help="The server's data folder, which holds the data key unless PERKFLOW_DATA_KEY is set. "
        "Default: PERKFLOW_DATA_DIR, else data.",
        show_default=False,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print a JSON document on stdout, for programs.")]


def _sub_app(name: str, help_text: str) -> typer.Typer:
    return typer.Typer(
        name=name, help=help_text, no_args_is_help=True, add_completion=False, rich_markup_mode=None
    )


db = _sub_app(
    "db",
    "Create and upgrade the database's tables.\n\n"
    "The server upgrades the tables when it starts; these commands do it ahead of a deployment and "
    "say where a database stands.",
)
keys = _sub_app(
    "keys",
    "Create and revoke API keys.\n\n"
    "An API key is a bearer token with scopes, optionally bound to stores. Its secret is shown once, "
    "when it is created, and stored only as a digest.",
)
users = _sub_app(
    "users",
    "Create the people who sign in to the editor.\n\n"
    "The first admin of a new deployment is made here: perkflow users create NAME --role admin.",
)


# --- helpers -----------------------------------------------------------------------------------


def _fail(message: str) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


def _refused(problem: Problem) -> NoReturn:
    typer.echo(f"Error: {problem.detail} [{problem.code}]", err=True)
    for error in problem.errors:
        typer.echo(f"  {error.pointer or '/'}: {error.message} [{error.code}]", err=True)
    raise typer.Exit(1)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _actor() -> str:
    """Who runs the command, as the audit log records it: the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in this environment
        return "cli"


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as given, by the error that names it
        return url


def _reason(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _engine(url: str, *, create: bool = False) -> Engine:
    """An engine on the database; an SQLite file that is not there is an error unless `create`."""
    try:
        parsed = make_url(url)
    except Exception:
        _fail(f"not a database URL: {url!r} (sqlite:///path/to/file.sqlite or postgresql://user@host/name)")
    if parsed.get_backend_name() == "sqlite" and not create:
        database = parsed.database or ""
        if database and database != ":memory:" and not Path(database).is_file():
            _fail(
                f"no database file {database}: run `perkflow db upgrade` to create it, "
                "or point --database-url (PERKFLOW_DATABASE_URL) at the right one"
            )
    try:
        return open_engine(url)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        _fail(f"cannot open the database {_shown(url)}: {_reason(exc)}")


def _current(engine: Engine, url: str) -> str | None:
    try:
        return migrate.current(engine)
    except SQLAlchemyError as exc:
        _fail(f"cannot reach the database {_shown(url)}: {_reason(exc)}")


@contextmanager
def _service(database_url: str | None, data_dir: Path | None) -> Iterator[Service]:
    """The service on a database at the newest migration (the CLI never migrates unasked)."""
    settings = _settings(database_url, data_dir)
    url = settings.database_url
    engine = _engine(url)
    try:
        revision = _current(engine, url)
    finally:
        engine.dispose()
    if revision != migrate.head():
        _fail(
            f"the database {_shown(url)} is at migration {revision or '(none)'}, not {migrate.head()}: "
            "run `perkflow db upgrade` first"
        )
    service = open_service(url, settings.data_dir, data_key=settings.data_key, upgrade=False)
    try:
        yield service
    except SQLAlchemyError as exc:
        _fail(f"the database {_shown(url)} failed: {_reason(exc)}")
    finally:
        service.engine.dispose()


def _settings(database_url: str | None = None, data_dir: Path | None = None) -> Settings:
    """The server's settings (perkflow/settings.py), with what the command line says over them."""
    overrides = {
        "PERKFLOW_DATABASE_URL": database_url,
        "PERKFLOW_DATA_DIR": str(data_dir) if data_dir else None,
    }
    try:
        return Settings.from_env({**os.environ, **{k: v for k, v in overrides.items() if v}})
    except SettingsError as exc:
        _fail(str(exc))


def _instant(value: str) -> datetime:
    instant = parse_instant(value)
    if instant is None:
        raise typer.BadParameter(f"{value!r} is not a time with an offset, such as 2026-07-01T00:00:00+08:00")
    return instant


# --- db ------------------------------------------------------------------------------------------


@db.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Create the tables, or bring them to the newest migration.

    Migrations only add tables and columns, so an upgrade is safe while an older server still
    runs. An SQLite file that is not there yet is created.
    """
    url = _settings(database_url).database_url
    engine = _engine(url, create=True)
    try:
        before = _current(engine, url)
        try:
            migrate.upgrade(engine)
        except SQLAlchemyError as exc:
            _fail(f"the upgrade of {_shown(url)} failed: {_reason(exc)}")
        after = migrate.current(engine)
    finally:
        engine.dispose()
    if before == after:
        typer.echo(f"already at the newest migration {after}")
    else:
        typer.echo(f"upgraded {_shown(url)} from {before or '(empty)'} to {after}")


@db.command("status")
def db_status(database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Say which migration the database is at and which are pending.

    Exit status: 0 when the database is at the newest migration, 1 when migrations are pending
    (or the database is newer than this Perkflow, or cannot be reached), 2 for a usage error.
    """
    url = _settings(database_url).database_url
    engine = _engine(url)
    try:
        current = _current(engine, url)
    finally:
        engine.dispose()
    known, head = migrate.revisions(), migrate.head()
    unknown = current is not None and current not in known
    pending = [] if unknown else known[known.index(current) + 1 :] if current else known
    if as_json:
        _print_json({"current": current, "head": head, "pending": pending, "known": not unknown})
    else:
        typer.echo(f"current: {current or '(none)'}")
        typer.echo(f"head:    {head}")
        if unknown:
            typer.echo(
                f"migration {current} is unknown to this Perkflow: a newer Perkflow migrated the database"
            )
        elif pending:
            typer.echo(f"{len(pending)} pending: {', '.join(pending)}; run `perkflow db upgrade`")
        else:
            typer.echo("up to date")
    raise typer.Exit(1 if unknown or pending else 0)


# --- keys and users ----------------------------------------------------------------------------


@keys.command("create")
def keys_create(
    name: Annotated[
        str,
        typer.Argument(metavar="NAME", help="What the key is for, such as pos-shanghai.", show_default=False),
    ],
    scopes: Annotated[
        list[str],
        typer.Option(
            "--scope",
            metavar="SCOPE",
            help="A scope the key grants, such as events:write; repeat for more.",
            show_default=False,
        ),
    ],
    stores: Annotated[
        list[str] | None,
        typer.Option(
            "--store",
            metavar="ID",
            help="Bind the key to this store; repeat for more. Default: every store.",
            show_default=False,
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key and print its token, once.

    The token (`<key id>.<secret>`) goes to stdout and is never shown again: store it now. The key
    id names the key in lists, in the audit log and for `perkflow keys revoke`. Scopes:
    events:write, events:read, members:read, members:write, coupons:write, rewards:write,
    schemes:read, schemes:publish, schemes:approve, keys:admin.
    """
    with _service(database_url, data_dir) as service:
        created = service.access.create_key(name, scopes, created_by=_actor(), stores=stores or None)
    if isinstance(created, Problem):
        _refused(created)
    key_id, token = created
    if as_json:
        _print_json(
            {
                "id": key_id,
                "token": token,
                "name": name,
                "scopes": sorted(set(scopes)),
                "stores": stores or None,
            }
        )
        return
    typer.echo(f"key id: {key_id}")
    typer.echo(f"token: {token}")
    typer.echo("The token is shown once: store it now.", err=True)


@keys.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key id (pk_...).", show_default=False)],
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Revoke an API key: from now on its token is refused. The audit log records who did it."""
    with _service(database_url, data_dir) as service:
        done = service.access.revoke_key(key_id, actor=_actor())
    if not done:
        _fail(f"no active key '{key_id}' (unknown, or already revoked)")
    typer.echo(f"revoked {key_id}")


@users.command("create")
def users_create(
    username: Annotated[
        str, typer.Argument(metavar="USERNAME", help="The name to sign in with.", show_default=False)
    ],
    roles: Annotated[
        list[str],
        typer.Option(
            "--role",
            metavar="ROLE",
            help="admin, operator, approver, store_manager, finance, support or auditor; repeat for more.",
            show_default=False,
        ),
    ],
    stores: Annotated[
        list[str] | None,
        typer.Option(
            "--store",
            metavar="ID",
            help="A store a store manager looks after; repeat for more.",
            show_default=False,
        ),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the password from the first line of stdin instead of asking."
        ),
    ] = False,
    generate: Annotated[
        bool,
        typer.Option(
            "--generate",
            help="Make up a one-time password, print it once; it must be changed at first sign-in.",
        ),
    ] = False,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Create a user who signs in to the editor.

    The password is asked for twice (it is not echoed), read from stdin with --password-stdin, or
    made up with --generate and printed once on stdout. A password has at least 12 characters; it
    is stored as an argon2 hash. This is how the first admin of a deployment is made:

    \b
        perkflow db upgrade
        perkflow users create alice --role admin --generate
    """
    if password_stdin and generate:
        raise typer.BadParameter("give --password-stdin or --generate, not both")
    with _service(database_url, data_dir) as service:  # a database that is not ready says so before asking
        if generate:
            password = secrets.token_urlsafe(15)
        elif password_stdin:
            password = typer.get_text_stream("stdin").readline().rstrip("\r\n")
        else:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
        created = service.access.create_user(
            username,
            password,
            roles,
            created_by=_actor(),
            stores=stores or None,
            must_change_password=generate,
        )
    if isinstance(created, Problem):
        _refused(created)
    granted = sorted(set(roles))
    typer.echo(f"created user {username} with role{'s' if len(granted) > 1 else ''} {', '.join(granted)}")
    if generate:
        typer.echo(f"one-time password: {password}")
        typer.echo("The password is shown once; it must be changed at first sign-in.", err=True)


# --- versions ----------------------------------------------------------------------------------

Author = Annotated[
    str | None,
    typer.Option(
        "--author",
        metavar="NAME",
        help="Who asks, as the version records it. Default: cli:<your user name>.",
        show_default=False,
    ),
]


def _show_version(version: Version, as_json: bool) -> None:
    if as_json:
        _print_json(version.to_dict())
        return
    if version.status == "published":
        typer.echo(f"published as version {version.number}")
    else:
        typer.echo(f"submitted as id:{version.id}, waiting for approval by someone else")
    typer.echo(f"hash: {version.hash}")


def _scheme_text(path: Path) -> str:
    """The scheme of a file or folder as canonical JSON; its errors, located, end the command."""
    loaded = load(path)
    for error in loaded.errors:
        typer.echo(error.render(), err=True)
    if not loaded.ok:
        _fail(f"{len(loaded.errors)} error(s) in {path}: nothing was submitted")
    assert loaded.scheme is not None
    return canonical_json(loaded.scheme)


def publish(
    scheme: Annotated[
        Path,
        typer.Argument(
            metavar="SCHEME",
            help="A scheme file (.yaml, .yml, .json) or a folder of them.",
            show_default=False,
        ),
    ],
    comment: Annotated[
        str, typer.Option("--comment", metavar="TEXT", help="Why this version, for the log.")
    ] = "",
    effective_at: Annotated[
        datetime | None,
        typer.Option(
            "--effective-at",
            parser=_instant,
            metavar="TIME",
            help="When it takes effect, ISO 8601 with an offset (2026-07-01T00:00:00+08:00). "
            "Default: when it is published.",
            show_default=False,
        ),
    ] = None,
    author: Author = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Submit a scheme as a new version.

    The scheme is checked first; errors are printed as `perkflow validate` prints them and nothing
    is stored. While the scheme requires approval (the default), the version waits for someone
    other than its author: it prints `submitted as id:N, waiting for approval by someone else`,
    and `perkflow approve id:N --approver NAME` publishes it. A scheme whose governance turns
    approval off is published at once: `published as version N`.
    """
    content = _scheme_text(scheme)
    with _service(database_url, data_dir) as service:
        version = service.versions.submit(
            content,
            author=author or _actor(),
            comment=comment,
            effective_at=effective_at,
            filename=str(scheme),
        )
    if isinstance(version, Problem):
        _refused(version)
    _show_version(version, as_json)


def _version_id(value: str) -> int:
    text = value.removeprefix("id:")
    if not text.isdigit():
        raise typer.BadParameter(f"{value!r} is not a version id such as id:7")
    return int(text)


def approve(
    version_id: Annotated[
        int,
        typer.Argument(
            metavar="ID", parser=_version_id, help="The submitted version: id:7 (or 7).", show_default=False
        ),
    ],
    approver: Annotated[
        str,
        typer.Option(
            "--approver", metavar="NAME", help="Who approves; never the version's author.", show_default=False
        ),
    ],
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Approve a submitted version, which publishes it.

    Four eyes: the approver must not be the version's author. The version gets the next number
    and is in force from its effective time (or now).
    """
    with _service(database_url, data_dir) as service:
        version = service.versions.approve(version_id, approver=approver)
    if isinstance(version, Problem):
        _refused(version)
    _show_version(version, as_json)


def versions(
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print every version as JSON, full hashes included.")
    ] = False,
) -> None:
    """List the scheme's versions.

    A table of number, id, status, hash (its first 12 digits), author, approver, when and comment.
    Versions waiting for approval have no number yet; `when` is the publication time, or the
    submission time for versions not published.
    """
    with _service(database_url, data_dir) as service:
        listed = service.versions.list()
    if as_json:
        _print_json([v.to_dict() for v in listed])
        return
    if not listed:
        typer.echo("no versions yet: submit one with `perkflow publish SCHEME`")
        return
    views.Out.stdout().table(
        "versions",
        ["number", "id", "status", "hash", "author", "approver", "when", "comment"],
        (
            [
                v.number,
                f"id:{v.id}",
                v.status,
                v.hash.rpartition(":")[2][:12],
                v.author,
                v.approver,
                (v.published_at or v.created_at).isoformat(timespec="seconds"),
                v.comment or None,
            ]
            for v in listed
        ),
    )


def rollback(
    number: Annotated[
        int, typer.Argument(metavar="N", help="The published version to return to.", show_default=False)
    ],
    comment: Annotated[
        str,
        typer.Option("--comment", metavar="TEXT", help="Why, for the log. Default: roll back to version N."),
    ] = "",
    author: Author = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Submit an earlier published version again, as a new version.

    History is never rewritten: the old content comes back as the next version, through four
    eyes like any other (approve it with `perkflow approve`).
    """
    with _service(database_url, data_dir) as service:
        version = service.versions.rollback(number, author=author or _actor(), comment=comment)
    if isinstance(version, Problem):
        _refused(version)
    _show_version(version, as_json)


# --- stored versions for `perkflow diff` -------------------------------------------------------

_STORED = re.compile(r"^(v:\d+|id:\d+|sha256-v\d+:[0-9a-f]{64})$")


def is_stored_ref(text: str) -> bool:
    """Whether `text` names a stored version (v:3, id:7 or a content hash) rather than a file."""
    return bool(_STORED.match(text))


def load_stored(ref: str, database_url: str | None) -> Loaded:
    """The scheme of a stored version, loaded as a file would be (named by its reference)."""
    with _service(database_url, None) as service:
        found = service.versions.find(ref)
        url = str(service.engine.url)
    if isinstance(found, Problem):
        _fail(f"no stored version '{ref}' in {_shown(url)}")
    return loads(found[1], ref)


# --- import ------------------------------------------------------------------------------------


@dataclass
class _Lines:
    """A JSON Lines file read line by line; `position` and `size` drive the progress bar."""

    path: Path
    position: int = 0
    size: int = 0

    def __iter__(self) -> Iterator[tuple[int, Any, str]]:
        """(line number, the parsed value or None, why it could not be read or '')."""
        try:
            handle = self.path.open("rb")
        except OSError as exc:
            _fail(f"cannot read {self.path}: {exc.strerror or exc}")
        with handle:
            self.size = self.path.stat().st_size
            for number, raw in enumerate(handle, 1):
                self.position += len(raw)
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    yield number, None, f"not UTF-8 text ({exc.reason} at byte {exc.start + 1})"
                    continue
                if not line.strip():
                    continue
                try:
                    yield number, json.loads(line), ""
                except json.JSONDecodeError as exc:
                    yield number, None, f"not valid JSON at column {exc.colno}: {exc.msg}"


def _batches(lines: _Lines, size: int) -> Iterator[list[tuple[int, Any, str]]]:
    batch: list[tuple[int, Any, str]] = []
    for item in lines:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class _Tally:
    applied: int = 0
    already: int = 0
    refused: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return self.applied + self.already + sum(self.refused.values())

    def count(self, result: Imported) -> Problem | None:
        """Count an event applied or already there; a refused one is the caller's, with its problem."""
        if result.outcome == "applied":
            self.applied += 1
        elif result.outcome == "already_applied":
            self.already += 1
        return result.problem


def import_events(
    events: Annotated[
        Path,
        typer.Argument(
            metavar="EVENTS",
            help="Events in JSON Lines: one event object a line, in arrival order.",
            show_default=False,
        ),
    ],
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            min=1,
            metavar="N",
            help="How many events are read, and checked for being already there, at a time.",
        ),
    ] = 500,
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects",
            metavar="FILE",
            help="Write each refused event, with its line and problem, to this JSON Lines file.",
            show_default=False,
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Apply a JSON Lines file of events, one by one, as the API would.

    Each event is applied in its own transaction with exactly the checks of the API, so a
    failure halfway loses nothing: run the import again. Events already stored with the same
    body are skipped and counted as already there; an event id stored with another body is
    refused (event_id_reused). Progress goes to stderr. The summary counts the events applied,
    already there and refused, by problem code; --rejects keeps every refused event with its
    line number and problem, for fixing and importing again.

    Exit status: 0 when every event is applied or already there, 1 when any is refused (or the
    file cannot be read), 2 for a usage error.
    """
    from .main import Progress  # the bar `perkflow simulate` shows

    if not events.is_file():
        _fail(f"no such file: {events}" if not events.exists() else f"{events} is not a file of events")
    lines, tally = _Lines(events), _Tally()
    with (
        _service(database_url, data_dir) as service,
        _refusals(events, rejects) as refuse,
        Progress(lines, f"importing {events.name}") as progress,  # type: ignore[arg-type]
    ):
        for batch in _batches(lines, batch_size):
            results = import_batch(service, [value for _, value, unreadable in batch if not unreadable])
            for number, value, unreadable in batch:
                if unreadable:
                    problem: Problem | None = Problem(422, "invalid_json", "Not an event", unreadable)
                else:
                    problem = tally.count(next(results))
                if problem is not None:
                    tally.refused[problem.code] += 1
                    refuse(number, value, problem)
            progress(tally.total)
    if as_json:
        _print_json(
            {
                "file": str(events),
                "applied": tally.applied,
                "already_applied": tally.already,
                "refused": sum(tally.refused.values()),
                "refused_by_code": dict(sorted(tally.refused.items())),
            }
        )
    else:
        typer.echo(
            f"{events}: {tally.applied} applied, {tally.already} already there, "
            f"{sum(tally.refused.values())} refused"
        )
        for code, n in sorted(tally.refused.items()):
            typer.echo(f"  {code}: {n}")
    if tally.refused:
        where = f"see {rejects}" if rejects is not None else "pass --rejects FILE to keep them"
        typer.echo(f"{sum(tally.refused.values())} event(s) refused: {where}", err=True)
        raise typer.Exit(1)


def import_opening_command(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="Members with their opening balances: JSON Lines (.jsonl), or CSV (.csv) with the columns of docs/operations.md.",
            show_default=False,
        ),
    ],
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Import members from another system with their balances, lots and expiry dates, tier with
    the day it was reached, and unused coupons (期初导入).

    Each member becomes one `opening` event (id opening:<member>) whose lots are ledger entries of
    kind opening. A member is checked whole before anything is written: a refused member leaves
    nothing behind, and the report names its line and why. Running the import again counts the
    members already opened with the same content as already there. Personal data (phone, email,
    name, birthday) is encrypted as by a member PUT.

    Exit status: 0 when every member is imported or already there, 1 when any is refused (or the
    file cannot be read), 2 for a usage error.
    """
    from perkflow.service.opening import import_opening, read_csv, read_jsonl

    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror or exc}")
    records = read_csv(text) if file.suffix.lower() == ".csv" else read_jsonl(text)
    with _service(database_url, data_dir) as service:
        report = import_opening(service, records, actor=_actor())
    if as_json:
        _print_json({"file": str(file), **report.to_dict()})
    else:
        typer.echo(f"{file}: {len(report.accepted)} imported, {len(report.already)} already there, {len(report.refused)} refused")
        for r in report.refused:
            typer.echo(f"  {file}:{r.line}: {r.member_id or '(no member)'}: {r.message} [{r.code}]{' at ' + r.pointer if r.pointer else ''}")
    if report.refused:
        raise typer.Exit(1)


@contextmanager
def _refusals(events: Path, rejects: Path | None) -> Iterator[Callable[[int, Any, Problem], None]]:
    """Where refused events go: each as a JSON line of --rejects, or else the first few on stderr."""
    if rejects is None:
        shown = 0

        def show(number: int, value: Any, problem: Problem) -> None:
            nonlocal shown
            shown += 1
            if shown <= views.REJECTIONS_SHOWN:
                event_id = value.get("id") if isinstance(value, dict) else None
                typer.echo(
                    f"{events}:{number}: {event_id or '(no id)'}: {problem.detail} [{problem.code}]", err=True
                )

        yield show
        return
    try:
        handle = rejects.open("w", encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {rejects}: {exc.strerror or exc}")
    with handle:

        def write(number: int, value: Any, problem: Problem) -> None:
            item = {"line": number, "event": value, "problem": problem.to_dict()}
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")

        yield write


# --- export ------------------------------------------------------------------------------------


class ExportKind(StrEnum):
    members = "members"
    ledger = "ledger"


class ExportFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


def export(
    kind: Annotated[
        ExportKind, typer.Argument(metavar="WHAT", help="members or ledger.", show_default=False)
    ],
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="CSV with a header line, or JSON Lines.")
    ] = ExportFormat.csv,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write to this file instead of stdout.", show_default=False
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Export members or the ledger for reporting, as CSV or JSON Lines.

    members: external id, status, home store, tier, joined_at and each balance (in CSV, a column
    balance.<name> per balance). No personal data: no phone, email, name or birthday. Balances
    are as of each member's latest event.

    ledger: every ledger row in the order it was written: id, member (external id), event, balance,
    part, kind, amount, debt, rule, version, occurred_at, recorded_at and the lots it touched.

    Rows are read in batches, never all at once, so exports of any size run in little memory.
    """
    members = kind is ExportKind.members
    with _service(database_url, data_dir) as service:
        balances = exports.balance_names(service.engine) if members else []
        rows = exports.members(service.engine) if members else exports.ledger(service.engine)
        fields = (
            [*exports.MEMBER_FIELDS, *(f"balance.{b}" for b in balances)]
            if members
            else exports.LEDGER_FIELDS
        )
        try:
            handle = output.open("w", encoding="utf-8", newline="") if output is not None else sys.stdout
        except OSError as exc:
            _fail(f"cannot write {output}: {exc.strerror or exc}")
        try:
            count = _write(handle, rows, fmt, list(fields), balances)
        except BrokenPipeError:  # `perkflow export ledger | head`: the reader has had enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
            raise typer.Exit(1) from None
        finally:
            if output is not None:
                handle.close()
    noun = "member" if members else "ledger row"
    where = f" to {output}" if output else ""
    typer.echo(f"exported {count} {noun}{'' if count == 1 else 's'}{where}", err=True)


def _write(
    handle: IO[str], rows: Iterable[dict[str, Any]], fmt: ExportFormat, fields: list[str], balances: list[str]
) -> int:
    count = 0
    if fmt is ExportFormat.csv:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for item in rows:
            writer.writerow(exports.flat(item, balances))
            count += 1
    else:
        for item in rows:
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")
            count += 1
    return count


# --- backup and restore ------------------------------------------------------------------------

BackupFile = Annotated[Path, typer.Argument(metavar="FILE", help="The backup file.", show_default=False)]


def backup(file: BackupFile, database_url: DatabaseUrl = None) -> None:
    """Write a consistent backup of the whole database to FILE.

    SQLite: a copy of the database file made with SQLite's online backup API, consistent even
    while the server writes. PostgreSQL: `pg_dump --format=custom`, one snapshot; pg_dump must be
    installed, at the server's major version or newer. FILE is replaced if it exists.
    """
    url = _settings(database_url).database_url
    engine = _engine(url)
    try:
        done = backups.backup(url, engine, file)
    except backups.BackupError as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(f"cannot reach the database {_shown(url)}: {_reason(exc)}")
    finally:
        engine.dispose()
    typer.echo(f"backed up {_shown(url)} (migration {done.revision}) to {file} ({done.size} bytes)")


def restore(
    file: BackupFile,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a database that already holds data.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Replace the database with a backup made by `perkflow backup`.

    An empty database (new, or with tables but no rows) is restored into without asking; one that
    holds data only with --force. Stop the server first. PostgreSQL backups are restored with
    `pg_restore --clean --if-exists` in one transaction: all or nothing. A backup of an older
    migration is restored as it is: run `perkflow db upgrade` afterwards.
    """
    settings = _settings(database_url)
    url = settings.database_url
    engine = _engine(url, create=True)
    try:
        # The erasures made since the backup must survive it: kept in the register file first.
        subjects.write_register(settings.data_dir, _erasures(engine, settings.data_dir))
        done = backups.restore(url, engine, file, force=force)
    except backups.BackupError as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(f"cannot reach the database {_shown(url)}: {_reason(exc)}")
    finally:
        engine.dispose()
    typer.echo(f"restored {file} (migration {done.revision}) into {_shown(url)}")
    if done.revision != migrate.head():
        typer.echo(
            f"the database is at migration {done.revision}: run `perkflow db upgrade`, then "
            "`perkflow erasures reapply` to erase again the members erased since the backup",
            err=True,
        )
        return
    with _service(database_url, None) as service:
        again = service.subjects.reapply(service.subjects.register(), actor=_actor())
    typer.echo(f"erased {again} member{'' if again == 1 else 's'} again from the erasure register")


def _erasures(engine: Engine, data_dir: Path) -> list[dict[str, Any]]:
    """The register as the database about to be replaced knows it (nothing from one without it)."""
    try:
        return subjects.read_register(engine, data_dir)
    except SQLAlchemyError:
        return subjects.read_register(None, data_dir)


# --- registration ------------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    """Add the operations commands to the `perkflow` app."""
    app.add_typer(db)
    app.add_typer(keys)
    app.add_typer(users)
    app.command()(publish)
    app.command()(approve)
    app.command()(versions)
    app.command()(rollback)
    app.command(name="import")(import_events)
    app.command(name="import-opening")(import_opening_command)
    app.command()(export)
    app.command()(backup)
    app.command()(restore)
