"""Retention: members by the local month they joined (cohorts), the share of each cohort that bought
in each month after joining (a triangle), and lifetime value per member of each cohort."""

from __future__ import annotations

from sqlalchemy import func, select

from perkflow.storage import tables as t

from .context import Context
from .result import Cell, Report, Table, columns


def retention(ctx: Context) -> Report:
    m, e, er = t.members.c, t.events.c, t.earnings.c
    months = [label_ for label_, _, end in ctx.buckets("month")]
    cohort = ctx.bucket_of(m.joined_at, "month").label("cohort")
    scope = [ctx.in_period(m.joined_at), ctx.members_in_scope(m.id)]
    sizes = dict(ctx.conn.execute(select(cohort, func.count()).where(*scope).group_by(cohort)).all())
    active_month = ctx.bucket_of(e.occurred_at, "month").label("active")
    active_rows = ctx.conn.execute(
        select(cohort, active_month, func.count(func.distinct(m.id)))
        .select_from(t.members.join(t.events, e.member_id == m.id))
        .where(*scope, e.type == "purchase", ctx.in_period(e.occurred_at), e.occurred_at < ctx.as_of)
        .group_by(cohort, active_month)
    )
    active: dict[tuple[str, str], int] = {(c, a): int(n) for c, a, n in active_rows}
    value = dict(
        ctx.conn.execute(
            select(cohort, func.sum(er.amount - er.refunded))
            .select_from(t.members.join(t.earnings, er.member_id == m.id))
            .where(*scope, er.event_type == "purchase")
            .group_by(cohort)
        ).all()
    )
    horizon = len(months)
    rows: list[dict[str, Cell]] = []
    for i, month in enumerate(months):
        size = int(sizes.get(month, 0))
        row: dict[str, Cell] = {"cohort": month, "members": size, "ltv": round(int(value.get(month) or 0) / size, 2) if size else None}
        for k in range(horizon):
            later = months[i + k] if i + k < horizon else None
            row[f"m{k}"] = round(active.get((month, later), 0) / size, 4) if size and later is not None else None
        rows.append(row)
    offsets = tuple((f"m{k}", f"Month {k}", f"第{k}月") for k in range(horizon))
    table = Table(
        "cohorts", "Sign-up cohorts", "注册月份群组",
        columns(("cohort", "Cohort", "注册月份"), ("members", "Members", "会员数"), ("ltv", "Lifetime value per member", "人均生命周期价值"), *offsets),
        tuple(rows),
    )
    notes = (
        "Month k: the share of the cohort with a purchase in the k-th local month after the month they joined (month 0 is that month). "
        "Lifetime value: every purchase recorded, less its refunds, per member of the cohort, in minor units.",
    )
    return Report("retention", "Retention", "留存与生命周期价值", ctx.applied(), (table,), notes)
