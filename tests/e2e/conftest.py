"""A real server in a subprocess (API and editor on a SQLite file) and Debian's Chromium driven by
Playwright. The browser is module-scoped: Playwright's sync API keeps an event loop running while
it is open, which a session-wide browser would leave in the way of the async editor tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from perkflow.service.access import SCOPES
from perkflow.service.core import open_service

CHROMIUM = "/usr/bin/chromium"  # Debian's, installed by .ci/run; never a downloaded browser
PASSWORD = "correct horse battery"
ARTIFACTS = Path(os.environ.get("PERKFLOW_ARTIFACTS", Path(__file__).resolve().parents[2] / "artifacts")) / "screenshots"


@dataclass(frozen=True)
class Live:
    url: str
    token: str  # an API key with every scope

    def shot(self, page: object, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True, animations="disabled")  # type: ignore[attr-defined]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("live")
    url = f"sqlite:///{tmp / 'perkflow.sqlite'}"
    service = open_service(url, tmp / "data")
    for username, roles, locale in (("operator", ["operator"], "en"), ("approver", ["approver"], "en"), ("support", ["support"], "en"), ("admin", ["admin"], "en")):
        assert isinstance(service.access.create_user(username, PASSWORD, roles, created_by="e2e", locale=locale), int)
    made = service.access.create_key("e2e", list(SCOPES), created_by="e2e")
    assert isinstance(made, tuple)
    service.engine.dispose()
    port = _free_port()
    env = os.environ | {
        "PERKFLOW_DATABASE_URL": url, "PERKFLOW_DATA_DIR": str(tmp / "data"), "PERKFLOW_TICK_SECONDS": "0", "PERKFLOW_DELIVER_SECONDS": "0",
    }
    log = (tmp / "server.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "perkflow", "serve", "--port", str(port)], env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log.close()
                raise AssertionError((tmp / "server.log").read_text()) from None
            time.sleep(0.2)
    yield Live(base, made[1])
    process.terminate()
    process.wait(10)
    log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()
