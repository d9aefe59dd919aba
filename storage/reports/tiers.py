"""Tiers: how many members hold each tier now and at each month end of the period, and the
upgrades and downgrades of each month, read from the members and their tier history."""

from __future__ import annotations

from sqlalchemy import case, func, literal, select

from perkflow.storage import tables as t

from .context import Context, label
from .result import Cell, Report, Table, columns


def tiers(ctx: Context) -> Report:
    levels = [level.id for level in ctx.scheme.tiers.levels] if ctx.scheme.tiers else []
    m, h = t.members.c, t.tier_history.c
    active = [m.status == "active", ctx.members_in_scope(m.id)]
    now = dict(ctx.conn.execute(select(m.tier, func.count()).where(*active, m.tier.is_not(None)).group_by(m.tier)).all())
    distribution = [{"month_end": "now", **{lv: int(now.get(lv, 0)) for lv in levels}}]
    lowest = levels[0] if levels else None
    for label_, _, end in ctx.buckets("month"):
        if end > ctx.as_of or end <= ctx.lo:
            continue
        held = (
            select(h.to_tier)
            .where(h.member_id == m.id, h.at < end)
            .order_by(h.at.desc(), h.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        tier = func.coalesce(held, literal(lowest)).label("tier")
        counts = dict(ctx.conn.execute(select(tier, func.count()).where(*active, m.joined_at < end).group_by(tier)).all())
        distribution.append({"month_end": label_, **{lv: int(counts.get(lv, 0)) for lv in levels}})
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
