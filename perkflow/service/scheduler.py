"""The scheduler: time-driven events for every member, up to an instant.

`tick(until)` finds the members who may have something due (lots expiring by `until` plus the
longest reminder, tier reviews due, birthdays, inactivity and listened-to campaign starts and
ends falling since the last run) and, for each, calls `EventService.apply_due`: the same path that
applies due events before a member's next event, in the member's transaction. The events' ids
are deterministic and stored once, so two schedulers at once, or one run twice, never double
anything. The candidate query only narrows the search; `engine.due_events` decides. A run is recorded in `scheduler_runs` once every member
is done, so a crashed run is simply covered again by the next.

The first `tick` of each local day (the scheme in force's timezone) also recomputes every member's
RFM segment for that day (`storage.reports.segments`), which campaign audiences read; later ticks
of the same day leave them be, so ticking twice changes nothing. Each `tick` also brings the
ledger's daily rollup up to the last closed local day (`storage.reports.rollup`), rebuilding the
days late events touched; `rollup()` is that step alone (`perkflow rollup`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, and_, func, insert, or_, select, text

from perkflow.engine import Program
from perkflow.engine.calendar import birthday_on, duration_delta
from perkflow.storage import tables as t
from perkflow.storage.reports import rollup
from perkflow.storage.reports.segments import latest_run, recompute_segments

from .events import FUTURE_LIMIT, EventService
from .problems import Problem
from .versions import Versions

SLACK = timedelta(days=3)  # calendar months and DST against elapsed-time bounds: look a little wider
FULL_SCAN = timedelta(days=31)  # a longer window reads every member with a birthday


@dataclass(frozen=True)
class TickResult:
    until: datetime
    since: datetime | None  # the previous run's `until`
    members: int  # candidates looked at
    events: int  # time-driven events applied
    segments_on: date | None = None  # the local day whose segments this run computed
    segmented: int = 0  # members given a segment
    rolled_through: date | None = None  # the last closed local day the ledger's rollup holds

    def to_dict(self) -> dict[str, object]:
        return {
            "until": self.until.isoformat(),
            "since": self.since.isoformat() if self.since else None,
            "members": self.members,
            "events": self.events,
            "segments_on": self.segments_on.isoformat() if self.segments_on else None,
            "segmented": self.segmented,
            "rolled_through": self.rolled_through.isoformat() if self.rolled_through else None,
        }


class Scheduler:
    def __init__(self, engine: Engine, versions: Versions, events: EventService, clock: Callable[[], datetime]) -> None:
        self.engine, self.versions, self.events, self.clock = engine, versions, events, clock

    def last_until(self) -> datetime | None:
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(t.scheduler_runs.c.until))).scalar()

    def tick(self, until: datetime | None = None) -> TickResult:
        """Apply every member's time-driven events due at or before `until` (default: now)."""
        started = self.clock()
        until = until or started
        if until > started + FUTURE_LIMIT:
            raise ValueError(f"--until {until.isoformat()} is in the future (the time is {started.isoformat()})")
        since = self.last_until()
        with self.engine.connect() as conn:
            program = self.versions.in_force(conn, until)
            members = [] if isinstance(program, Problem) else self.candidates(conn, program, since, until)
        applied = sum(self.events.apply_due(member, until) for member in members)
        segments_on, segmented = (None, 0) if isinstance(program, Problem) else self.segments(program, until)
        rolled = None if isinstance(program, Problem) else rollup.build(self.engine, program.scheme.timezone, until, self.clock()).through
        with self.engine.begin() as conn:
            conn.execute(
                insert(t.scheduler_runs).values(
                    until=until, started_at=started, finished_at=self.clock(), members=len(members), events=applied
                )
            )
        return TickResult(until, since, len(members), applied, segments_on, segmented, rolled)

    def build_rollup(self, until: datetime | None = None, *, full: bool = False) -> rollup.Built | Problem:
        """Build the ledger's daily rollup up to the last local day closed by `until` (default: now);
        `full` rebuilds every day from the ledger."""
        until = until or self.clock()
        with self.engine.connect() as conn:
            program = self.versions.in_force(conn, until)
        if isinstance(program, Problem):
            return program
        return rollup.build(self.engine, program.scheme.timezone, until, self.clock(), full=full)

    def segments(self, program: Program, until: datetime) -> tuple[date | None, int]:
        """Compute the segments for `until`'s local day unless that day or a later one is stored."""
        day = until.astimezone(program.tz).date()
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # two ticks at once: the second waits, then finds the day done (SQLite's writers queue already)
                conn.execute(text("LOCK TABLE segment_runs IN EXCLUSIVE MODE"))
            latest = latest_run(conn)
            if latest is not None and latest >= day:
                return None, 0
            return day, recompute_segments(conn, program.scheme, day, self.clock())

    @staticmethod
    def candidates(conn: object, program: Program, since: datetime | None, until: datetime) -> list[str]:
        """External ids of active members who may have a time-driven event due by `until`."""
        m = t.members.c
        active = m.status == "active"
        horizon = until + max(
            (duration_delta(b.remind_before) + SLACK for b in program.balances.values() if b.remind_before), default=timedelta(0)
        )
        queries = [
            select(m.external_id).select_from(t.members.join(t.lots, t.lots.c.member_id == m.id))
            .where(active, t.lots.c.amount > 0, t.lots.c.expires_at <= horizon),
            select(m.external_id).where(active, m.tier_review_at <= until),
            select(m.external_id).select_from(t.members.join(t.lots, t.lots.c.member_id == m.id))
            .where(active, t.lots.c.amount > 0, t.lots.c.available_at <= until),
        ]
        days = _birthdays_between(program, since, until)
        if days is None:
            queries.append(select(m.external_id).where(active, m.birthday_month.is_not(None)))
        elif days:
            pairs = [and_(m.birthday_month == month, m.birthday_day == day) for month, day in sorted(days)]
            queries.append(select(m.external_id).where(active, or_(*pairs)))
        inactivity = program.scheme.inactivity
        if inactivity is not None:
            after = duration_delta(inactivity.after)
            quiet_since = func.coalesce(m.last_purchase_at, m.joined_at)
            condition = [active, quiet_since <= until - after + SLACK]
            if since is not None:
                condition.append(quiet_since > since - after - SLACK)
            queries.append(select(m.external_id).where(*condition))
        if any((since is None or since < instant) and instant <= until for instant, _, _ in program.campaign_instants):
            queries = [select(m.external_id).where(active)]  # a campaign starts or ends: every member
        found: set[str] = set()
        for query in queries:
            found.update(conn.execute(query.distinct()).scalars())  # type: ignore[attr-defined]
        return sorted(found)


def _birthdays_between(program: Program, since: datetime | None, until: datetime) -> set[tuple[int, int]] | None:
    """The (month, day) birthdays that fall on a local day from `since` to `until` (29 Feb with
    28 Feb in other years); None when the window is too long to list (read every birthday)."""
    if since is None or until - since > FULL_SCAN:
        return None
    tz = program.tz
    day, last = since.astimezone(tz).date(), until.astimezone(tz).date()
    found: set[tuple[int, int]] = set()
    while day <= last:
        found.add((day.month, day.day))
        if day.month == 2 and day.day == 28 and birthday_on(day.year, 2, 29) == day:
            found.add((2, 29))
        day += timedelta(days=1)
    return found
