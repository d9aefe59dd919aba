"""Members and support (lookup, state, ledger, traces, adjustments), event lookup, the audit log."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from nicegui import ui
from starlette.responses import RedirectResponse

from perkflow.service.problems import Problem
from perkflow.service.staff import Staff
from perkflow.service.workbench import Workbench

from .i18n import tr
from .shell import acting, frame, gate, problem
from .traces import preformatted, trace_list


def register(wb: Workbench) -> None:
    @ui.page("/members", title="Perkflow")
    def members() -> RedirectResponse | None:
        staff = gate(wb, "members.read")
        if not isinstance(staff, Staff):
            return staff
        with frame(wb, staff):
            _search(wb, staff)
        return None

    @ui.page("/members/{member_id}", title="Perkflow")
    def member(member_id: str) -> RedirectResponse | None:
        staff = gate(wb, "members.read")
        if not isinstance(staff, Staff):
            return staff
        with frame(wb, staff):
            _member(wb, staff, member_id)
        return None

    @ui.page("/events", title="Perkflow")
    def events(id: str = "") -> RedirectResponse | None:  # noqa: A002 - the query parameter's name
        staff = gate(wb, "members.read")
        if not isinstance(staff, Staff):
            return staff
        with frame(wb, staff):
            _event(wb, staff, id)
        return None

    @ui.page("/audit", title="Perkflow")
    def audit() -> RedirectResponse | None:
        staff = gate(wb, "audit.read")
        if not isinstance(staff, Staff):
            return staff
        with frame(wb, staff):
            _audit(wb, staff)
        return None


def _search(wb: Workbench, staff: Staff) -> None:
    """The query never goes into the URL: a phone number there would reach access logs."""
    lang = staff.locale

    def search() -> None:
        if (who := acting(wb)) is None:
            return
        results.clear()
        found = wb.find_members(who, box.value or "")
        if isinstance(found, Problem):
            problem(who, found)
            return
        with results:
            if not found:
                ui.label(tr("no_members", lang)).mark("no-members")
            for member_id in found:
                ui.link(member_id, f"/members/{quote(member_id, safe='')}").mark("member-link")

    with ui.row().classes("items-center"):
        box = ui.input(tr("find_member", lang)).props("dense outlined").classes("w-96").mark("member-query")
        box.on("keydown.enter", search)
        ui.button(tr("search", lang), icon="search", on_click=search).props("no-caps").mark("member-search")
    results = ui.column()


def _member(wb: Workbench, staff: Staff, member_id: str) -> None:
    lang = staff.locale
    found = wb.member(staff, member_id)
    if isinstance(found, Problem):
        ui.label(tr("no_members", lang)).classes("text-negative").mark("no-members")
        return
    view = found["member"]
    ui.label(member_id).classes("text-h5").mark("member-id")
    ui.label(f"{tr('tier', lang)}: {view.get('tier') or '-'}").classes("text-subtitle1").mark("member-tier")
    if view.get("tier_review_at"):
        ui.label(f"{tr('tier_term_end', lang)}: {view['tier_review_at']}").classes("text-caption").mark("member-term-end")
    if (override := view.get("tier_override")) is not None:
        until = f" → {override['until']}" if override.get("until") else ""
        text = f"{tr('tier_override', lang)}: {override['kind']} {override['tier']}{until} · {override['reason']}"
        ui.label(text).classes("text-caption text-warning").mark("member-tier-override")
    with ui.row().mark("member-balances"):
        for balance, amount in view.get("balances", {}).items():
            with ui.card().classes("q-pa-sm"):
                ui.label(balance).classes("text-caption")
                ui.label(str(amount)).classes("text-h6")
    lots = [
        {"balance": b, "amount": lot["amount"], "earned": lot["earned_at"], "expires": lot.get("expires_at") or "-", "available": lot.get("available_at") or ""}
        for b, items in view.get("lots", {}).items() for lot in items
    ]
    if lots:
        ui.label(tr("lots", lang)).classes("text-subtitle2")
        ui.table(columns=_columns(["balance", "amount", "earned", "expires", "available"], lang), rows=lots).classes("w-full").mark("lots")
    if view.get("coupons"):
        ui.label(tr("coupons", lang)).classes("text-subtitle2")
        rows = [c | {"coupon_code": c.get("code", "")} for c in view["coupons"]]
        ui.table(columns=_columns(["id", "policy", "status", "valid_until", "coupon_code"], lang), rows=rows, row_key="id").classes("w-full")
    _progress(wb, staff, member_id)
    _personal(wb, staff, member_id)
    if staff.can("members.adjust"):
        _adjust(wb, member_id, list(view.get("balances", {})), lang)
    if staff.can("members.tier_override"):
        _tier_override(wb, member_id, view.get("tier_override") is not None, lang)
    ui.label(tr("ledger", lang)).classes("text-subtitle2")
    ui.table(columns=_columns(["occurred_at", "balance", "kind", "amount", "rule", "event_id"], lang), rows=found["ledger"], row_key="id").classes("w-full").mark("ledger")
    ui.label(tr("recent_events", lang)).classes("text-subtitle2")
    for event in found["events"]:
        with ui.expansion(f"{event['occurred_at']} · {event['type']} · {event['id']}").classes("w-full").props("dense").mark("member-event"):
            trace_list(event["decision"], lang)


def _progress(wb: Workbench, staff: Staff, member_id: str) -> None:
    """"120 more growth to Gold": the engine's answer for each tier, reward and usable coupon."""
    found = wb.progress(staff, member_id)
    if isinstance(found, Problem) or not found.get("items"):
        return
    ui.label(tr("progress", staff.locale)).classes("text-subtitle2")
    with ui.column().classes("gap-0").mark("progress"):
        for need in found["items"]:
            text = need["text"].get(staff.locale) or need["text"].get("en", "")
            ui.label(("✔ " if need["met"] else "• ") + text).classes("text-positive" if need["met"] else "")


