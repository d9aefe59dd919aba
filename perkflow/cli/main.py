"""The `perkflow` command: thin Typer adapters over `perkflow.rules` and `perkflow.engine`.

Each command loads its input, calls one function of the core and prints the result. People read
stderr and the plain tables on stdout; programs pass `--json` and read stdout. Exit status: 0 when
the input is fine, 1 when it has errors, 2 for a usage error (Click's default).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from perkflow.engine import Replay, compile, replay
from perkflow.engine.events import parse_instant
from perkflow.rules import Loaded, SchemeError, content_hash, diff, load, render
from perkflow.rules.schema import json_schema

from . import evidence, ops, privacy, reports, scheduling, serve, views

app = typer.Typer(
    name="perkflow",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain, stable help text: docs/cli.md is generated from it
    pretty_exceptions_enable=False,
)

SchemePath = Annotated[
    Path,
    typer.Argument(
        metavar="SCHEME", help="A scheme file (.yaml, .yml, .json) or a folder of them.", show_default=False
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print a JSON document on stdout, for programs.")]


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"perkflow {version('perkflow')}")
        except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
            typer.echo("perkflow (not installed)")
        raise typer.Exit()


@app.callback()
def root(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Perkflow: check, compare and replay loyalty schemes, and run a deployment.

    Errors name the file, line, column and field. Exit status: 0 when the input is fine, 1 when it
    has errors, 2 for a usage error.
    """


# --- validate, lint, schema --------------------------------------------------------------------


def _load(path: Path, *, stored: bool = False, database_url: str | None = None) -> Loaded:
    text = str(path)
    if stored and not path.exists() and ops.is_stored_ref(text):
        return ops.load_stored(text, database_url)
    if not path.exists() and (text.startswith("v:") or text.startswith("sha256-")):
        _fail(
            f"'{text}' names a stored version, which only `perkflow diff` reads: pass a scheme file or folder"
        )
    return load(path)


def _show(diagnostics: list[SchemeError]) -> None:
    for diagnostic in diagnostics:
        typer.echo(diagnostic.render(), err=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _summary(loaded: Loaded, *, ok: bool) -> dict[str, Any]:
    return {
        "ok": ok,
        "scheme": loaded.scheme.id if loaded.scheme else None,
        "hash": content_hash(loaded.scheme) if loaded.scheme else None,
        "errors": [e.as_dict() for e in loaded.errors],
        "warnings": [w.as_dict() for w in loaded.warnings],
    }


@app.command()
def validate(path: SchemePath, as_json: JsonFlag = False) -> None:
    """Check a scheme file or folder and report every error.

    Every error is reported at once, each with its file, line, column and field path. Errors and
    lint warnings go to stderr, one a line, as
    `file:line:column: path: message [code]`. A valid scheme prints `ok: <id> (<content hash>)` on
    stdout. Warnings do not fail validation; use `perkflow lint --strict` for that.

    Exit status: 0 when the scheme is valid, 1 when it has errors, 2 for a usage error.
    """
    loaded = _load(path)
    if as_json:
        _print_json(_summary(loaded, ok=loaded.ok))
    else:
        _show(loaded.errors)
        _show(loaded.warnings)
        if loaded.ok:
            assert loaded.scheme is not None
            typer.echo(f"ok: {loaded.scheme.id} ({content_hash(loaded.scheme)})")
        else:
            typer.echo(f"{_count(len(loaded.errors), 'error')} in {path}", err=True)
    raise typer.Exit(0 if loaded.ok else 1)


@app.command()
def lint(
    path: SchemePath,
    as_json: JsonFlag = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit with status 1 when there are warnings.")
    ] = False,
) -> None:
    """Warn about what a valid scheme probably does not mean.

    The checks find rules that are never tried (shadowed), tiers nobody can reach, awards
    multiplied with no cap or budget, campaigns that overlap with no rule to decide, and coupons
    worth more than their minimum spend.

    Warnings go to stdout, one a line, as `file:line:column: path: warning: message [code]`,
    followed by a count. A scheme with errors is not linted: its errors go to stderr.

    Exit status: 0 when there are no errors (and, with --strict, no warnings), 1 otherwise, 2 for a
    usage error.
    """
    loaded = _load(path)
    ok = loaded.ok and not (strict and loaded.warnings)
    if as_json:
        _print_json(_summary(loaded, ok=ok))
        raise typer.Exit(0 if ok else 1)
    if not loaded.ok:
        _show(loaded.errors)
        typer.echo(f"{_count(len(loaded.errors), 'error')} in {path}: lint needs a valid scheme", err=True)
        raise typer.Exit(1)
    assert loaded.scheme is not None
    for warning in loaded.warnings:
        typer.echo(warning.render())
    typer.echo(
        f"{loaded.scheme.id}: {_count(len(loaded.warnings), 'warning') if loaded.warnings else 'no warnings'}"
    )
    raise typer.Exit(0 if ok else 1)


