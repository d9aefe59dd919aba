"""The ledger summed per closed local day (`ledger_days`), so the flows report need not read a year
of ledger rows, and still exact.

Built by the scheduler (and `perkflow rollup`), never on the event path: each build sums the whole
closed local days (before the local day of `until`) that are new or were touched since the
previous build, and records how far it got (`rollups`: `through`, the last day, and `ledger_id`,
the greatest ledger id the build is sure it saw). A reader takes the rolled-up days up to
`through`, except from the first day that a ledger row with a greater id (a late or backdated
event recorded since) falls on: those days, and the open days after `through`, are summed from the
ledger itself. The next build rebuilds the touched days. So an answer never depends on when the
rollup was last built.

The mark is exact on PostgreSQL too, where ids are drawn before their transactions commit: the
greatest id is read under a SHARE lock on the ledger, which waits for the writers in flight and
holds new ones back for that one read, so every row up to the mark is committed before the build
reads the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Connection,
    Date,
    Engine,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    text,
)

from perkflow.storage import tables as t

from .context import Context, local_start

NAME = "ledger_days"
CHUNK = 31  # days summed by one statement (the CASE that sorts rows into days has one branch per day)


@dataclass(frozen=True)
class Built:
    start: date | None  # the first day rebuilt; None when nothing was
    through: date | None  # the last closed day the rollup now holds
    days: int  # days rebuilt


def build(engine: Engine, timezone: str, until: datetime, built_at: datetime, *, full: bool = False) -> Built:
    """Bring `ledger_days` up to the last local day that closed by `until`; `full` rebuilds it all."""
    tz = ZoneInfo(timezone)
    target = until.astimezone(tz).date() - timedelta(days=1)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("LOCK TABLE ledger IN SHARE MODE"))
        mark = int(conn.execute(select(func.coalesce(func.max(t.ledger.c.id), 0))).scalar_one())
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # builds queue (SQLite's BEGIN IMMEDIATE does the same); reports still read
            conn.execute(text("LOCK TABLE rollups IN EXCLUSIVE MODE"))
        r = t.rollups.c
        state = conn.execute(select(t.rollups).where(r.name == NAME)).mappings().first()
        if full or state is None or state["timezone"] != timezone:
            first = conn.execute(select(func.min(t.ledger.c.occurred_at))).scalar()
            start = first.astimezone(tz).date() if first is not None else target + timedelta(days=1)
            conn.execute(delete(t.ledger_days))
        else:
            target = max(target, state["through"])
            start = state["through"] + timedelta(days=1)
            late = _first_late(conn, state["ledger_id"], state["through"], tz)
            if late is not None:
                start = min(start, late)
            conn.execute(delete(t.ledger_days).where(t.ledger_days.c.day >= start))
        day = start
        while day <= target:
            last = min(day + timedelta(days=CHUNK - 1), target)
            _sum_days(conn, tz, day, last)
            day = last + timedelta(days=1)
        conn.execute(delete(t.rollups).where(r.name == NAME))
        conn.execute(insert(t.rollups).values(name=NAME, timezone=timezone, through=target, ledger_id=mark, built_at=built_at))
    days = max((target - start).days + 1, 0)
    if days and engine.dialect.name == "postgresql":
        # fresh statistics, or the planner guesses at a table it has never seen filled (seconds, not ms);
        # the table grows with days, balances, rules and channels, never with members, so this is quick
        with engine.begin() as conn:
            conn.execute(text("ANALYZE ledger_days"))
    return Built(start if days else None, target, days)


def _sum_days(conn: Connection, tz: ZoneInfo, first: date, last: date) -> None:
    ledger, events = t.ledger.c, t.events.c
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    day = case(*[(ledger.occurred_at < local_start(d + timedelta(days=1), tz), literal(d, Date)) for d in days]).label("day")
    rule = func.coalesce(ledger.rule, "").label("rule")
    query = (
        select(day, ledger.balance, ledger.kind, rule, events.channel, func.sum(ledger.amount), func.count())
        .select_from(t.ledger.outerjoin(t.events, events.id == ledger.event_id))
        .where(ledger.occurred_at >= local_start(first, tz), ledger.occurred_at < local_start(last + timedelta(days=1), tz))
        .group_by(day, ledger.balance, ledger.kind, rule, events.channel)
    )
    conn.execute(insert(t.ledger_days).from_select(["day", "balance", "kind", "rule", "channel", "amount", "entries"], query))


def _first_late(conn: Connection, mark: int, through: date, tz: ZoneInfo) -> date | None:
    """The first local day up to `through` that a ledger row recorded after the mark falls on."""
    ledger = t.ledger.c
    # Only the id range may choose the plan: the few rows above the mark. The mark is written into
    # the SQL (a plan PostgreSQL prepares for an unknown mark may walk the whole occurred_at index),
    # and the day bound sits inside the aggregate, where no database can serve min() from that index.
    above = ledger.id > bindparam("mark", mark, type_=BigInteger, literal_execute=True)
    closed = ledger.occurred_at < local_start(through + timedelta(days=1), tz)
    first = conn.execute(select(func.min(case((closed, ledger.occurred_at)))).where(above)).scalar()
    return first.astimezone(tz).date() if first is not None else None


def rolled_through(ctx: Context) -> date | None:
    """The last day of the period that the rollup answers for exactly; None when it answers none
    (not built, another timezone, a store or tier filter: those are on the members' current rows)."""
    f = ctx.filters
    if not f.rollups or f.stores is not None or f.tier is not None:
        return None
    state = ctx.conn.execute(select(t.rollups).where(t.rollups.c.name == NAME)).mappings().first()
    if state is None or state["timezone"] != ctx.scheme.timezone:
        return None
    through = min(state["through"], ctx.last)
    late = _first_late(ctx.conn, state["ledger_id"], through, ctx.tz)
    if late is not None:
        through = min(through, late - timedelta(days=1))
    return through if through >= ctx.first else None

