"""The home page (drafts), the scheme editor, and preview: one event, or a replay side by side."""

from __future__ import annotations

import json
from typing import Any

from nicegui import run, ui
from starlette.responses import RedirectResponse

from perkflow.rules import Scheme
from perkflow.rules.check import base_env, event_env
from perkflow.rules.expr import functions_for
from perkflow.service.drafts import EMPTY_SCHEME, check, example, examples, parse_yaml, to_yaml_text
from perkflow.service.problems import Problem
from perkflow.service.staff import Staff
from perkflow.service.workbench import Cancelled, Comparison, Workbench

from .forms import SchemeForm
from .i18n import tr
from .shell import acting, frame, gate, problem
from .traces import preformatted, trace_list

# The editor's tabs: each holds these top-level parts of the scheme.
TABS: list[tuple[str, list[str]]] = [
    ("general", ["id", "name", "description", "currency", "timezone", "auto_enroll", "late_event_limit", "inactivity", "governance"]),
    ("balances", ["balances"]),
    ("tiers", ["tiers"]),
    ("counters", ["counters"]),
    ("event_types", ["event_types"]),
    ("rules", ["rules", "groups"]),
    ("coupons", ["coupons"]),
    ("rewards", ["rewards"]),
    ("campaigns", ["campaigns"]),
    ("achievements", ["achievements"]),
    ("referrals", ["referrals"]),
    ("templates", ["templates"]),
]
AUTOSAVE_SECONDS = 0.8


def register(wb: Workbench) -> None:
    @ui.page("/", title="Perkflow")
    def home() -> RedirectResponse | None:
        staff = gate(wb, None)
        if not isinstance(staff, Staff):
            return staff
        with frame(wb, staff):
            if staff.can("drafts.read"):
                _drafts_list(wb, staff)
            else:
                ui.label(tr("welcome", staff.locale, user=staff.username, roles=", ".join(sorted(staff.roles))))
        return None

    @ui.page("/drafts/{draft_id}", title="Perkflow")
    def editor(draft_id: int) -> RedirectResponse | None:
        staff = gate(wb, "drafts.read")
        if not isinstance(staff, Staff):
            return staff
        with frame(wb, staff):
            _editor(wb, staff, draft_id)
        return None


def _drafts_list(wb: Workbench, staff: Staff) -> None:
    lang = staff.locale
    drafts = wb.drafts(staff)
    if isinstance(drafts, Problem):
        problem(staff, drafts)
        return
    ui.label(tr("drafts", lang)).classes("text-h5")
    if staff.can("drafts.edit"):
        with ui.row().classes("items-center"):

            def create(content: dict[str, Any] | Problem, title: str) -> None:
                if (who := acting(wb)) is None:
                    return
                if isinstance(content, Problem):
                    problem(who, content)
                    return
                made = wb.service.drafts.create(title, content, by=who)
                if isinstance(made, Problem):
                    problem(who, made)
                    return
                ui.navigate.to(f"/drafts/{made.id}")

            ui.button(tr("new_empty", lang), icon="add", on_click=lambda: create(json.loads(json.dumps(EMPTY_SCHEME)), "new scheme")).props("no-caps").mark("new-empty")
            pick = ui.select(examples(), value="coffee", label=tr("new_from_example", lang)).props("dense outlined").classes("min-w-[10rem]")
            ui.button(tr("new_from_example", lang), icon="content_copy", on_click=lambda: create(example(pick.value), pick.value)).props("flat no-caps")

            def from_active() -> None:
                if (who := acting(wb)) is None:
                    return
                versions = [v for v in wb.service.versions.list(status="published")]
                if not versions:
                    return
                made = wb.service.drafts.from_version(max(v.number or 0 for v in versions), by=who)
                if isinstance(made, Problem):
                    problem(who, made)
                else:
                    ui.navigate.to(f"/drafts/{made.id}")

            ui.button(tr("new_from_version", lang), icon="history", on_click=from_active).props("flat no-caps")
    if not drafts:
        ui.label(tr("no_drafts", lang))
        return
    rows = [
        {"id": d.id, "title": d.title, "status": d.version_status or d.status, "updated": f"{d.updated_at:%Y-%m-%d %H:%M} {d.updated_by}"}
        for d in drafts
    ]
    columns = [
        {"name": "title", "label": tr("title", lang), "field": "title", "align": "left"},
        {"name": "status", "label": tr("status", lang), "field": "status", "align": "left"},
        {"name": "updated", "label": tr("updated", lang), "field": "updated", "align": "left"},
    ]
    table = ui.table(columns=columns, rows=rows, row_key="id").classes("w-full").mark("drafts-table")
    table.on("rowClick", lambda e: ui.navigate.to(f"/drafts/{e.args[1]['id']}"))


