"""Users and API keys (admins only): who may sign in with which roles, and which systems may call the API."""

from __future__ import annotations

from nicegui import ui
from starlette.responses import RedirectResponse

from perkflow.service.access import ROLES, SCOPES
from perkflow.service.problems import Problem
from perkflow.service.staff import Staff
from perkflow.service.workbench import Workbench

from .i18n import tr
from .shell import acting, frame, gate, problem


def register(wb: Workbench) -> None:
    @ui.page("/users", title="Perkflow")
    def users() -> RedirectResponse | None:
        staff = gate(wb, "users.admin")
        if not isinstance(staff, Staff):
            return staff
        with frame(wb, staff):
            _users(wb, staff)
            ui.separator()
            _keys(wb, staff)
        return None


def _stores(text: str | None) -> list[str]:
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def _users(wb: Workbench, staff: Staff) -> None:
    lang = staff.locale
    listed = wb.users(staff)
    if isinstance(listed, Problem):
        problem(staff, listed)
        return
    ui.label(tr("users", lang)).classes("text-h5")
    rows = [{**u, "roles": ", ".join(u["roles"]), "stores": ", ".join(u["stores"])} for u in listed]  # type: ignore[arg-type]
    ui.table(columns=[{"name": k, "label": tr(k, lang), "field": k, "align": "left"} for k in ("username", "roles", "stores", "disabled", "locked")], rows=rows, row_key="username").classes("w-full").mark("users-table")
    with ui.row().classes("items-center"):
        name = ui.input(tr("username", lang)).props("dense outlined").mark("new-user")
        roles = ui.select(list(ROLES), multiple=True, label=tr("roles", lang)).props("dense outlined use-chips").classes("min-w-[16rem]").mark("new-user-roles")
        stores = ui.input(tr("stores_hint", lang)).props("dense outlined").classes("w-64")

        def create() -> None:
            if (who := acting(wb)) is None:
                return
            made = wb.create_user(who, name.value or "", list(roles.value or []), _stores(stores.value))
            if isinstance(made, Problem):
                problem(who, made)
                return
            with ui.dialog() as dialog, ui.card():
                ui.label(tr("one_time_password", lang, user=name.value)).mark("one-time-password")
                ui.label(made).classes("font-mono text-h6")
                ui.button("OK", on_click=lambda: (dialog.close(), ui.navigate.reload()))
            dialog.open()

        ui.button(tr("create_user", lang), icon="person_add", on_click=create).props("no-caps").mark("create-user")
    with ui.row().classes("items-center"):
        who_out = ui.input(tr("username", lang)).props("dense outlined")

        def revoke() -> None:
            if (who := acting(wb)) is None:
                return
            done = wb.revoke_sessions(who, who_out.value or "")
            if isinstance(done, Problem):
                problem(who, done)
            else:
                ui.notify(tr("sessions_revoked", lang, n=done))

        ui.button(tr("revoke_sessions", lang), icon="logout", on_click=revoke).props("flat no-caps")


def _keys(wb: Workbench, staff: Staff) -> None:
    lang = staff.locale
    listed = wb.keys(staff)
    if isinstance(listed, Problem):
        problem(staff, listed)
        return
    ui.label(tr("api_keys", lang)).classes("text-h5")
    rows = [{**k, "scopes": ", ".join(k["scopes"]), "stores": ", ".join(k["stores"] or ["*"])} for k in listed]  # type: ignore[arg-type]
    ui.table(columns=[{"name": k, "label": tr(k, lang), "field": k, "align": "left"} for k in ("id", "name", "scopes", "stores", "created_by", "revoked")], rows=rows, row_key="id").classes("w-full").mark("keys-table")
    with ui.row().classes("items-center"):
        name = ui.input(tr("name", lang)).props("dense outlined")
        scopes = ui.select(list(SCOPES), multiple=True, label=tr("scopes", lang)).props("dense outlined use-chips").classes("min-w-[20rem]")
        stores = ui.input(tr("stores_hint", lang)).props("dense outlined").classes("w-64")

        def create() -> None:
            if (who := acting(wb)) is None:
                return
            made = wb.create_key(who, name.value or "", list(scopes.value or []), _stores(stores.value))
            if isinstance(made, Problem):
                problem(who, made)
                return
            with ui.dialog() as dialog, ui.card():
                ui.label(tr("key_once", lang))
                ui.label(made[1]).classes("font-mono").mark("new-key-token")
                ui.button("OK", on_click=lambda: (dialog.close(), ui.navigate.reload()))
            dialog.open()

        ui.button(tr("create_key", lang), icon="key", on_click=create).props("no-caps")
    with ui.row().classes("items-center"):
        key_id = ui.input("pk_...").props("dense outlined")

        def revoke() -> None:
            if (who := acting(wb)) is None:
                return
            done = wb.revoke_key(who, key_id.value or "")
            if isinstance(done, Problem):
                problem(who, done)
            else:
                ui.navigate.reload()

        ui.button(tr("revoke_key", lang), icon="block", on_click=revoke).props("flat no-caps color=negative")
