"""The dashboard: one page per report, with filters, a chart, the table beneath it, CSV and XLSX.

Every figure comes from `Workbench.report` (the reports module over the database, as the API and
`perkflow report` give it); a store manager's figures are limited to their stores on the server.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from nicegui import ui
from openpyxl import Workbook
from starlette.responses import RedirectResponse

from perkflow.service.problems import Problem
from perkflow.service.staff import Staff
from perkflow.service.workbench import Workbench
from perkflow.storage.reports import REPORTS
from perkflow.storage.reports.result import Report, Table

from .i18n import tr
from .shell import acting, frame, gate

FILTERS = ("from", "to", "store", "channel", "tier", "campaign")


def register(wb: Workbench) -> None:
    @ui.page("/reports", title="Perkflow")
    def index() -> RedirectResponse | None:
        return RedirectResponse("/reports/liability", status_code=303)

    @ui.page("/reports/{name}", title="Perkflow")
    def report(name: str) -> RedirectResponse | None:
        staff = gate(wb, "reports.read")
        if not isinstance(staff, Staff):
            return staff
        with frame(wb, staff):
            _report_page(wb, staff, name)
        return None


def _label(staff: Staff, en: str, zh: str) -> str:
    return zh if staff.locale == "zh-CN" else en


def _report_page(wb: Workbench, staff: Staff, name: str) -> None:
    lang = staff.locale
    with ui.row().classes("items-center gap-2"):
        for other in REPORTS:
            ui.link(tr(f"report_{other}", lang), f"/reports/{other}").classes("text-bold" if other == name else "")
    boxes: dict[str, Any] = {}
    with ui.row().classes("items-center"):
        for key in FILTERS:
            boxes[key] = ui.input(tr(f"filter_{key}", lang)).props("dense outlined clearable").classes("w-36").mark(f"filter-{key}")
        boxes["bucket"] = ui.select({"month": tr("month", lang), "week": tr("week", lang), "day": tr("day", lang)}, value="month", label=tr("bucket", lang)).props("dense outlined").classes("w-32")
        run = ui.button(tr("run", lang), icon="refresh").props("no-caps").mark("report-run")
    body = ui.column().classes("w-full")

    def show() -> None:
        if (who := acting(wb)) is None:
            return
        query = {k: [str(w.value)] for k, w in boxes.items() if w.value not in (None, "")}
        result = wb.report(who, name, query)
        body.clear()
        with body:
            if isinstance(result, Problem):
                for line in [result.detail] + [f"{e.pointer}: {e.message}" for e in result.errors]:
                    ui.label(line).classes("text-negative").mark("report-error")
                return
            _render(who, result)

    run.on_click(show)
    show()


def _render(staff: Staff, report: Report) -> None:
    ui.label(_label(staff, report.en, report.zh)).classes("text-h5").mark("report-title")
    applied = ", ".join(f"{k}: {v}" for k, v in report.filters.items() if v not in (None, [], ""))
    ui.label(applied).classes("text-caption text-grey-8")
    for table in report.tables:
        ui.label(_label(staff, table.en, table.zh)).classes("text-h6")
        options = chart(report.name, table, staff.locale)
        if options is not None and table.rows:
            ui.echart(options).classes("w-full h-72").mark(f"chart-{table.name}")
        columns = [{"name": c.key, "label": _label(staff, c.en, c.zh), "field": c.key, "align": "left", "sortable": True} for c in table.columns]
        ui.table(columns=columns, rows=[dict(r) for r in table.rows], pagination=20).classes("w-full").mark(f"table-{table.name}")
        with ui.row():
            ui.button("CSV", icon="download", on_click=lambda table=table: ui.download.content(to_csv(table, staff.locale), f"{report.name}-{table.name}.csv", "text/csv")).props("flat dense no-caps")
            ui.button("XLSX", icon="download", on_click=lambda table=table: ui.download.content(to_xlsx(table, staff.locale), f"{report.name}-{table.name}.xlsx")).props("flat dense no-caps")
    for note in report.notes:
        ui.label(note).classes("text-caption text-grey-8")


def to_csv(table: Table, locale: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c.zh if locale == "zh-CN" else c.en for c in table.columns])
    for row in table.rows:
        writer.writerow([row.get(c.key) for c in table.columns])
    return out.getvalue()


def to_xlsx(table: Table, locale: str) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = table.name[:31]
    sheet.append([c.zh if locale == "zh-CN" else c.en for c in table.columns])
    for row in table.rows:
        sheet.append([row.get(c.key) for c in table.columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _numbers(table: Table) -> list[str]:
    return [c.key for c in table.columns if any(isinstance(r.get(c.key), int | float) and not isinstance(r.get(c.key), bool) for r in table.rows)]


def chart(report: str, table: Table, locale: str) -> dict[str, Any] | None:
    """ECharts options for a table: lines for flows, stacked bars for tiers, a heat-map triangle
    for cohorts, a bar with its 95% interval for lift, else bars of the first figure."""
    names = {c.key: (c.zh if locale == "zh-CN" else c.en) for c in table.columns}
    base: dict[str, Any] = {"animation": False, "tooltip": {"trigger": "axis"}, "legend": {"type": "scroll"}, "grid": {"containLabel": True}}
    rows = table.rows
    if report == "flows" and table.name == "by_period":
        buckets = sorted({str(r["bucket"]) for r in rows})
        series = []
        for balance in sorted({str(r["balance"]) for r in rows}):
            for measure in ("issued", "redeemed", "expired"):
                by = {str(r["bucket"]): r.get(measure) or 0 for r in rows if r["balance"] == balance}
                series.append({"name": f"{balance} · {names[measure]}", "type": "line", "data": [by.get(b, 0) for b in buckets]})
        return base | {"xAxis": {"type": "category", "data": buckets}, "yAxis": {"type": "value"}, "series": series}
    if report == "tiers" and table.name == "distribution":
        x = [str(r["month_end"]) for r in rows]
        levels = [c.key for c in table.columns if c.key != "month_end"]
        series = [{"name": names[k], "type": "bar", "stack": "tiers", "data": [r.get(k) or 0 for r in rows]} for k in levels]
        return base | {"xAxis": {"type": "category", "data": x}, "yAxis": {"type": "value"}, "series": series}
    if report == "retention":
        offsets = [c.key for c in table.columns if c.key not in ("cohort", "members", "ltv")]
        cohorts = [str(r["cohort"]) for r in rows]
        cells = [[i, j, r.get(k)] for j, r in enumerate(rows) for i, k in enumerate(offsets) if r.get(k) is not None]
        return {
            "animation": False, "tooltip": {"position": "top"}, "grid": {"containLabel": True},
            "xAxis": {"type": "category", "data": [names[k] for k in offsets]}, "yAxis": {"type": "category", "data": cohorts},
            "visualMap": {"min": 0, "max": 1, "calculable": True, "orient": "horizontal", "left": "center", "bottom": 0},
            "series": [{"type": "heatmap", "data": cells, "label": {"show": True}}],
        }
    if report == "campaigns" and table.name == "lift":
        x = [str(r["campaign"]) for r in rows]
        low = [r.get("low") or 0 for r in rows]
        span = [(r.get("high") or 0) - (r.get("low") or 0) for r in rows]
        return base | {
            "xAxis": {"type": "category", "data": x}, "yAxis": {"type": "value"},
            "series": [
                {"name": names["lift"], "type": "bar", "data": [r.get("lift") or 0 for r in rows], "barGap": "-100%"},
                # the 95% interval as a thin floating bar: an invisible base up to `low`, then the span
                {"name": "", "type": "bar", "stack": "ci", "data": low, "itemStyle": {"color": "transparent"}, "barWidth": 6, "tooltip": {"show": False}},
                {"name": names["low"] + " – " + names["high"], "type": "bar", "stack": "ci", "data": span, "barWidth": 6, "itemStyle": {"color": "#333"}},
            ],
        }
    figures = _numbers(table)
    text = [c.key for c in table.columns if c.key not in figures]
    if not figures or not text:
        return None
    x = [" · ".join(str(r.get(k, "")) for k in text[:2]) for r in rows]
    return base | {"xAxis": {"type": "category", "data": x, "axisLabel": {"rotate": 30}}, "yAxis": {"type": "value"},
                   "series": [{"name": names[figures[0]], "type": "bar", "data": [r.get(figures[0]) for r in rows]}]}
