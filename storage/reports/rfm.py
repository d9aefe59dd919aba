"""RFM segments and churn risk, from each member's purchases in the period.

Recency, frequency and monetary value are scored in quintiles (1 to 5, 5 best) with NTILE, ties
ordered by the member's key so both databases give each member the same score. A score of 3 or
more is high. The eight classic segments follow from high or low R, F and M; a member whose churn
risk is 2 or more (no purchase for twice their usual interval) is in 流失预警 whatever the scores.
Churn risk: days since the last purchase divided by the member's mean interval between purchases;
none for a member with fewer than two purchases. Scores rank a member among all the buyers of the
period; a store or tier filter shows the members of that store or tier with those scores, the
segment a campaign audience sees. Without a period, the report is the day's: as of the first
instant of today, over the closed days, read from the daily segment run when it has run today.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Float, Subquery, and_, case, cast, func, literal, select

from perkflow.storage import tables as t

from .context import Context, local_start
from .result import Cell, Report, Table, columns
from .sql import epoch

HIGH = 3
AT_RISK = 2.0
DAY = 86400.0

# (R high, F high, M high) -> segment key; names in English and Chinese
SEGMENTS = {
    (True, True, True): "important_value",
    (False, True, True): "important_keep",
    (True, False, True): "important_develop",
    (False, False, True): "important_win_back",
    (True, True, False): "general_value",
    (False, True, False): "general_keep",
    (True, False, False): "general_develop",
    (False, False, False): "general_win_back",
}
NAMES = {
    "at_risk": ("Churn warning", "流失预警"),
    "important_value": ("Important value", "重要价值客户"),
    "important_keep": ("Important to keep", "重要保持客户"),
    "important_develop": ("Important to develop", "重要发展客户"),
    "important_win_back": ("Important to win back", "重要挽留客户"),
    "general_value": ("General value", "一般价值客户"),
    "general_keep": ("General to keep", "一般保持客户"),
    "general_develop": ("General to develop", "一般发展客户"),
    "general_win_back": ("General to win back", "一般挽留客户"),
}


def scored(ctx: Context) -> Subquery:
    """Per buyer of the period: last, n, money, the R, F and M scores, churn risk, usual interval."""
    e, er = t.events.c, t.earnings.c
    now = int(ctx.as_of.timestamp())
    stamp = epoch(e.occurred_at)
    per_member = (
        select(
            e.member_id.label("member_id"),
            func.max(stamp).label("last"),
            func.min(stamp).label("first"),
            func.count().label("n"),
            func.coalesce(func.sum(er.amount - er.refunded), 0).label("money"),
        )
        .select_from(t.events.outerjoin(t.earnings, er.event_id == e.id))
        .where(e.type == "purchase", ctx.in_period(e.occurred_at), e.occurred_at <= ctx.as_of)
        .group_by(e.member_id)
        .subquery()
    )
    p = per_member.c
    risk = case(
        (and_(p.n >= 2, p.last > p.first), cast(literal(now) - p.last, Float) * (p.n - 1) / cast(p.last - p.first, Float)),
        else_=None,
    )
    return select(
        p.member_id, p.last, p.n, p.money,
        func.ntile(5).over(order_by=(p.last, p.member_id)).label("r"),
        func.ntile(5).over(order_by=(p.n, p.member_id)).label("f"),
        func.ntile(5).over(order_by=(p.money, p.member_id)).label("m"),
        risk.label("risk"),
        case((p.n >= 2, cast(p.last - p.first, Float) / (p.n - 1) / DAY), else_=None).label("interval"),
    ).subquery()


def latest_run(conn: Connection) -> date | None:
    """The last local day the daily segment run computed (storage/reports/segments.py)."""
    return conn.execute(select(func.max(t.segment_runs.c.computed_on))).scalar()


def stored(conn: Connection, day: date) -> Subquery | None:
    """The segment run of `day` as rows of `scored`, when the latest run is that day's; else None."""
    if latest_run(conn) != day:
        return None
    ms = t.member_segments.c
    return select(
        ms.member_id, ms.last_at.label("last"), ms.purchases.label("n"), ms.spend.label("money"),
        ms.r, ms.f, ms.m, ms.risk, ms.interval_days.label("interval"),
    ).subquery()


