"""Real databases for tests: a fresh SQLite file always, and PostgreSQL when
PERKFLOW_TEST_POSTGRES_URL is set (CI sets it). Each test gets an empty, migrated database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from perkflow.service.core import Service, open_service
from perkflow.service.versions import Version

POSTGRES_URL = os.environ.get("PERKFLOW_TEST_POSTGRES_URL")
# The source the service's own endpoints post these examples' events with (a code claim by claiming
# a code, a tier override by the tier-override endpoints); everything else comes from the API.
EXAMPLE_SOURCES = {"code_claim": "code_claim", "tier_override": "tier_override", "tier_override_end": "tier_override"}
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not POSTGRES_URL, reason="PERKFLOW_TEST_POSTGRES_URL is not set"))]


def fresh_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'perkflow.sqlite'}"
    assert POSTGRES_URL is not None
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return POSTGRES_URL


class Clock:
    """An injected clock that tests move by hand."""

    def __init__(self, start: str = "2026-11-20T12:00:00+00:00") -> None:
        self.now = datetime.fromisoformat(start).astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def set(self, iso: str) -> None:
        self.now = datetime.fromisoformat(iso).astimezone(UTC)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_url(request.param, tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(database_url: str, tmp_path: Path, clock: Clock) -> Iterator[Service]:
    svc = open_service(database_url, tmp_path / "data", clock=clock)
    yield svc
    svc.engine.dispose()


def publish(svc: Service, text_or_path: str, *, author: str = "alice", approver: str = "bob") -> None:
    """Publish a scheme through four eyes, as a deployment does."""
    content = Path(text_or_path).read_text() if text_or_path.endswith((".yaml", ".yml", ".json")) else text_or_path
    version = svc.versions.submit(content, author=author)
    assert isinstance(version, Version), version
    if version.status == "submitted":
        approved = svc.versions.approve(version.id, approver=approver)
        assert isinstance(approved, Version) and approved.status == "published", approved