@app.command()
def schema(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write the schema to this file instead of stdout."
        ),
    ] = None,
) -> None:
    """Print the JSON Schema of scheme files.

    The schema follows JSON Schema draft 2020-12. Editors use it to complete and check scheme
    files as they are typed; it is generated from the same models the loader validates with.
    """
    text = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror or exc}")


# --- diff --------------------------------------------------------------------------------------


@app.command(name="diff")
def diff_command(
    old: Annotated[
        Path,
        typer.Argument(
            metavar="OLD",
            help="The scheme before: a file, a folder, or a stored version.",
            show_default=False,
        ),
    ],
    new: Annotated[
        Path,
        typer.Argument(
            metavar="NEW", help="The scheme after: a file, a folder, or a stored version.", show_default=False
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the changes as a JSON list, for programs.")
    ] = False,
    database_url: ops.DatabaseUrl = None,
) -> None:
    """Show what changed between two schemes, by id.

    Each item is marked + added, - removed or ~ changed, with every changed field as
    old -> new. Both schemes are compared in canonical form, so formatting, comments, key order and defaults
    written out are no change. A stored version is named v:3 (its number), id:7 (a submitted version)
    or by its content hash, and read from the database of --database-url.

    Exit status: 0 when both schemes load (whatever the differences), 1 when either has errors,
    2 for a usage error.
    """
    before = _load(old, stored=True, database_url=database_url)
    after = _load(new, stored=True, database_url=database_url)
    if not (before.ok and after.ok):
        for path, loaded in ((old, before), (new, after)):
            if not loaded.ok:
                _show(loaded.errors)
                typer.echo(f"{_count(len(loaded.errors), 'error')} in {path}", err=True)
        raise typer.Exit(1)
    assert before.scheme is not None and after.scheme is not None
    changes = diff(before.scheme, after.scheme)
    if as_json:
        _print_json([change.to_dict() for change in changes])
        return
    typer.echo(f"--- {old} ({content_hash(before.scheme)})")
    typer.echo(f"+++ {new} ({content_hash(after.scheme)})")
    typer.echo(render(changes), nl=False)


# --- simulate ----------------------------------------------------------------------------------


class BadStream(Exception):
    """An events file that cannot be read as JSON Lines; the message names the file and line."""


@dataclass
class EventStream:
    """The events of a JSON Lines file, read one line at a time (never the whole file at once)."""

    path: Path
    position: int = 0  # bytes read so far, for the progress bar
    size: int = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.position = 0
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            raise BadStream(f"no such file: {self.path}") from None
        except IsADirectoryError:
            raise BadStream(f"{self.path} is a folder, not a JSON Lines file of events") from None
        except OSError as exc:
            raise BadStream(f"cannot read {self.path}: {exc.strerror or exc}") from None
        with handle:
            self.size = self.path.stat().st_size
            for number, raw in enumerate(handle, 1):
                self.position += len(raw)
                yield from self._decode(number, raw)

    def _decode(self, number: int, raw: bytes) -> Iterator[dict[str, Any]]:
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise BadStream(
                f"{self.path}:{number}: not UTF-8 text ({exc.reason} at byte {exc.start + 1})"
            ) from None
        if not line.strip():
            return
        try:
            value = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise BadStream(f"{self.path}:{number}:{exc.colno}: not valid JSON: {exc.msg}") from None
        if not isinstance(value, dict):
            raise BadStream(f"{self.path}:{number}: an event is a JSON object, got {_json_kind(value)}")
        yield value


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return "null" if value is None else f"{json.dumps(value, default=str)}"


PLAIN_PROGRESS_EVERY = 100_000
"""Without a terminal, a line on stderr every this many events, so a long run shows it is alive."""


class Progress:
    """Progress of a replay on stderr: a bar on a terminal; otherwise a plain line now and then
    for long streams. Never on stdout, so `--json` stays clean."""

    def __init__(self, stream: EventStream, label: str) -> None:
        self.stream, self.label = stream, label
        self.bar: Any = None
        self.task: Any = None
        self.reported = 0

    def __enter__(self) -> Callable[[int], None]:
        from rich.console import Console

        console = Console(stderr=True)
        if console.is_terminal:
            from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self.bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[events]} events"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self.bar.start()
            total = self.stream.path.stat().st_size if self.stream.path.is_file() else None
            self.task = self.bar.add_task(self.label, total=total, events=0)
        return self.update

    def update(self, events: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=self.stream.position, events=events)
        elif events - self.reported >= PLAIN_PROGRESS_EVERY:
            self.reported = events
            share = f" ({100 * self.stream.position // self.stream.size}%)" if self.stream.size else ""
            typer.echo(f"{self.label}: {events} events{share}", err=True)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _instant(value: str) -> datetime:
    instant = parse_instant(value)
    if instant is None:
        raise typer.BadParameter(f"{value!r} is not a time with an offset, such as 2026-07-01T00:00:00+08:00")
    return instant