def segment_of(s: Any) -> ColumnElement[str]:
    """The segment key of a row of `scored`."""
    return case(
        (s.risk >= AT_RISK, "at_risk"),
        *[(and_(s.r >= HIGH if r else s.r < HIGH, s.f >= HIGH if f else s.f < HIGH, s.m >= HIGH if mm else s.m < HIGH), key) for (r, f, mm), key in SEGMENTS.items()],
    )


def rfm(ctx: Context) -> Report:
    m = t.members.c
    scored_q: Subquery | None = None
    if ctx.filters.start is None and ctx.filters.end is None:
        day = ctx.as_of.astimezone(ctx.tz).date()
        ctx = Context(ctx.conn, ctx.scheme, local_start(day, ctx.tz), replace(ctx.filters, end=day - timedelta(days=1)))
        scored_q = stored(ctx.conn, day)
    if scored_q is None:
        scored_q = scored(ctx)
    now = int(ctx.as_of.timestamp())
    s = scored_q.c
    segment = segment_of(s).label("segment")
    recency = (cast(literal(now) - s.last, Float) / DAY)
    in_scope = ctx.members_in_scope(s.member_id)
    summary_rows = {
        seg: (n, rec, freq, money)
        for seg, n, rec, freq, money in ctx.conn.execute(
            select(segment, func.count(), func.avg(recency), func.avg(cast(s.n, Float)), func.avg(cast(s.money, Float))).where(in_scope).group_by(segment)
        )
    }
    summary: list[dict[str, Cell]] = []
    for key, (en, zh) in NAMES.items():
        n, rec, freq, money = summary_rows.get(key, (0, None, None, None))
        summary.append({
            "segment": key, "name_en": en, "name_zh": zh, "members": int(n),
            "recency_days": _round(rec, 1), "frequency": _round(freq, 2), "monetary": _round(money, 0),
        })
    members = ctx.conn.execute(
        select(m.external_id, s.r, s.f, s.m, segment, recency.label("recency"), s.n, s.money, s.interval, s.risk)
        .select_from(scored_q.join(t.members, m.id == s.member_id))
        .where(in_scope)
        .order_by(s.risk.is_(None), s.risk.desc(), m.external_id)
        .limit(ctx.filters.limit)
    )
    member_rows: list[dict[str, Cell]] = [
        {
            "member": ext, "r": int(r), "f": int(f), "m": int(mm), "segment": seg, "recency_days": _round(rec, 1),
            "purchases": int(n), "monetary": int(money), "usual_interval_days": _round(interval, 1), "churn_risk": _round(rk, 2),
        }
        for ext, r, f, mm, seg, rec, n, money, interval, rk in members
    ]
    tables = (
        Table("segments", "RFM segments", "RFM客户分层",
              columns(("segment", "Segment", "分层"), ("name_en", "Name", "名称(英文)"), ("name_zh", "Name (Chinese)", "名称"),
                      ("members", "Members", "会员数"), ("recency_days", "Mean days since purchase", "平均未消费天数"),
                      ("frequency", "Mean purchases", "平均消费次数"), ("monetary", "Mean spend", "平均消费额")),
              tuple(summary)),
        Table("members", "Members by churn risk", "流失风险会员",
              columns(("member", "Member", "会员"), ("r", "R", "R"), ("f", "F", "F"), ("m", "M", "M"), ("segment", "Segment", "分层"),
                      ("recency_days", "Days since purchase", "未消费天数"), ("purchases", "Purchases", "消费次数"),
                      ("monetary", "Spend", "消费额"), ("usual_interval_days", "Usual interval (days)", "平均消费间隔(天)"),
                      ("churn_risk", "Churn risk", "流失风险")),
              tuple(member_rows)),
    )
    notes = (__doc__.split("\n\n", 1)[1].replace("\n", " ").strip(),)
    return Report("rfm", "RFM segments and churn risk", "RFM分层与流失预警", ctx.applied(), tables, notes)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)
