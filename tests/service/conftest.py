"""Fixtures of the service tests that start processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from perkflow.service.core import Service, open_service

from ..databases import BACKENDS, Clock
from .harness import own_database


@pytest.fixture(params=BACKENDS)
def shared_service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    """A migrated database that several processes can open: an SQLite file, or a PostgreSQL
    database of its own."""
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}" if request.param == "sqlite" else own_database()
    svc = open_service(url, tmp_path / "data", clock=Clock())
    yield svc
    svc.engine.dispose()
