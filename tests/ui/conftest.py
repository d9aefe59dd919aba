"""The editor under NiceGUI's simulated user: a real service on a SQLite file, pages registered
by the same function the server calls, and one user per role."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from nicegui.testing import User

from perkflow.builder_ui.app import register_pages
from perkflow.service.core import Service, open_service

from ..databases import Clock

PASSWORD = "correct horse battery"
ROLES = ("admin", "operator", "approver", "store_manager", "finance", "support", "auditor")


@pytest.fixture(autouse=True)
def _keep_perkflow_imported() -> Iterator[None]:
    """NiceGUI's plugin drops the modules of page functions and their parent packages after each
    test, so that a main file runs afresh. Our pages come from a factory, and `perkflow` must stay
    the package whose submodules are already imported (migrations reach them by attribute)."""
    saved = {name: module for name, module in sys.modules.items() if name == "perkflow" or name.startswith("perkflow.")}
    yield
    sys.modules.update(saved)


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    service = open_service(f"sqlite:///{tmp_path / 'ui.sqlite'}", tmp_path / "data", clock=Clock("2026-12-01T04:00:00+00:00"))
    for role in ROLES:
        made = service.access.create_user(role, PASSWORD, [role], created_by="test", stores=["s1"] if role == "store_manager" else None, locale="en")
        assert isinstance(made, int), made
    register_pages(service, default_locale="en")
    yield service
    service.engine.dispose()


async def sign_in(user: User, username: str, password: str = PASSWORD) -> None:
    await user.open("/login")
    user.find("Username").type(username)
    user.find("Password").type(password)
    user.find("Sign in").click()
    await user.should_see(marker="sign-out", retries=100)  # argon2 runs in a thread first
