"""The editor's pages, registered onto NiceGUI and mounted into the one ASGI app by perkflow/app.py."""

from __future__ import annotations

import secrets
from pathlib import Path

from nicegui import app, ui
from starlette.applications import Starlette

from perkflow.service.core import Service
from perkflow.service.workbench import Workbench

from . import pages_admin, pages_auth, pages_drafts, pages_people, pages_reports, pages_versions
from .headers import SecurityHeaders


def register_pages(service: Service, *, default_locale: str = "zh-CN") -> None:
    """Define every page of the editor over one service (also what the simulated-user tests call)."""
    wb = Workbench(service)
    pages_auth.register(wb, default_locale)
    pages_drafts.register(wb)
    pages_versions.register(wb)
    pages_people.register(wb)
    pages_admin.register(wb)
    pages_reports.register(wb)


def ui_secret(data_dir: Path) -> str:
    """The key that signs NiceGUI's browser cookie: made on first start, kept beside the data."""
    path = data_dir / "ui_secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def mount(api: Starlette, service: Service, data_dir: Path, *, secure_cookies: bool = False) -> None:
    """Serve the editor at / beside the API (whose routes are matched first). `secure_cookies`
    behind TLS: the browser then sends the editor's cookie over HTTPS only."""
    app.storage.path = (data_dir / "nicegui").resolve()  # view state only; sessions are in the database
    app.add_middleware(SecurityHeaders)
    register_pages(service)
    ui.run_with(
        api, title="Perkflow", language="zh-CN", show_welcome_message=False, storage_secret=ui_secret(data_dir),
        # The cookie is HttpOnly (Starlette always sets it); SameSite=strict keeps other sites'
        # pages from riding on it.
        session_middleware_kwargs={"session_cookie": "perkflow_editor", "same_site": "strict", "https_only": secure_cookies},
    )