class _Editing:
    """One open draft: the document, the revision it was read at, and what remains to do."""

    def __init__(self, wb: Workbench, staff: Staff, draft_id: int) -> None:
        self.wb, self.staff, self.draft_id = wb, staff, draft_id
        self.dirty = False
        self.conflicted = False
        self.last_valid: Scheme | None = None


def _editor(wb: Workbench, staff: Staff, draft_id: int) -> None:
    lang = staff.locale
    draft = wb.service.drafts.get(draft_id, by=staff)
    if isinstance(draft, Problem):
        ui.label(draft.detail).classes("text-negative").mark("not-found")
        return
    editing = _Editing(wb, staff, draft_id)
    data: dict[str, Any] = draft.content
    state = {"revision": draft.revision}
    read_only = not (draft.editable and staff.can("drafts.edit"))

    with ui.row().classes("w-full items-center"):
        title = ui.input(tr("title", lang), value=draft.title).props("dense outlined").classes("min-w-[16rem]").mark("draft-title")
        if read_only:
            title.props("readonly")
        status = ui.label(tr("saved", lang)).classes("text-caption text-grey-8").mark("save-status")
        ui.space()
        summary = ui.label("").classes("text-caption").mark("error-summary")
    if read_only and not draft.editable:
        ui.label(tr("read_only", lang, status=draft.version_status or draft.status)).classes("text-warning")
    conflict_bar = ui.row().classes("w-full items-center bg-red-1 q-pa-sm")
    conflict_bar.set_visibility(False)
    loose_errors = ui.column().classes("w-full gap-0 text-negative text-caption").mark("loose-errors")

    def validate() -> None:
        loaded = check(data)
        if loaded.scheme is not None:
            editing.last_valid = loaded.scheme
        loose = form.show_errors(loaded.errors)
        loose_errors.clear()
        with loose_errors:
            for err in loose:
                ui.label(f"{err.path or '/'}: {err.message}")
        summary.set_text(tr("errors_count", lang, n=len(loaded.errors)) if loaded.errors else tr("no_errors", lang))
        summary.classes(replace="text-caption " + ("text-negative" if loaded.errors else "text-positive"))

    def changed() -> None:
        editing.dirty = True
        status.set_text("…")

    def save_now() -> None:
        if not editing.dirty or editing.conflicted or read_only:
            return
        if (who := acting(wb)) is None:
            return
        editing.dirty = False
        result = wb.service.drafts.save(draft_id, data, state["revision"], by=who, title=title.value)
        if isinstance(result, Problem):
            if result.code == "draft_changed":
                editing.conflicted = True
                conflict_bar.clear()
                with conflict_bar:
                    ui.label(tr("conflict", lang, detail=result.detail)).mark("conflict")
                    ui.button(tr("reload", lang), on_click=ui.navigate.reload).props("flat no-caps")
                conflict_bar.set_visibility(True)
            status.set_text(tr("saving_refused", lang, detail=result.detail))
            return
        state["revision"] = result.revision
        status.set_text(f"{tr('saved', lang)} · r{result.revision}")
        validate()

    title.on_value_change(changed)
    form = SchemeForm(data, lang, changed, read_only=read_only)
    ui.timer(AUTOSAVE_SECONDS, save_now)

    with ui.tabs().classes("w-full").props("dense align=left") as tabs:
        tab_of = {key: ui.tab(key, label=form.label_of(keys[0]) if key != "general" else tr("general", lang)) for key, keys in TABS}
        yaml_tab = ui.tab("yaml", label=tr("yaml", lang))
        preview_tab = ui.tab("preview", label=tr("preview", lang))
        submit_tab = ui.tab("submit", label=tr("submit", lang)) if staff.can("versions.submit") and draft.editable else None
    with ui.tab_panels(tabs, value=tab_of["general"]).classes("w-full bg-transparent"):
        for key, keys in TABS:
            with ui.tab_panel(tab_of[key]):
                form.section(keys)
                if key == "rules":
                    _names_help(editing, lang)
        with ui.tab_panel(yaml_tab):
            yaml_view = _yaml_panel(wb, editing, data, state, lang, read_only)
        with ui.tab_panel(preview_tab):
            _preview_panel(wb, data, lang)
        if submit_tab is not None:
            with ui.tab_panel(submit_tab):
                _submit_panel(wb, editing, state, lang, save_now)
    tabs.on_value_change(lambda e: yaml_view.set_text(to_yaml_text(data)) if e.value == "yaml" else None)
    validate()


