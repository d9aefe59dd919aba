"""Settings, read once from the environment by the adapters and passed down as arguments.

Every variable has a working default; a bad value stops the program with a message that names
the variable, its value and what is expected (never a silent fallback).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from perkflow.service.crypto import parse_keys

DEFAULT_MAX_BODY = 1024 * 1024  # 1 MiB


class SettingsError(ValueError):
    """A variable has a value Perkflow cannot use."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///data/perkflow.sqlite"
    data_dir: Path = Path("data")
    data_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    max_body: int = DEFAULT_MAX_BODY  # bytes of a request body
    tick_seconds: int = 60  # the scheduler in `serve`: seconds between runs, 0 = off
    deliver_seconds: int = 10  # the webhook worker in `serve`: seconds between runs, 0 = off
    secure_cookies: bool = False  # behind TLS: the editor's cookie is sent over HTTPS only

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("PERKFLOW_DATA_DIR") or "data")
        return cls(
            database_url=_database_url(
                env.get("PERKFLOW_DATABASE_URL") or f"sqlite:///{data_dir / 'perkflow.sqlite'}"
            ),
            data_dir=data_dir,
            data_key=_data_key(env.get("PERKFLOW_DATA_KEY") or None),
            host=env.get("PERKFLOW_HOST") or "127.0.0.1",
            port=_integer("PERKFLOW_PORT", env.get("PERKFLOW_PORT"), 8080, 1, 65535),
            max_body=_integer(
                "PERKFLOW_MAX_BODY", env.get("PERKFLOW_MAX_BODY"), DEFAULT_MAX_BODY, 1024, 1024**3
            ),
            tick_seconds=_integer("PERKFLOW_TICK_SECONDS", env.get("PERKFLOW_TICK_SECONDS"), 60, 0, 86400),
            deliver_seconds=_integer("PERKFLOW_DELIVER_SECONDS", env.get("PERKFLOW_DELIVER_SECONDS"), 10, 0, 86400),
            secure_cookies=_flag("PERKFLOW_SECURE_COOKIES", env.get("PERKFLOW_SECURE_COOKIES")),
        )


def _integer(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} has value {raw!r}: not a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} has value {raw!r}: expected {low} to {high}")
    return value


def _flag(name: str, raw: str | None) -> bool:
    if raw is None or raw == "":
        return False
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise SettingsError(f"{name} has value {raw!r}: expected 1 or 0")


def _database_url(url: str) -> str:
    if not url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        raise SettingsError(
            f"PERKFLOW_DATABASE_URL has value {url!r}: expected sqlite:///path or postgresql://user@host/db"
        )
    return url


def _data_key(raw: str | None) -> str | None:
    """The current data key, then (comma-separated) the older keys a rotation still needs."""
    if raw is None:
        return None
    try:
        parse_keys(raw, "PERKFLOW_DATA_KEY")
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    return raw
