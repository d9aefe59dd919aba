"""Schema migrations with Alembic, run from code: `perkflow db upgrade`, and by the server on start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

_HERE = Path(__file__).parent / "migrations"


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(_config(engine), revision)


def head() -> str:
    script = ScriptDirectory(str(_HERE))
    current = script.get_current_head()
    assert current is not None
    return current


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def pending(engine: Engine) -> bool:
    return current(engine) != head()


def revisions() -> list[str]:
    """Every migration this version of Perkflow knows, the oldest first."""
    script = ScriptDirectory(str(_HERE))
    return [r.revision for r in reversed(list(script.walk_revisions()))]
