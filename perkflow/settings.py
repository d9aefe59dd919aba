"""Settings, read once from the environment by the adapters and passed down as arguments.

Every variable has a working default; a bad value stops the program with a message that names
the variable, its value and what is expected (never a silent fallback).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from perkflow.service.crypto import parse_keys

DEFAULT_MAX_BODY = 1024 * 1024  # 1 MiB


class SettingsError(ValueError):
    """A variable has a value Perkflow cannot use."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///data/perkflow.sqlite"
    data_dir: Path = Path("data")
    data_key: str | None = field(default=None, repr=False)  # a secret: never in a log line
    host: str = "127.0.0.1"
    port: int = 8080
    max_body: int = DEFAULT_MAX_BODY  # bytes of a request body
    tick_seconds: int = 60  # the scheduler in `serve`: seconds between runs, 0 = off
    deliver_seconds: int = 10  # the webhook worker in `serve`: seconds between runs, 0 = off
    secure_cookies: bool = False  # behind TLS: the editor's cookie is sent over HTTPS only
    # Token buckets under /api/v1, per process (perkflow/api/ratelimit.py): requests a second and
    # burst size, per API key and per client address; a rate of 0 turns that limit off.
    rate_per_key: int = 100
    burst_per_key: int = 200
    rate_per_address: int = 100
    burst_per_address: int = 200
    # The bearer token Prometheus sends to GET /metrics; unset, /metrics is not served.
    metrics_token: str | None = field(default=None, repr=False)
    log_format: str = "json"  # `serve`'s logs: json (one object a line) or text

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
            rate_per_key=_integer("PERKFLOW_RATE_PER_KEY", env.get("PERKFLOW_RATE_PER_KEY"), 100, 0, 1_000_000),
            burst_per_key=_integer("PERKFLOW_BURST_PER_KEY", env.get("PERKFLOW_BURST_PER_KEY"), 200, 1, 1_000_000),
            rate_per_address=_integer("PERKFLOW_RATE_PER_ADDRESS", env.get("PERKFLOW_RATE_PER_ADDRESS"), 100, 0, 1_000_000),
            burst_per_address=_integer(
                "PERKFLOW_BURST_PER_ADDRESS", env.get("PERKFLOW_BURST_PER_ADDRESS"), 200, 1, 1_000_000
            ),
            metrics_token=_metrics_token(env.get("PERKFLOW_METRICS_TOKEN") or None),
            log_format=_choice("PERKFLOW_LOG_FORMAT", env.get("PERKFLOW_LOG_FORMAT") or "json", ("json", "text")),
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


def _metrics_token(raw: str | None) -> str | None:
    if raw is not None and len(raw) < 16:
        raise SettingsError(f"PERKFLOW_METRICS_TOKEN is {len(raw)} characters: expected at least 16 (a random secret)")
    return raw


def _choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    if raw not in choices:
        raise SettingsError(f"{name} has value {raw!r}: expected one of {', '.join(choices)}")
    return raw