def _replay(
    scheme_path: Path, loaded: Loaded, stream: EventStream, until: datetime | None, trace: bool
) -> Replay:
    assert loaded.scheme is not None
    program = compile(loaded.scheme)
    with Progress(stream, f"replaying {scheme_path.name}") as progress:
        return replay(program, stream, until=until, trace=trace, progress=progress)


@app.command()
def simulate(
    scheme: SchemePath,
    events: Annotated[
        Path,
        typer.Argument(
            metavar="EVENTS",
            help="Events in JSON Lines: one event object a line, in arrival order.",
            show_default=False,
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole report as JSON, members included.")
    ] = False,
    until: Annotated[
        datetime | None,
        typer.Option(
            parser=_instant,
            metavar="TIME",
            help="Apply expiry and tier reviews due up to this time, ISO 8601 with an offset "
            "(2026-07-01T00:00:00+08:00); default: the last event's time.",
            show_default=False,
        ),
    ] = None,
    compare: Annotated[
        Path | None,
        typer.Option(
            metavar="SCHEME",
            help="Replay the same events through this other scheme too and show the differences.",
            show_default=False,
        ),
    ] = None,
    trace: Annotated[
        bool,
        typer.Option(
            "--trace/--no-trace", help="Record why each rule fired or was skipped (per-rule counts need it)."
        ),
    ] = True,
    members: Annotated[bool, typer.Option("--members", help="Also print each member's final state.")] = False,
) -> None:
    """Replay events through a scheme and report what it would do.

    The events are replayed in memory; nothing is stored. The report gives, per balance, the
    units issued, redeemed, expired, clawed back and outstanding; the members per tier; coupons
    per policy; rewards granted; how often each rule fired or was skipped and why; and the events
    refused (the first few; --json lists them all). Members are listed with --members.

    With --compare, both schemes replay the same stream and a table shows each metric that differs
    (metric | A | B | difference); --json then prints {"a": ..., "b": ..., "differences": [...]}.

    Exit status: 0 when the replay ran (refused events included), 1 when a scheme has errors or
    the events file cannot be read, 2 for a usage error.
    """
    loaded = _load(scheme)
    other = _load(compare) if compare is not None else None
    failed = [(p, x) for p, x in ((scheme, loaded), (compare, other)) if x is not None and not x.ok]
    for path, bad in failed:
        _show(bad.errors)
        typer.echo(f"{_count(len(bad.errors), 'error')} in {path}", err=True)
    if failed:
        raise typer.Exit(1)
    stream = EventStream(events)
    try:
        first = _replay(scheme, loaded, stream, until, trace)
        second = (
            _replay(compare, other, stream, until, trace)
            if compare is not None and other is not None
            else None
        )
    except BadStream as exc:
        _fail(str(exc))
    out = views.Out.stdout()
    if second is None:
        report = first.report()
        if as_json:
            _print_json(report)
        else:
            views.report(out, report, tiers=views.tier_order(first.program), show_members=members)
        return
    a, b = first.report(), second.report()
    differences = views.differences(a, b)
    if as_json:
        _print_json({"a": a, "b": b, "differences": differences})
    else:
        views.comparison(out, a, b, differences, names=(str(scheme), str(compare)))


# --- output ------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"cannot print {type(value).__name__} as JSON")


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=_jsonable))


def _fail(message: str) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


ops.register(app)
serve.register(app)
scheduling.register(app)
privacy.register(app)
evidence.register(app)
reports.register(app)


def run() -> None:
    """`python -m perkflow`: the same command, named `perkflow` in its help."""
    app(prog_name="perkflow")


if __name__ == "__main__":  # pragma: no cover
    run()
