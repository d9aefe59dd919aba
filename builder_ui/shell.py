"""The frame around every page: who is signed in, the menu their roles allow, the language switch.

The browser holds only NiceGUI's signed session cookie; the session itself (and whether it was
revoked or has ended) is in the database, and is read again on every page and every action.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import app, ui
from starlette.responses import RedirectResponse

from perkflow.service.problems import Problem
from perkflow.service.staff import Staff
from perkflow.service.workbench import Workbench

from .i18n import tr

_MENU = (
    ("home", "/", None),  # the list of drafts, for those who may read them
    ("approvals", "/approvals", "versions.approve"),
    ("versions", "/versions", "versions.read"),
    ("members", "/members", "members.read"),
    ("events", "/events", "members.read"),
    ("reports", "/reports/liability", "reports.read"),
    ("audit", "/audit", "audit.read"),
    ("users", "/users", "users.admin"),
)


def signed_in(wb: Workbench) -> Staff | None:
    return wb.service.staff.session(app.storage.user.get("session"))


def gate(wb: Workbench, permission: str | None) -> Staff | RedirectResponse | None:
    """The page's user, a redirect to sign in, or None (after drawing a refusal) when their roles
    do not allow the page."""
    staff = signed_in(wb)
    if staff is None:
        return RedirectResponse("/login", status_code=303)
    if staff.must_change_password:
        return RedirectResponse("/password", status_code=303)
    if permission is not None and not staff.can(permission):
        with frame(wb, staff):
            ui.label(tr("not_allowed", staff.locale)).classes("text-negative text-h6").mark("not-allowed")
        return None
    return staff


def acting(wb: Workbench) -> Staff | None:
    """The user behind an action, read again from the database: a session revoked while the
    page was open can do nothing more."""
    staff = signed_in(wb)
    if staff is None:
        ui.navigate.to("/login")
    return staff


def problem(staff: Staff, result: Problem) -> None:
    """A refused action, told in a notification with its errors."""
    lines = [result.detail or result.title] + [f"{e.pointer}: {e.message}" if e.pointer else e.message for e in result.errors[:8]]
    ui.notify("\n".join(lines), type="negative", multi_line=True, classes="whitespace-pre-line")


@contextmanager
def frame(wb: Workbench, staff: Staff) -> Iterator[None]:
    lang = staff.locale
    ui.query("body").classes("bg-grey-1")
    with ui.header().classes("items-center bg-primary text-white q-px-md gap-4"):
        ui.label(tr("app", lang)).classes("text-h6")
        for key, href, permission in _MENU:
            if permission is None or staff.can(permission):
                ui.link(tr(key, lang), href).classes("text-white no-underline")
        ui.space()
        ui.label(tr("welcome", lang, user=staff.username, roles=", ".join(sorted(staff.roles)))).classes("text-caption")

        def switch(e: object) -> None:
            locale = getattr(e, "value", lang)
            if (who := acting(wb)) is not None:
                wb.service.staff.set_locale(who, locale)
                ui.navigate.reload()

        ui.select({"en": "English", "zh-CN": "中文"}, value=lang, on_change=switch).props("dense dark options-dense borderless").mark("language")
        ui.button(tr("sign_out", lang), on_click=lambda: _sign_out(wb)).props("flat color=white no-caps").mark("sign-out")
    with ui.column().classes("w-full q-pa-md gap-3"):
        yield


def _sign_out(wb: Workbench) -> None:
    token = app.storage.user.pop("session", None)
    if token:
        wb.service.staff.sign_out(token)
    ui.navigate.to("/login")

