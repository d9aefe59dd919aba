"""Tiers: how many members hold each tier now and at each month end of the period, and the
upgrades and downgrades of each month, read from the members and their tier history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select

from perkflow.storage import tables as t

from .context import Context, label
from .result import Cell, Report, Table, columns


def tiers(ctx: Context) -> Report:
    levels = [level.id for level in ctx.scheme.tiers.levels] if ctx.scheme.tiers else []
    m, h = t.members.c, t.tier_history.c
    active = [m.status == "active", ctx.members_in_scope(m.id)]
    now = dict(ctx.conn.execute(select(m.tier, func.count()).where(*active, m.tier.is_not(None)).group_by(m.tier)).all())
    distribution = [{"month_end": "now", **{lv: int(now.get(lv, 0)) for lv in levels}}]
    ends = [(label_, end) for label_, _, end in ctx.buckets("month") if ctx.lo < end <= ctx.as_of]
    for label_, counts in zip((label_ for label_, _ in ends), _month_ends(ctx, [end for _, end in ends], levels, active), strict=True):
        distribution.append({"month_end": label_, **{lv: counts.get(lv, 0) for lv in levels}})
    rank = {lv: i for i, lv in enumerate(levels)}
    to_rank = case(*[(h.to_tier == lv, i) for lv, i in rank.items()], else_=-1) if rank else literal(-1)
    from_rank = case(*[(h.from_tier == lv, i) for lv, i in rank.items()], else_=-1) if rank else literal(-1)
    month = ctx.bucket_of(h.at, "month").label("month")
    moves = (
        select(
            month,
            func.sum(case((to_rank > from_rank, 1), else_=0)),
            func.sum(case((to_rank < from_rank, 1), else_=0)),
        )
        .where(ctx.in_period(h.at), h.from_tier.is_not(None), ctx.members_in_scope(h.member_id))
        .group_by(month)
        .order_by(month)
    )
    movement: list[dict[str, Cell]] = [
        {"month": mo, "upgrades": int(up or 0), "downgrades": int(down or 0)} for mo, up, down in ctx.conn.execute(moves)
    ]
    names = {level.id: level.name for level in ctx.scheme.tiers.levels} if ctx.scheme.tiers else {}
    level_columns = tuple((lv, label(names[lv], "en"), label(names[lv], "zh-CN")) for lv in levels)
    tables = (
        Table("distribution", "Members per tier", "各等级会员数", columns(("month_end", "Month end", "月末"), *level_columns), tuple(distribution)),
        Table("movements", "Upgrades and downgrades", "升降级", columns(("month", "Month", "月份"), ("upgrades", "Upgrades", "升级"), ("downgrades", "Downgrades", "降级")), tuple(movement)),
    )
    notes = (
        "Active members only (merged and erased members are left out, at every month end too). "
        "A member without a tier change before a month end holds the lowest tier then.",
    )
    return Report("tiers", "Tiers", "会员等级", ctx.applied(), tables, notes)


def _month_ends(ctx: Context, ends: list[datetime], levels: list[str], active: list[ColumnElement[bool]]) -> list[dict[str, int]]:
    """The members per tier at each instant of `ends`, in two scans instead of a look-up per member
    and month end. A member holds at E the tier of their last history row before E (by time, then
    id), else the lowest tier: a row is the last before E when it is before E and the member's
    next row (LEAD) is not. Members who joined before E, less those with such a row, hold the lowest."""
    if not ends or not levels:
        return [{} for _ in ends]
    m, h = t.members.c, t.tier_history.c
    joined = ctx.conn.execute(select(*[func.sum(case((m.joined_at < end, 1), else_=0)) for end in ends]).where(*active)).one()
    following = func.lead(h.at).over(partition_by=h.member_id, order_by=(h.at, h.id))
    rows = select(h.member_id, h.to_tier, h.at, following.label("next_at")).subquery()
    r = rows.c
    last_before = [and_(r.at < end, or_(r.next_at.is_(None), r.next_at >= end), m.joined_at < end) for end in ends]
    held = ctx.conn.execute(
        select(r.to_tier, *[func.sum(case((cond, 1), else_=0)) for cond in last_before])
        .select_from(rows.join(t.members, m.id == r.member_id))
        .where(*active)
        .group_by(r.to_tier)
    ).all()
    out: list[dict[str, int]] = []
    for i in range(len(ends)):
        counts = {str(row[0]): int(row[i + 1] or 0) for row in held}
        counts[levels[0]] = counts.get(levels[0], 0) + int(joined[i] or 0) - sum(counts.values())
        out.append(counts)
    return out
