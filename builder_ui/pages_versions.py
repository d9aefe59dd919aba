"""Approvals (four eyes, now or at a set time, or sent back), version history, diffs and rollback."""

from __future__ import annotations

from datetime import UTC, datetime

from nicegui import ui
from starlette.responses import RedirectResponse

from perkflow.service.problems import Problem
from perkflow.service.staff import Staff
from perkflow.service.versions import Version
from perkflow.service.workbench import Workbench

from .i18n import tr
from .shell import acting, frame, gate, problem
from .traces import preformatted


def register(wb: Workbench) -> None:
    @ui.page("/approvals", title="Perkflow")
    def approvals() -> RedirectResponse | None:
        staff = gate(wb, "versions.approve")
        if not isinstance(staff, Staff):
            return staff
        with frame(wb, staff):
            _approvals(wb, staff)
        return None

    @ui.page("/versions", title="Perkflow")
    def versions() -> RedirectResponse | None:
        staff = gate(wb, "versions.read")
        if not isinstance(staff, Staff):
            return staff
        with frame(wb, staff):
            _history(wb, staff)
        return None


def _diff_text(wb: Workbench, staff: Staff, old: str | None, new: str) -> str:
    if old is None:
        return ""
    diff = wb.diff(staff, old, new)
    if isinstance(diff, Problem):
        return diff.detail
    return diff["text"] or tr("no_changes", staff.locale)


def _approvals(wb: Workbench, staff: Staff) -> None:
    lang = staff.locale
    listed = wb.versions(staff)
    if isinstance(listed, Problem):
        problem(staff, listed)
        return
    waiting = [v for v in listed if v.status == "submitted"]
    published = [v for v in listed if v.status == "published" and v.number is not None]
    active = f"id:{max(published, key=lambda v: v.number or 0).id}" if published else None
    ui.label(tr("waiting", lang)).classes("text-h5")
    if not waiting:
        ui.label(tr("nothing_waiting", lang)).mark("nothing-waiting")
    for version in waiting:
        with ui.card().classes("w-full").mark(f"waiting-{version.id}"):
            ui.label(f"id:{version.id} · {tr('author', lang)}: {version.author} · {version.created_at:%Y-%m-%d %H:%M} UTC").classes("text-subtitle1")
            ui.label(f"{tr('comment', lang)}: {version.comment}")
            if active is None:
                ui.label(tr("first_version", lang)).classes("text-subtitle2")
                found = wb.service.versions.yaml(f"id:{version.id}")
                preformatted(found if isinstance(found, str) else found.detail).mark("diff")
            else:
                ui.label(tr("diff_against_active", lang)).classes("text-subtitle2")
                preformatted(_diff_text(wb, staff, active, f"id:{version.id}")).mark("diff")
            when = ui.input(tr("approve_at", lang)).props("dense outlined").classes("w-96")
            reason = ui.input(tr("comment", lang)).props("dense outlined").classes("w-96")
            _actions(wb, version, when, reason, lang)


def _actions(wb: Workbench, version: Version, when: ui.input, reason: ui.input, lang: str) -> None:
    def approve() -> None:
        if (who := acting(wb)) is None:
            return
        at = None
        if when.value:
            try:
                at = datetime.fromisoformat(when.value)
            except ValueError:
                when.error = "2026-12-01T00:00"
                return
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
        result = wb.approve(who, version.id, effective_at=at)
        if isinstance(result, Problem):
            problem(who, result)
            return
        ui.notify(tr("published", who.locale, n=result.number), type="positive")
        ui.navigate.reload()

    def send_back() -> None:
        if (who := acting(wb)) is None:
            return
        result = wb.send_back(who, version.id, reason.value or "")
        if isinstance(result, Problem):
            problem(who, result)
            return
        ui.notify(tr("returned", who.locale))
        ui.navigate.reload()

    with ui.row():
        ui.button(tr("approve_now", lang), icon="check", on_click=approve).props("no-caps color=positive").mark("approve")
        ui.button(tr("send_back", lang), icon="undo", on_click=send_back).props("flat no-caps color=negative").mark("send-back")


def _history(wb: Workbench, staff: Staff) -> None:
    lang = staff.locale
    listed = wb.versions(staff)
    if isinstance(listed, Problem):
        problem(staff, listed)
        return
    ui.label(tr("history", lang)).classes("text-h5")
    rows = [
        {
            "id": v.id, "number": v.number or "", "status": v.status, "author": v.author, "approver": v.approver or "",
            "comment": v.comment, "when": f"{(v.published_at or v.created_at):%Y-%m-%d %H:%M}", "hash": v.hash[:19],
        }
        for v in reversed(listed)
    ]
    columns = [{"name": k, "label": tr(k, lang) if k not in ("number", "id") else k, "field": k, "align": "left"} for k in ("number", "id", "status", "author", "approver", "comment", "when", "hash")]
    ui.table(columns=columns, rows=rows, row_key="id").classes("w-full").mark("versions-table")
    numbers = [str(v.number) for v in listed if v.number is not None]
    if not numbers:
        return
    ui.label(tr("compare", lang)).classes("text-h6")
    with ui.row().classes("items-center"):
        old = ui.select(numbers, value=numbers[max(0, len(numbers) - 2)], label="A").props("dense outlined").classes("w-32")
        new = ui.select(numbers, value=numbers[-1], label="B").props("dense outlined").classes("w-32")
        shown = preformatted("").mark("compare-diff")

        def compare() -> None:
            if (who := acting(wb)) is not None:
                shown.set_text(_diff_text(wb, who, old.value, new.value))

        ui.button(tr("compare", lang), on_click=compare).props("no-caps").mark("compare")
    with ui.row().classes("items-center"):
        pick = ui.select(numbers, value=numbers[-1], label="v").props("dense outlined").classes("w-32")

        def download() -> None:
            if (who := acting(wb)) is None:
                return
            found = wb.version_yaml(who, int(pick.value))
            if isinstance(found, Problem):
                problem(who, found)
                return
            version, text = found
            ui.download.content(f"# {version.scheme_id} v{version.number} {version.hash}\n{text}", f"{version.scheme_id}-v{version.number}.yaml")

        ui.button(tr("download", lang), icon="download", on_click=download).props("flat no-caps").mark("download")
        if staff.can("versions.submit"):
            why = ui.input(tr("comment", lang)).props("dense outlined")

            def rollback() -> None:
                if (who := acting(wb)) is None:
                    return
                result = wb.rollback(who, int(pick.value), why.value or "")
                if isinstance(result, Problem):
                    problem(who, result)
                    return
                ui.notify(tr("rolled_back", who.locale, id=result.id, status=result.status), type="positive")

            ui.button(tr("rollback", lang), icon="history", on_click=rollback).props("flat no-caps").mark("rollback")