def _names_help(editing: _Editing, lang: str) -> None:
    """The names and functions an expression may use, for one event type of the draft."""
    with ui.expansion(tr("names_available", lang), icon="help_outline").classes("w-full").mark("names-help"):
        box = ui.column().classes("gap-0 font-mono text-caption")

        def show(event_type: str | None) -> None:
            box.clear()
            scheme = editing.last_valid
            if scheme is None or not event_type:
                return
            names = {**base_env(scheme), **event_env(scheme, event_type)}
            with box:
                for name, kind in sorted(names.items()):
                    ui.label(f"{name}: {kind.value if hasattr(kind, 'value') else kind}")
                for function in functions_for(scheme.timezone).table.values():
                    ui.label(function.signature)

        types = ["purchase", "refund", "signup", "topup", "checkin", "birthday", "profile_update"]
        if editing.last_valid is not None:
            types = sorted(set(types) | set(editing.last_valid.event_types))
        ui.select(types, label=tr("events", lang), on_change=lambda e: show(e.value)).props("dense outlined").classes("min-w-[12rem]")


def _yaml_panel(wb: Workbench, editing: _Editing, data: dict[str, Any], state: dict[str, int], lang: str, read_only: bool) -> ui.label:
    code = preformatted(to_yaml_text(data)).mark("yaml-view")
    with ui.row():
        ui.button(tr("reload", lang), icon="refresh", on_click=lambda: code.set_text(to_yaml_text(data))).props("flat no-caps")
        ui.button(tr("export_yaml", lang), icon="download", on_click=lambda: ui.download.content(to_yaml_text(data), f"{data.get('id', 'scheme')}.yaml")).props("flat no-caps")
    if read_only:
        return code

    async def uploaded(e: Any) -> None:
        if (who := acting(wb)) is None:
            return
        parsed = parse_yaml(await e.file.text())
        if isinstance(parsed, Problem):
            problem(who, parsed)
            return
        result = wb.service.drafts.save(editing.draft_id, parsed, state["revision"], by=who)
        if isinstance(result, Problem):
            problem(who, result)
            return
        ui.notify(tr("imported", lang), type="positive")
        ui.navigate.reload()

    ui.upload(label=tr("import_yaml", lang), on_upload=uploaded, auto_upload=True, max_file_size=1_000_000).props("accept=.yaml,.yml,.json flat bordered")
    return code


def _preview_panel(wb: Workbench, data: dict[str, Any], lang: str) -> None:
    ui.label(tr("test_event", lang)).classes("text-h6")
    sample = {
        "id": "preview-1", "type": "purchase", "member_id": "m-preview", "occurred_at": "2026-12-01T12:00:00+08:00",
        "attributes": {"amount": 8800},
    }
    event_box = ui.textarea(tr("event_json", lang), value=json.dumps(sample, indent=2)).classes("w-full font-mono").props("outlined autogrow").mark("preview-event")
    result_box = ui.column().classes("w-full")

    def run_one() -> None:
        if (who := acting(wb)) is None:
            return
        result_box.clear()
        try:
            raw = json.loads(event_box.value or "")
        except json.JSONDecodeError as exc:
            event_box.error = f"JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            return
        event_box.error = None
        decision = wb.preview_event(who, data, raw)
        with result_box:
            if isinstance(decision, Problem):
                for line in [decision.detail] + [f"{e.pointer}: {e.message}" for e in decision.errors]:
                    ui.label(line).classes("text-negative")
                return
            ui.label(f"{tr('tier', lang)}: {decision.get('tier')} · {tr('balances', lang)}: {json.dumps(decision['balances'])}").mark("preview-result")
            trace_list(decision, lang)

    ui.button(tr("run", lang), icon="play_arrow", on_click=run_one).props("no-caps").mark("preview-run")
    ui.separator()
    _replay_panel(wb, data, lang)


def _replay_panel(wb: Workbench, data: dict[str, Any], lang: str) -> None:
    ui.label(tr("replay", lang)).classes("text-h6")
    with ui.row().classes("items-center"):
        days = ui.number(tr("days", lang), value=30, min=1, max=3650, precision=0).props("dense outlined").classes("w-64")
        start = ui.button(tr("run", lang), icon="play_arrow").props("no-caps").mark("replay-run")
        stop = ui.button(tr("cancel", lang), icon="stop").props("flat no-caps")
    uploaded: dict[str, list[dict[str, Any]]] = {}

    async def take_file(e: Any) -> None:
        lines = (await e.file.text()).splitlines()
        events = []
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    ui.notify(f"line {number}: {exc.msg}", type="negative")
                    return
        uploaded["events"] = events
        ui.notify(f"{len(events)} events", type="info")

    ui.upload(label=tr("upload_jsonl", lang), on_upload=take_file, auto_upload=True, max_file_size=50_000_000).props("accept=.jsonl,.json flat bordered")
    bar = ui.linear_progress(value=0, show_value=False).classes("w-full")
    bar.set_visibility(False)
    out = ui.column().classes("w-full").mark("replay-result")
    flags = {"cancel": False}

    async def replay() -> None:
        if (who := acting(wb)) is None:
            return
        events = uploaded.get("events")
        if events is None:
            stored = wb.stored_events(who, int(days.value or 30))
            if isinstance(stored, Problem):
                problem(who, stored)
                return
            events = stored
        flags["cancel"] = False
        total = max(1, len(events))
        seen = {"n": 0}
        bar.set_visibility(True)
        timer = ui.timer(0.2, lambda: bar.set_value(seen["n"] / total))
        start.disable()
        try:
            result = await run.io_bound(
                wb.compare, who, json.loads(json.dumps(data)), events,
                progress=lambda n: seen.__setitem__("n", n), cancelled=lambda: flags["cancel"],
            )
        except Cancelled:
            ui.notify(tr("cancelled", lang))
            return
        finally:
            timer.cancel()
            bar.set_visibility(False)
            start.enable()
        out.clear()
        with out:
            if isinstance(result, Problem):
                for line in [result.detail] + [f"{e.pointer}: {e.message}" for e in result.errors]:
                    ui.label(line).classes("text-negative")
                return
            _comparison(result, lang)

    start.on_click(replay)
    stop.on_click(lambda: flags.__setitem__("cancel", True))


