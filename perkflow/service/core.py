"""The service: one object that the API, the CLI and the editor share, built from settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from perkflow.storage import migrate
from perkflow.storage.db import open_engine

from .access import AccessService
from .codes import CodeService
from .coupons import CouponService, RewardService
from .crypto import DataKeys, load_keys
from .drafts import Drafts
from .events import EventService
from .holds import HoldService
from .idempotency import IdempotencyKeys
from .members import MemberService
from .notifications import Notifier
from .reports import ReportService
from .scheduler import Scheduler
from .staff import StaffService
from .subjects import Subjects
from .versions import Versions
from .webhooks import Webhooks


def system_clock() -> datetime:
    return datetime.now(UTC)


class Service:
    def __init__(self, engine: Engine, keys: DataKeys, clock: Callable[[], datetime] = system_clock, data_dir: Path | None = None) -> None:
        self.engine, self.keys, self.clock = engine, keys, clock
        self.versions = Versions(engine, clock)
        self.events = EventService(engine, self.versions, clock)
        self.members = MemberService(engine, self.versions, self.events, keys, clock)
        self.subjects = Subjects(engine, keys, clock, data_dir)
        self.access = AccessService(engine, clock)
        self.staff = StaffService(engine, clock)
        self.drafts = Drafts(engine, self.versions, clock)
        self.coupons = CouponService(engine, self.versions, self.events, clock)
        self.codes = CodeService(engine, self.versions, self.events, clock)
        self.holds = HoldService(engine, self.versions, clock)
        self.rewards = RewardService(self.events, clock)
        self.idempotency = IdempotencyKeys(engine, clock)
        self.scheduler = Scheduler(engine, self.versions, self.events, clock)
        self.webhooks = Webhooks(engine, clock)
        self.notifications = Notifier(engine, self.versions, clock)
        self.reports = ReportService(engine, self.versions, clock)

    def ready(self) -> tuple[bool, str]:
        """Whether the database answers and its schema is at the newest migration."""
        try:
            if migrate.pending(self.engine):
                return False, "migrations are pending: run `perkflow db upgrade`"
        except Exception as exc:  # any failure to reach the database means not ready
            return False, f"database unreachable: {type(exc).__name__}"
        return True, "ok"


def open_service(database_url: str, data_dir: Path, *, data_key: str | None = None, upgrade: bool = True, clock: Callable[[], datetime] = system_clock) -> Service:
    engine = open_engine(database_url)
    if upgrade:
        migrate.upgrade(engine)
    return Service(engine, load_keys(data_dir, data_key), clock, data_dir)
