"""`perkflow serve`: the rule API (and the editor, once it exists) under uvicorn.

Settings are read once from the environment (perkflow/settings.py); options override the host and
the port. The database is upgraded on start, so an empty one just works. `--demo` builds a whole
deployment on a new SQLite file first and prints what is needed to try it, once.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from uvicorn.supervisors import Multiprocess

from perkflow import logs
from perkflow.api.app import create_api
from perkflow.app import create_app
from perkflow.service.access import SCOPES
from perkflow.service.background import Background
from perkflow.service.core import Service, open_service, system_clock
from perkflow.service.problems import Problem
from perkflow.settings import Settings, SettingsError

DEMO_ACTOR = "cli:serve --demo"
DEMO_SCHEME = Path(__file__).resolve().parents[2] / "examples" / "coffee" / "scheme.yaml"


def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (PERKFLOW_HOST, else 127.0.0.1).", show_default=False),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            help="Port to listen on (PERKFLOW_PORT, else 8080).", show_default=False, min=1, max=65535
        ),
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Start a demo deployment on a new SQLite file and print its keys.")
    ] = False,
    api_only: Annotated[
        bool, typer.Option("--api-only", help="Serve the rule API without the editor.")
    ] = False,
    workers: Annotated[
        int,
        typer.Option(help="Worker processes; more than 1 needs --api-only (use PostgreSQL).", min=1, max=64),
    ] = 1,
) -> None:
    """Serve the rule API over HTTP (/api/v1, /healthz, /readyz).

    The database named by PERKFLOW_DATABASE_URL is upgraded on start. With --demo, a new SQLite
    file under the data directory gets examples/coffee/scheme.yaml published (approval turned off
    for this deployment, as the audit log records), an admin user whose one-time password is printed
    once, and an API key with every scope, printed once. The editor runs in one process, so
    --workers N needs --api-only; each worker then opens the database itself. In the background,
    the scheduler runs every PERKFLOW_TICK_SECONDS (60) and the webhook worker every
    PERKFLOW_DELIVER_SECONDS (10); 0 turns either off.

    Exit status: 0 when stopped, 1 when the server cannot start, 2 for a usage error.
    """
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise typer.BadParameter(str(exc)) from None
    if workers > 1 and not api_only:
        raise typer.BadParameter(
            "the editor runs in one process: add --api-only to run several workers", param_hint="--workers"
        )
    settings = replace(settings, host=host or settings.host, port=port or settings.port)
    if demo:
        settings = _demo(settings)
    if workers > 1:
        _many(settings, workers)
        return
    service = open_service(settings.database_url, settings.data_dir, data_key=settings.data_key)
    app = create_api(service, settings) if api_only else create_app(service, settings)
    background = Background(service, tick_seconds=settings.tick_seconds, deliver_seconds=settings.deliver_seconds).start()
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", log_config=logs.config(settings.log_format))
    finally:
        background.stop()


def _many(settings: Settings, workers: int) -> None:
    """Several worker processes through uvicorn's factory; each reads the settings from the
    environment, so the demo's database and the chosen address are put there first."""
    service = open_service(settings.database_url, settings.data_dir, data_key=settings.data_key)  # upgrade once
    os.environ.update(PERKFLOW_DATABASE_URL=settings.database_url, PERKFLOW_DATA_DIR=str(settings.data_dir))
    if settings.metrics_token:
        # Each worker counts into files here and /metrics sums them, whichever worker answers;
        # emptied at each start, since counters begin at zero with the processes.
        shared = settings.data_dir / "metrics"
        shutil.rmtree(shared, ignore_errors=True)
        shared.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(shared)
    # The scheduler and the webhook worker run once, in this supervising process.
    background = Background(service, tick_seconds=settings.tick_seconds, deliver_seconds=settings.deliver_seconds).start()
    try:
        _run_workers(settings, workers)
    finally:
        background.stop()
        service.engine.dispose()


def _run_workers(settings: Settings, workers: int) -> None:
    """What uvicorn.run does for several workers, with the listening socket told it is TCP: uvicorn
    binds it with protocol 0, so asyncio never sets TCP_NODELAY on the accepted connections and
    Nagle's algorithm adds ~40 ms to every kept-alive request (uvicorn issue #3149; measured by
    benchmarks/http.py)."""
    config = uvicorn.Config(
        "perkflow.app:api_factory", factory=True, workers=workers, host=settings.host, port=settings.port, log_level="info",
        log_config=logs.config(settings.log_format),
    )
    bound = config.bind_socket()
    sock = socket.socket(fileno=bound.detach())  # reads family and protocol back from the kernel
    sock.set_inheritable(True)
    Multiprocess(config, sockets=[sock]).run()


def _demo(settings: Settings) -> Settings:
    folder = settings.data_dir / f"demo-{system_clock().strftime('%Y%m%dT%H%M%S%f')}"
    settings = replace(settings, database_url=f"sqlite:///{folder / 'perkflow.sqlite'}", data_dir=folder)
    if not DEMO_SCHEME.is_file():
        typer.echo(f"Error: the demo needs {DEMO_SCHEME}, which this installation does not have", err=True)
        raise typer.Exit(1)
    service = open_service(settings.database_url, folder, data_key=settings.data_key)
    try:
        password, token, number = _demo_deployment(service)
    finally:
        service.engine.dispose()
    base = f"http://{settings.host}:{settings.port}"
    typer.echo(
        f"Perkflow demo on a new SQLite database: {folder / 'perkflow.sqlite'}\n"
        f"  scheme examples/coffee/scheme.yaml published as version {number} (approval turned off for this demo)\n"
        f"  admin user: admin  one-time password: {password}  (shown once; it must be changed at first sign-in)\n"
        f"  API key with every scope (shown once): {token}\n"
        f"\nTry it (README.md has the whole tour):\n"
        f"  export PF={base}/api/v1 TOKEN={token}\n"
        f'  curl -s -X PUT "$PF/members/alice" -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d \'{{"home_store": "S001"}}\'\n'
        f'  curl -s "$PF/members/alice" -H "Authorization: Bearer $TOKEN"\n'
        f"API reference: {base}/api/v1/docs\n",
    )
    return settings


def _demo_deployment(service: Service) -> tuple[str, str, int | None]:
    version = service.versions.submit(
        DEMO_SCHEME.read_text(encoding="utf-8"),
        author=DEMO_ACTOR,
        comment="the demo deployment",
        filename=str(DEMO_SCHEME),
        approval_required=False,
    )
    password = secrets.token_urlsafe(12)
    user = service.access.create_user(
        "admin", password, ["admin"], created_by=DEMO_ACTOR, must_change_password=True
    )
    key = service.access.create_key("demo", list(SCOPES), created_by=DEMO_ACTOR)
    for result in (version, user, key):
        if isinstance(result, Problem):
            typer.echo(f"Error: the demo could not be set up: {result.detail}", err=True)
            raise typer.Exit(1)
    assert not isinstance(version, Problem) and not isinstance(key, Problem)
    return password, key[1], version.number


def register(app: typer.Typer) -> None:
    """Add `serve` to the `perkflow` app."""
    app.command()(serve)
