"""`perkflow report NAME`: a report from the database, as a table, CSV or JSON.

The same conventions as perkflow/cli/ops.py: results on stdout, `Error: ...` on stderr; exit
status 0 when it worked, 1 when the service or the database refused, 2 for a usage error.
"""

from __future__ import annotations

import csv
import io
import threading
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console

from perkflow.service.problems import Problem
from perkflow.storage.reports import REPORTS, Table

from .ops import DatabaseUrl, DataDir, _fail, _print_json, _refused, _service


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


class Lang(StrEnum):
    en = "en"
    zh = "zh-CN"


def report(
    name: Annotated[str, typer.Argument(metavar="NAME", help=f"One of: {', '.join(REPORTS)}.", show_default=False)],
    start: Annotated[str | None, typer.Option("--from", metavar="DAY", help="The first local day, YYYY-MM-DD (default: 11 months before this month).", show_default=False)] = None,
    end: Annotated[str | None, typer.Option("--to", metavar="DAY", help="The last local day, included (default: today).", show_default=False)] = None,
    store: Annotated[list[str] | None, typer.Option("--store", metavar="STORE", help="Members of this home store; repeat for more.", show_default=False)] = None,
    channel: Annotated[str | None, typer.Option(metavar="CHANNEL", help="Events made through this channel.", show_default=False)] = None,
    tier: Annotated[str | None, typer.Option(metavar="TIER", help="Members now in this tier.", show_default=False)] = None,
    campaign: Annotated[str | None, typer.Option(metavar="CAMPAIGN", help="The rules of this campaign, or this campaign only.", show_default=False)] = None,
    bucket: Annotated[str, typer.Option(metavar="UNIT", help="day, week or month, in the scheme's timezone.")] = "month",
    limit: Annotated[int, typer.Option(metavar="N", help="Rows of per-member tables.")] = 100,
    output: Annotated[Format, typer.Option("--format", help="table for people, csv or json for programs.")] = Format.table,
    table: Annotated[str | None, typer.Option(metavar="TABLE", help="Only this table of the report (csv prints the first unless told).", show_default=False)] = None,
    lang: Annotated[Lang, typer.Option(help="The language of titles and column labels.")] = Lang.en,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Print a report computed in the database: liability, flows, tiers, coupons, rewards,
    campaigns, retention or rfm. Days and months are the scheme's local ones."""
    query = {
        key: values
        for key, values in {
            "from": [start] if start else [], "to": [end] if end else [], "store": store or [],
            "channel": [channel] if channel else [], "tier": [tier] if tier else [], "campaign": [campaign] if campaign else [],
            "bucket": [bucket], "limit": [str(limit)],
        }.items()
        if values
    }
    with _service(database_url, data_dir) as service, Working(f"report {name}"):
        result = service.reports.run(name, query)
    if isinstance(result, Problem):
        _refused(result)
    tables = result.tables
    if table is not None:
        tables = tuple(t for t in tables if t.name == table)
        if not tables:
            _fail(f"report {name} has no table '{table}'; it has {', '.join(t.name for t in result.tables)}")
    if output is Format.json:
        body = result.to_dict()
        body["tables"] = [t.to_dict() for t in tables]
        _print_json(body)
    elif output is Format.csv:
        typer.echo(_csv(tables[0]), nl=False)
    else:
        title = result.en if lang is Lang.en else result.zh
        typer.echo(f"{title} ({result.filters['from']} .. {result.filters['to']}, {result.filters['timezone']})")
        for t in tables:
            typer.echo("")
            typer.echo(_text(t, lang))
        for note in result.notes:
            typer.echo(f"\n{note}")


MOMENT = 0.5
"""Seconds a report may take before a progress bar shows that it is being computed."""


class Working:
    """An indeterminate progress bar with the elapsed time on stderr, shown only on a terminal and
    only once the work has taken more than `delay` seconds: a quick report prints nothing extra,
    and stdout (the table, CSV or JSON) is never touched. A report is a few database queries whose
    durations are not known ahead, so the bar pulses rather than pretends to a share done."""

    def __init__(self, label: str, *, console: Console | None = None, delay: float = MOMENT) -> None:
        self.label, self.delay = label, delay
        self.console = console or Console(stderr=True)
        self.bar: Any = None
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None
        self.done = False

    def __enter__(self) -> Working:
        if self.console.is_terminal:
            if self.delay <= 0:
                self._start()
            else:
                self.timer = threading.Timer(self.delay, self._start)
                self.timer.daemon = True
                self.timer.start()
        return self

    def _start(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with self.lock:
            if self.done:
                return
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=self.console, transient=True)
            self.bar.start()
            self.bar.add_task(f"computing {self.label}", total=None)

    def __exit__(self, *exc: object) -> None:
        if self.timer is not None:
            self.timer.cancel()
        with self.lock:
            self.done = True
            if self.bar is not None:
                self.bar.stop()


def _csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.key for c in table.columns])
    for row in table.rows:
        writer.writerow(["" if row.get(c.key) is None else row.get(c.key) for c in table.columns])
    return out.getvalue()


def _text(table: Table, lang: Lang) -> str:
    heads = [c.en if lang is Lang.en else c.zh for c in table.columns]
    cells = [["-" if row.get(c.key) is None else str(row.get(c.key)) for c in table.columns] for row in table.rows]
    widths = [max([_width(h), *(_width(r[i]) for r in cells)]) for i, h in enumerate(heads)]
    lines = [table.en if lang is Lang.en else table.zh]
    for line in [heads, *cells]:
        lines.append("  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(line, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _width(text: str) -> int:
    # CJK characters take two columns in a terminal
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def register(app: typer.Typer) -> None:
    app.command()(report)