def _comparison(result: Comparison, lang: str) -> None:
    ui.label(tr("replayed", lang, n=result.events))
    if result.active is None:
        ui.label(tr("no_active", lang)).classes("text-warning")
    rows = []

    def add(metric: str, draft: int, active: int | None) -> None:
        rows.append({"metric": metric, "draft": draft, "active": "-" if active is None else active, "difference": "" if active is None else draft - active})

    active = result.active or {}
    add(tr("cost", lang), result.draft_cost, result.active_cost)
    for balance, flows in result.draft["totals"]["balances"].items():
        other = active.get("totals", {}).get("balances", {}).get(balance, {})
        for flow in ("issued", "redeemed", "expired", "outstanding"):
            add(f"{balance} {flow}", flows[flow], other.get(flow) if result.active else None)
    for policy, counts in result.draft["totals"]["coupons"].items():
        add(f"coupon {policy} issued", counts.get("issued", 0), active.get("totals", {}).get("coupons", {}).get(policy, {}).get("issued", 0) if result.active else None)
    tiers = sorted(set(result.draft["totals"]["tiers"]) | set(active.get("totals", {}).get("tiers", {})))
    for tier in tiers:
        add(f"tier {tier}", result.draft["totals"]["tiers"].get(tier, 0), active.get("totals", {}).get("tiers", {}).get(tier, 0) if result.active else None)
    rules = sorted(set(result.draft["rules"]) | set(active.get("rules", {})))
    for rule in rules:
        add(f"rule {rule} fired", result.draft["rules"].get(rule, {}).get("fired", 0), active.get("rules", {}).get(rule, {}).get("fired", 0) if result.active else None)
    columns = [
        {"name": "metric", "label": tr("metric", lang), "field": "metric", "align": "left"},
        {"name": "draft", "label": tr("draft", lang), "field": "draft"},
        {"name": "active", "label": tr("active", lang), "field": "active"},
        {"name": "difference", "label": tr("difference", lang), "field": "difference"},
    ]
    table = ui.table(columns=columns, rows=rows, row_key="metric").classes("w-full").mark("comparison")
    table.add_slot("body-cell-difference", '<q-td :props="props" :class="props.value ? \'bg-amber-2 text-bold\' : \'\'">{{ props.value }}</q-td>')
    fired = [r for r in rows if r["metric"].startswith("rule ")]
    ui.echart({
        "animation": False,
        "tooltip": {},
        "legend": {"data": [tr("draft", lang), tr("active", lang)]},
        "xAxis": {"type": "category", "data": [r["metric"][5:-6] for r in fired], "axisLabel": {"rotate": 30}},
        "yAxis": {"type": "value"},
        "series": [
            {"name": tr("draft", lang), "type": "bar", "data": [r["draft"] for r in fired]},
            {"name": tr("active", lang), "type": "bar", "data": [0 if r["active"] == "-" else r["active"] for r in fired]},
        ],
    }).classes("w-full h-80").mark("comparison-chart")


def _submit_panel(wb: Workbench, editing: _Editing, state: dict[str, int], lang: str, save_now: Any) -> None:
    comment = ui.textarea(tr("comment", lang)).classes("w-full").props("outlined").mark("submit-comment")

    def submit() -> None:
        if (who := acting(wb)) is None:
            return
        save_now()
        result = wb.service.drafts.submit(editing.draft_id, state["revision"], by=who, comment=comment.value or "")
        if isinstance(result, Problem):
            problem(who, result)
            return
        ui.notify(tr("submitted", lang, id=result.id, status=result.status), type="positive")
        ui.navigate.to("/")

    ui.button(tr("submit", lang), icon="send", on_click=submit).props("no-caps").mark("submit")