def _personal(wb: Workbench, staff: Staff, member_id: str) -> None:
    """Masked for every role; in full only through an audited reveal with a reason."""
    lang = staff.locale
    profile = wb.profile(staff, member_id)
    if isinstance(profile, Problem):
        return
    with ui.card().classes("w-full").mark("personal"):
        ui.label(tr("personal", lang)).classes("text-subtitle2")
        shown = ui.row().mark("personal-values")

        def values(data: dict[str, Any]) -> None:
            shown.clear()
            with shown:
                for field in ("phone", "email", "name", "birthday"):
                    ui.label(f"{field}: {data.get(field) or '-'}")

        values(profile)
        if not staff.can("members.reveal") and not staff.can("members.erase"):
            return
        reason = ui.input(tr("reason", lang)).props("dense outlined").classes("w-96").mark("personal-reason")

        def act(kind: str) -> None:
            if (who := acting(wb)) is None:
                return
            text = reason.value or ""
            if kind == "reveal":
                result = wb.reveal(who, member_id, text)
            elif kind == "export":
                result = wb.export_subject(who, member_id, text)
            else:
                result = wb.erase(who, member_id, text)
            if isinstance(result, Problem):
                problem(who, result)
                return
            if kind == "reveal":
                values(result)
            elif kind == "export":
                ui.download.content(json.dumps(result, ensure_ascii=False, indent=2), f"{member_id}.json", "application/json")
            else:
                ui.notify(tr("erased", lang, id=result["id"]), type="positive")
                ui.navigate.to(f"/members/{quote(result['id'], safe='')}")

        with ui.row():
            if staff.can("members.reveal"):
                ui.button(tr("reveal", lang), icon="visibility", on_click=lambda: act("reveal")).props("flat no-caps").mark("reveal")
                ui.button(tr("export_subject", lang), icon="download", on_click=lambda: act("export")).props("flat no-caps").mark("export-subject")
            if staff.can("members.erase"):
                ui.button(tr("erase", lang), icon="delete_forever", on_click=lambda: act("erase")).props("flat no-caps color=negative").mark("erase")


