"""Each member's RFM segment, stored for campaign audiences (docs/reports.md, "Segments as audiences").

The segments of day D are the rfm report's, as of D's first local instant, over the report's
default period ending the day before (from the first day of the month eleven months earlier):
whole closed days only, so a run for D gives the same answer whenever it runs, unless events
dated before D arrive later (a late event), which the next run takes in. A run replaces every
stored segment and records itself in one transaction, so the stored rows are always one run's.
Each row keeps the member's scores too, which the rfm report of day D reads (`rfm.stored`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Date, delete, func, insert, literal, select

from perkflow.rules.models import Scheme
from perkflow.storage import tables as t

from .context import Context, Filters, local_start
from .rfm import latest_run, scored, segment_of

__all__ = ["latest_run", "recompute_segments"]


def recompute_segments(conn: Connection, scheme: Scheme, day: date, computed_at: datetime) -> int:
    """Store every buyer's segment for the local day `day`; returns how many members have one."""
    ctx = Context(conn, scheme, local_start(day, ZoneInfo(scheme.timezone)), Filters(end=day - timedelta(days=1)))
    s = scored(ctx).c
    conn.execute(delete(t.member_segments))
    conn.execute(
        insert(t.member_segments).from_select(
            ["member_id", "segment", "computed_on", "r", "f", "m", "last_at", "purchases", "spend", "risk", "interval_days"],
            select(s.member_id, segment_of(s), literal(day, Date), s.r, s.f, s.m, s.last, s.n, s.money, s.risk, s.interval),
        )
    )
    members = conn.execute(select(func.count()).select_from(t.member_segments)).scalar_one()
    conn.execute(delete(t.segment_runs).where(t.segment_runs.c.computed_on == day))
    conn.execute(insert(t.segment_runs).values(computed_on=day, computed_at=computed_at, members=members))
    return int(members)
