"""Signing in and out, and choosing a new password."""

from __future__ import annotations

import asyncio

from nicegui import app, ui
from starlette.requests import Request
from starlette.responses import RedirectResponse

from perkflow.service.problems import Problem
from perkflow.service.staff import SignInRefused
from perkflow.service.workbench import Workbench

from .i18n import tr
from .shell import signed_in


def register(wb: Workbench, default_locale: str) -> None:
    @ui.page("/login", title="Perkflow")
    def login(request: Request) -> None:
        lang = _browser_language(request.headers.get("accept-language", ""), default_locale)
        with ui.card().classes("absolute-center w-96"):
            ui.label(tr("app", lang)).classes("text-h5")
            username = ui.input(tr("username", lang)).classes("w-full").props("outlined autocomplete=username")
            password = ui.input(tr("password", lang), password=True).classes("w-full").props("outlined autocomplete=current-password")
            message = ui.label("").classes("text-negative").mark("sign-in-message")

            async def submit() -> None:
                result = await asyncio.to_thread(wb.service.staff.sign_in, username.value or "", password.value or "")
                if isinstance(result, SignInRefused):
                    # Each failure in a row costs a little more time, on top of argon2's own cost.
                    await asyncio.sleep(min(2.0, 0.25 * result.failures))
                    password.value = ""
                    if result.reason == "locked" and result.locked_until is not None:
                        message.set_text(tr("locked_out", lang, until=f"{result.locked_until:%Y-%m-%d %H:%M}"))
                    else:
                        message.set_text(tr("bad_credentials", lang))
                    return
                token, staff = result
                app.storage.user["session"] = token
                ui.navigate.to("/password" if staff.must_change_password else "/")

            password.on("keydown.enter", submit)
            ui.button(tr("sign_in", lang), on_click=submit).classes("w-full").props("no-caps")

    @ui.page("/password", title="Perkflow")
    def password_page() -> RedirectResponse | None:
        staff = signed_in(wb)
        if staff is None:
            return RedirectResponse("/login", status_code=303)
        lang = staff.locale
        with ui.card().classes("absolute-center w-96"):
            ui.label(tr("change_password", lang)).classes("text-h6")
            if staff.must_change_password:
                ui.label(tr("must_change", lang))
            new = ui.input(tr("new_password", lang), password=True).classes("w-full").props("outlined autocomplete=new-password")

            def save() -> None:
                who = signed_in(wb)
                if who is None:
                    ui.navigate.to("/login")
                    return
                refused = wb.service.staff.change_password(who, new.value or "")
                if isinstance(refused, Problem):
                    new.error = refused.errors[0].message if refused.errors else refused.detail
                    return
                ui.navigate.to("/")

            ui.button(tr("change_password", lang), on_click=save).props("no-caps")
        return None


def _browser_language(accept_language: str, default: str) -> str:
    """Before anyone has signed in, the browser's first language decides (then the user's own)."""
    first = accept_language.strip().lower()[:2]
    return {"zh": "zh-CN", "en": "en"}.get(first, default)
