"""`perkflow serve` for real: the demo deployment in a subprocess, probed from outside as an
integrator would (shared/probes/integrator_probe.py), and the workers of `--api-only --workers N`."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from perkflow.cli.main import app as cli
from perkflow.service.access import SCOPES
from perkflow.storage import tables as t
from perkflow.storage.db import open_engine

REPO = Path(__file__).resolve().parents[2]
PROBE = REPO.parent / "shared" / "probes" / "integrator_probe.py"


@dataclass
class Server:
    url: str
    output: str
    process: subprocess.Popen[bytes]

    @property
    def token(self) -> str:
        found = re.search(r"API key with every scope \(shown once\): (pk_\S+)", self.output)
        assert found, self.output
        return found.group(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(tmp: Path, *args: str, **variables: str) -> Iterator[Server]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERKFLOW_", "PROMETHEUS_"))} | {
        "PERKFLOW_DATA_DIR": str(tmp / "data"),
        "PYTHONUNBUFFERED": "1",
        **variables,
    }
    out, err = tmp / "stdout.txt", tmp / "stderr.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "perkflow", "serve", "--port", str(port), *args],
            stdout=stdout,
            stderr=stderr,
            cwd=tmp,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"the server stopped: {err.read_text()}"
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, f"the server did not answer in 30 s: {err.read_text()}"
            time.sleep(0.1)
        yield Server(url, out.read_text(), process)
    finally:
        process.terminate()
        process.wait(15)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _start(tmp_path_factory.mktemp("demo"), "--demo")


@pytest.mark.skipif(not PROBE.is_file(), reason=f"{PROBE} is not there")
def test_the_integrator_probe_passes_against_the_demo_server(demo: Server):
    probe = subprocess.run(
        [sys.executable, str(PROBE), demo.url, demo.token], capture_output=True, text=True, timeout=120
    )
    assert probe.returncode == 0, probe.stdout + probe.stderr
    passed = re.search(r"api probes passed (\d+)/(\d+)", probe.stdout)
    assert passed and passed.group(1) == passed.group(2), probe.stdout


def test_the_demo_prints_its_secrets_once_and_the_audit_log_names_it(demo: Server):
    database = re.search(r"new SQLite database: (\S+)", demo.output)
    assert database, demo.output
    assert re.search(r"admin user: admin  one-time password: \S{12,}", demo.output)
    assert f"export PF={demo.url}/api/v1" in demo.output
    engine = open_engine(f"sqlite:///{database.group(1)}")
    with engine.connect() as conn:
        audit = conn.execute(
            select(t.audit_log.c.actor, t.audit_log.c.action).order_by(t.audit_log.c.id)
        ).all()
        admin = conn.execute(select(t.users.c.roles, t.users.c.must_change_password)).one()
        scopes = conn.execute(select(t.api_keys.c.scopes)).scalar()
    engine.dispose()
    assert ("cli:serve --demo", "approval_turned_off") in audit
    assert ("cli:serve --demo", "version_published") in audit
    assert (admin.roles, admin.must_change_password) == (["admin"], True)
    assert sorted(scopes) == sorted(SCOPES)


def test_several_workers_serve_the_api(tmp_path: Path):
    for server in _start(tmp_path, "--demo", "--api-only", "--workers", "2"):
        headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}
        request = urllib.request.Request(
            server.url + "/api/v1/members/w1", data=json.dumps({}).encode(), headers=headers, method="PUT"
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 201


def test_several_workers_need_api_only():
    result = CliRunner().invoke(cli, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "--api-only" in result.output


def test_with_several_workers_metrics_count_every_workers_requests(tmp_path: Path):
    token = "metrics-token-0123456789"
    for server in _start(tmp_path, "--demo", "--api-only", "--workers", "2", PERKFLOW_METRICS_TOKEN=token):
        headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}
        for n in range(6):  # a new connection each: the workers share them out
            request = urllib.request.Request(f"{server.url}/api/v1/members/w{n}", data=b"{}", headers=headers, method="PUT")
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.status == 201
        line = 'perkflow_http_request_duration_seconds_count{method="PUT",route="/api/v1/members/{member_id}",status="201"} 6.0'
        for _ in range(4):  # whichever worker answers the scrape
            scrape = urllib.request.Request(f"{server.url}/metrics", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(scrape, timeout=10) as answer:
                assert line in answer.read().decode()
        assert list(tmp_path.glob("data/demo-*/metrics/histogram_*.db"))  # the workers count into shared files
