"""`perkflow report NAME` from the command line: a table for people, CSV and JSON for programs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rich.console import Console

from perkflow.cli.reports import Working
from tests.cli import test_ops
from tests.cli.test_ops import Perkflow, events_file, published

perkflow, upgraded = test_ops.perkflow, test_ops.upgraded  # the fixtures of test_ops
PERIOD = ("--from", "2026-01-01", "--to", "2026-03-31")


def test_report_as_json_csv_and_a_table_agree(upgraded: Perkflow, tmp_path: Path):
    published(upgraded)
    assert upgraded("import", events_file(tmp_path, 120)).exit_code in (0, 1)  # a few events of the file are refused
    as_json = upgraded("report", "flows", *PERIOD, "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.stdout)
    assert body["filters"]["from"] == "2026-01-01" and [t["name"] for t in body["tables"]] == ["by_period", "by_rule"]
    issued = sum(r["issued"] for r in body["tables"][0]["rows"] if r["balance"] == "points")
    assert issued > 0
    as_csv = upgraded("report", "flows", *PERIOD, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert sum(int(r["issued"]) for r in rows if r["balance"] == "points") == issued
    table = upgraded("report", "flows", *PERIOD, "--lang", "zh-CN", "--table", "by_rule")
    assert table.exit_code == 0 and "按规则流水" in table.stdout and "发放" in table.stdout and "base-earn" in table.stdout


def test_report_errors_name_what_is_wrong(upgraded: Perkflow):
    published(upgraded)
    unknown = upgraded("report", "profits")
    assert unknown.exit_code == 1 and "unknown_report" in unknown.stderr
    bad_day = upgraded("report", "flows", "--from", "January")
    assert bad_day.exit_code == 1 and "/from" in bad_day.stderr
    no_table = upgraded("report", "tiers", "--table", "nope")
    assert no_table.exit_code == 1 and "distribution" in no_table.stderr
    assert upgraded("report", "flows", "--format", "xlsx").exit_code == 2


def test_a_slow_report_shows_a_progress_bar_on_the_terminals_stderr_and_nothing_elsewhere():
    terminal = io.StringIO()
    with Working("report flows", console=Console(file=terminal, force_terminal=True, width=80), delay=0):
        pass
    assert "computing report flows" in terminal.getvalue()
    pipe = io.StringIO()  # output to a program (stderr redirected): no bar, whatever the time
    with Working("report flows", console=Console(file=pipe, force_terminal=False), delay=0):
        pass
    assert pipe.getvalue() == ""
    quick = io.StringIO()  # a report done within the moment: no bar either
    with Working("report flows", console=Console(file=quick, force_terminal=True), delay=60):
        pass
    assert quick.getvalue() == ""
