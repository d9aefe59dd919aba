"""The filters a report takes, the scheme and instant it is computed for, and the time buckets.

Time is bucketed in the scheme's timezone on both databases alike: the boundaries (local
midnights, Mondays, first days of months) are computed here with zoneinfo as UTC instants, and
the database sorts each stored UTC instant into its bucket with a CASE over those boundaries. No
database time-zone function is used (SQLite has none), so SQLite and PostgreSQL give the same
buckets, daylight saving time included. See docs/reports.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, and_, case, literal, select, true

from perkflow.rules.models import Scheme
from perkflow.storage import tables as t

Bucket = Literal["day", "week", "month"]


@dataclass(frozen=True)
class Filters:
    start: date | None = None  # the first local day of the period (default: 11 months before as_of's month)
    end: date | None = None  # the last local day of the period, included (default: as_of's day)
    stores: frozenset[str] | None = None  # members whose home store is one of these
    channel: str | None = None  # events made through this channel
    tier: str | None = None  # members now in this tier
    campaign: str | None = None  # the rules of this campaign
    bucket: Bucket = "month"
    limit: int = 100  # rows of per-member tables
    rollups: bool = True  # read closed days from the rollups where they answer (False: the ledger only, to compare)


@dataclass(frozen=True)
class Context:
    conn: Connection
    scheme: Scheme
    as_of: datetime  # the instant "now" for the report: outstanding, expiring, recency
    filters: Filters
    tz: ZoneInfo = field(init=False)
    first: date = field(init=False)
    last: date = field(init=False)

    def __post_init__(self) -> None:
        tz = ZoneInfo(self.scheme.timezone)
        today = self.as_of.astimezone(tz).date()
        last = self.filters.end or today
        first = self.filters.start or add_months(last.replace(day=1), -11)
        object.__setattr__(self, "tz", tz)
        object.__setattr__(self, "first", first)
        object.__setattr__(self, "last", last)

    @property
    def lo(self) -> datetime:
        return local_start(self.first, self.tz)

    @property
    def hi(self) -> datetime:
        return local_start(self.last + timedelta(days=1), self.tz)

    def in_period(self, col: Any) -> ColumnElement[bool]:
        return and_(col >= self.lo, col < self.hi)

    def applied(self, **extra: Any) -> dict[str, Any]:
        f = self.filters
        out: dict[str, Any] = {
            "from": self.first.isoformat(), "to": self.last.isoformat(), "timezone": self.scheme.timezone,
            "as_of": self.as_of.astimezone(UTC).isoformat(), "bucket": f.bucket,
            "stores": sorted(f.stores) if f.stores is not None else None,
            "channel": f.channel, "tier": f.tier, "campaign": f.campaign,
        }
        return {**out, **extra}

    def members_in_scope(self, member_col: Any) -> ColumnElement[bool]:
        """The store and tier filters, on the member's home store and current tier."""
        f = self.filters
        m = t.members.c
        conditions = []
        if f.stores is not None:
            conditions.append(m.home_store.in_(sorted(f.stores)))
        if f.tier is not None:
            conditions.append(m.tier == f.tier)
        if not conditions:
            return true()
        return member_col.in_(select(m.id).where(*conditions))

    def campaign_rules(self) -> list[str] | None:
        if self.filters.campaign is None:
            return None
        return [r.id for c in self.scheme.campaigns if c.id == self.filters.campaign for r in c.rules]

    def bucket_days(self, unit: Bucket | None = None) -> list[tuple[str, date, date]]:
        """(label, first local day, the day after the last) of each bucket of the period; the first
        and last buckets are cut at the period's ends."""
        unit = unit or self.filters.bucket
        out: list[tuple[str, date, date]] = []
        day = self.first
        stop = self.last + timedelta(days=1)
        while day < stop:
            if unit == "day":
                label, nxt = day.isoformat(), day + timedelta(days=1)
            elif unit == "week":
                monday = day - timedelta(days=day.weekday())
                label, nxt = monday.isoformat(), monday + timedelta(days=7)
            else:
                label, nxt = day.strftime("%Y-%m"), add_months(day.replace(day=1), 1)
            nxt = min(nxt, stop)
            out.append((label, day, nxt))
            day = nxt
        return out

    def buckets(self, unit: Bucket | None = None) -> list[tuple[str, datetime, datetime]]:
        """(label, start, end) of each bucket of the period, as UTC instants of local boundaries."""
        return [(label, local_start(day, self.tz), local_start(nxt, self.tz)) for label, day, nxt in self.bucket_days(unit)]

    def bucket_of_day(self, col: Any, unit: Bucket | None = None) -> ColumnElement[Any]:
        """The label of the bucket a stored local day falls in."""
        return case(*[(col < nxt, literal(label)) for label, _, nxt in self.bucket_days(unit)], else_=literal(None))

    def bucket_of(self, col: Any, unit: Bucket | None = None) -> ColumnElement[Any]:
        """The label of the bucket a stored instant falls in (rows are kept to the period first)."""
        buckets = self.buckets(unit)
        return case(*[(col < end, literal(label)) for label, _, end in buckets], else_=literal(None))


def local_start(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which a local day begins."""
    return datetime.combine(day, time(), tz).astimezone(UTC)


def add_months(day: date, months: int) -> date:
    """The first day of the month `months` after `day`'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def label(text: Any, lang: str) -> str:
    if isinstance(text, dict):
        return str(text.get(lang) or next(iter(text.values()), ""))
    return str(text or "")