def _adjust(wb: Workbench, member_id: str, balances: list[str], lang: str) -> None:
    with ui.card().classes("w-full").mark("adjust"):
        ui.label(tr("adjust", lang)).classes("text-subtitle2")
        with ui.row().classes("items-center"):
            balance = ui.select(balances, value=balances[0] if balances else None, label=tr("balance", lang)).props("dense outlined").classes("w-40")
            amount = ui.number(tr("adjust_amount", lang), precision=0).props("dense outlined").classes("w-56").mark("adjust-amount")
            reason = ui.input(tr("reason", lang)).props("dense outlined").classes("w-96").mark("adjust-reason")

            def apply() -> None:
                if (who := acting(wb)) is None:
                    return
                if amount.value is None:
                    amount.error = tr("adjust_amount", lang)
                    return
                result = wb.adjust(who, member_id, balance.value or "", int(amount.value), reason.value or "")
                if isinstance(result, Problem):
                    problem(who, result)
                    return
                ui.notify(tr("adjusted", lang), type="positive")
                ui.navigate.reload()

            ui.button(tr("adjust", lang), on_click=apply).props("no-caps").mark("adjust-apply")


def _tier_override(wb: Workbench, member_id: str, active: bool, lang: str) -> None:
    with ui.card().classes("w-full").mark("tier-override"):
        ui.label(tr("tier_override", lang)).classes("text-subtitle2")
        with ui.row().classes("items-center"):
            kind = ui.select(["floor", "fixed"], value="floor", label=tr("override_kind", lang)).props("dense outlined").classes("w-56")
            tier = ui.input(tr("tier", lang)).props("dense outlined").classes("w-40").mark("override-tier")
            until = ui.input(tr("override_until", lang)).props("dense outlined").classes("w-80").mark("override-until")
            reason = ui.input(tr("reason", lang)).props("dense outlined").classes("w-96").mark("override-reason")

            def done(result: dict[str, Any] | Problem, who: Staff) -> None:
                if isinstance(result, Problem):
                    problem(who, result)
                    return
                ui.notify(tr("override_done", lang), type="positive")
                ui.navigate.reload()

            def apply() -> None:
                if (who := acting(wb)) is not None:
                    done(wb.set_tier_override(who, member_id, kind.value or "", tier.value or "", reason.value or "", until.value or None), who)

            def end() -> None:
                if (who := acting(wb)) is not None:
                    done(wb.end_tier_override(who, member_id), who)

            ui.button(tr("override_set", lang), on_click=apply).props("no-caps").mark("override-apply")
            if active:
                ui.button(tr("override_end", lang), on_click=end).props("no-caps flat").mark("override-end")


def _event(wb: Workbench, staff: Staff, event_id: str) -> None:
    lang = staff.locale
    with ui.row().classes("items-center"):
        box = ui.input(tr("event_id", lang), value=event_id).props("dense outlined").classes("w-96").mark("event-query")
        ui.button(tr("look_up", lang), on_click=lambda: ui.navigate.to(f"/events?id={quote(box.value or '')}")).props("no-caps")
    if not event_id:
        return
    found = wb.event(staff, event_id)
    if isinstance(found, Problem):
        ui.label(found.detail).classes("text-negative").mark("event-missing")
        return
    ui.label(f"{found['type']} · {found['member_id']} · {found['occurred_at']} · {found['version']}").classes("text-subtitle1").mark("event-head")
    preformatted(json.dumps(found["body"], ensure_ascii=False, indent=2))
    trace_list(found["decision"], lang)


def _audit(wb: Workbench, staff: Staff) -> None:
    lang = staff.locale
    filters: dict[str, Any] = {}
    with ui.row().classes("items-center"):
        for key in ("actor", "action", "target"):
            filters[key] = ui.input(tr(key, lang)).props("dense outlined clearable")
    table = ui.table(columns=_columns(["id", "at", "actor", "action", "target", "detail"], lang), rows=[], row_key="id").classes("w-full").mark("audit-table")

    def load() -> None:
        if (who := acting(wb)) is None:
            return
        rows = wb.audit(who, **{k: (w.value or "") for k, w in filters.items()})
        if isinstance(rows, Problem):
            problem(who, rows)
            return
        table.rows = rows
        table.update()

    for widget in filters.values():
        widget.on_value_change(load)
    load()


def _columns(names: list[str], lang: str) -> list[dict[str, str]]:
    return [{"name": n, "label": tr(n, lang), "field": n, "align": "left"} for n in names]
