"""Time in reports is the scheme's local time, on SQLite (which has no time zones) as on PostgreSQL:
an event at 23:59 on the last day of a month belongs to that month, one at 00:30 the next day to the
next month though it is still the same day in UTC, and points that expire on the last day of the
month are outstanding until its end and expire at the first instant of the next month."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from perkflow.service.core import Service
from perkflow.storage.reports import Filters, run

from ..databases import Clock, publish

TZ = ZoneInfo("Asia/Shanghai")
SCHEME = """
perkflow: 1
id: month-ends
name: Month ends
timezone: Asia/Shanghai
balances:
  points: {expiry: {kind: rolling, after: 30d}, value: 2}
rules:
  - id: welcome
    on: signup
    then: [{award: {balance: points, amount: "100"}}]
  - id: earn
    on: purchase
    then: [{award: {balance: points, amount: "event.amount / 100"}}]
"""


def _post(service: Service, event_id: str, kind: str, at: str, **attributes: int) -> None:
    raw = {"id": event_id, "type": kind, "member_id": "m1", "occurred_at": at, "store": "S1", "channel": "pos", "attributes": attributes}
    assert service.events.post(raw).status == 201  # type: ignore[union-attr]


def _report(service: Service, name: str, as_of: datetime, **filters: object) -> object:
    program = service.versions.active()
    assert program is not None
    with service.engine.connect() as conn:
        return run(name, conn, program.scheme, as_of, Filters(**filters))  # type: ignore[arg-type]


def test_month_and_day_buckets_are_local_and_expiry_falls_on_the_months_last_day(service: Service, clock: Clock):
    clock.set("2025-12-31T00:00:00+00:00")
    publish(service, SCHEME)
    clock.set("2026-02-01T01:00:00+08:00")
    _post(service, "su-1", "signup", "2026-01-01T10:00:00+08:00")
    _post(service, "pos-1", "purchase", "2026-01-31T23:59:00+08:00", amount=1000)

    # the welcome points expire on 31 January: still held at 23:59:30 that night, and expiring soon
    last_minute = _report(service, "liability", datetime(2026, 1, 31, 23, 59, 30, tzinfo=TZ)).table("liability").rows[0]  # type: ignore[attr-defined]
    assert (last_minute["outstanding"], last_minute["expiring_30"], last_minute["expiring_60"]) == (110, 100, 110)
    assert last_minute["value"] == 220  # two fen a point
    midnight = _report(service, "liability", datetime(2026, 2, 1, tzinfo=TZ)).table("liability").rows[0]  # type: ignore[attr-defined]
    assert midnight["outstanding"] == 10

    # 00:30 local on 1 February is 16:30 UTC on 31 January
    _post(service, "pos-2", "purchase", "2026-02-01T00:30:00+08:00", amount=2000)
    as_of = datetime(2026, 2, 1, 1, tzinfo=TZ)
    months = _report(service, "flows", as_of, start=date(2026, 1, 1), end=date(2026, 2, 1)).table("by_period").rows  # type: ignore[attr-defined]
    assert [(r["bucket"], r["issued"], r["expired"]) for r in months] == [("2026-01", 110, 0), ("2026-02", 20, 100)]
    days = _report(service, "flows", as_of, start=date(2026, 1, 31), end=date(2026, 2, 1), bucket="day").table("by_period").rows  # type: ignore[attr-defined]
    assert [(r["bucket"], r["issued"], r["expired"]) for r in days] == [("2026-01-31", 10, 0), ("2026-02-01", 20, 100)]
    only_february = _report(service, "flows", as_of, start=date(2026, 2, 1), end=date(2026, 2, 1)).table("by_period").rows  # type: ignore[attr-defined]
    assert [(r["bucket"], r["issued"]) for r in only_february] == [("2026-02", 20)]
