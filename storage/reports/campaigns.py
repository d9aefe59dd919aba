"""Campaigns: the members each campaign reached in its treatment and holdout groups, their spend,
visits and points cost over the campaign's window, and the lift in spend per member with a 95%
Welch's t interval."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, and_, case, cast, func, select

from perkflow.storage import tables as t

from .context import Context, label
from .result import Cell, Report, Table, columns
from .stats import welch

GROUPS = columns(
    ("campaign", "Campaign", "活动"),
    ("group", "Group", "分组"),
    ("members", "Members", "会员数"),
    ("spend", "Spend (minor units)", "消费额(分)"),
    ("spend_per_member", "Spend per member", "人均消费"),
    ("visit_rate", "Visit rate", "到店率"),
    ("points_cost", "Points cost", "积分成本"),
)
LIFT = columns(
    ("campaign", "Campaign", "活动"),
    ("lift", "Lift in spend per member", "人均消费提升"),
    ("low", "95% interval, low", "95%置信区间下限"),
    ("high", "95% interval, high", "95%置信区间上限"),
    ("df", "Degrees of freedom", "自由度"),
    ("verdict", "Verdict", "结论"),
)


def campaigns(ctx: Context) -> Report:
    chosen = [c for c in ctx.scheme.campaigns if ctx.filters.campaign in (None, c.id)]
    group_rows: list[dict[str, Cell]] = []
    lift_rows: list[dict[str, Cell]] = []
    for campaign in chosen:
        start = campaign.start.replace(tzinfo=ctx.tz)
        end = min(campaign.end.replace(tzinfo=ctx.tz), ctx.as_of)
        rules = [r.id for r in campaign.rules]
        figures = _groups(ctx, campaign.id, start, end, rules)
        for group in ("treatment", "holdout"):
            n, spend, _, visitors, cost = figures.get(group, (0, 0, 0.0, 0, 0))
            group_rows.append({
                "campaign": campaign.id, "group": group, "members": n, "spend": spend,
                "spend_per_member": round(spend / n, 2) if n else None,
                "visit_rate": round(visitors / n, 4) if n else None, "points_cost": cost,
            })
        tn, ts, tq, _, _ = figures.get("treatment", (0, 0, 0.0, 0, 0))
        hn, hs, hq, _, _ = figures.get("holdout", (0, 0, 0.0, 0, 0))
        interval = welch(tn, ts, tq, hn, hs, hq)
        if interval is None:
            lift_rows.append({"campaign": campaign.id, "lift": None, "low": None, "high": None, "df": None, "verdict": "not enough data"})
        else:
            lift_rows.append({
                "campaign": campaign.id, "lift": round(interval.difference, 2), "low": round(interval.low, 2),
                "high": round(interval.high, 2), "df": round(interval.df, 1),
                "verdict": "significant" if interval.significant else "not significant",
            })
    names = {c.id: {"en": label(c.name, "en"), "zh-CN": label(c.name, "zh-CN")} for c in chosen}
    tables = (
        Table("groups", "Treatment and holdout", "实验组与对照组", GROUPS, tuple(group_rows)),
        Table("lift", "Lift", "活动提升", LIFT, tuple(lift_rows)),
    )
    notes = (
        "Groups: the members whose events reached the campaign's holdout draw (in its window and audience), as the decisions "
        "assigned them; members outside the rollout are in neither. Spend: purchases less refunds during the campaign's window "
        "(up to the as-of instant). Visit rate: the share of the group with a purchase in the window. Points cost: units the "
        "campaign's rules issued.",
        "Lift: treatment minus holdout spend per member, with a 95% confidence interval by Welch's t "
        "(Welch-Satterthwaite degrees of freedom, Student's t quantile computed exactly). "
        "'not significant' when the interval includes zero.",
    )
    return Report("campaigns", "Campaigns", "营销活动效果", ctx.applied(campaigns=names), tables, notes)


def _groups(ctx: Context, campaign: str, start: datetime, end: datetime, rules: list[str]) -> dict[str, tuple[int, int, float, int, int]]:
    """Group -> (members, spend, sum of squared spend per member, members who bought, points cost)."""
    e, er, cm, ledger = t.events.c, t.earnings.c, t.campaign_members.c, t.ledger.c
    window = and_(e.occurred_at >= start, e.occurred_at < end)
    bought = (
        select(e.member_id.label("member_id"), func.sum(er.amount - er.refunded).label("spend"))
        .select_from(t.earnings.join(t.events, t.events.c.id == er.event_id))
        .where(e.type == "purchase", window, e.member_id.in_(select(cm.member_id).where(cm.campaign == campaign)))
        .group_by(e.member_id)
        .subquery()
    )
    spend = func.coalesce(bought.c.spend, 0)
    query = (
        select(
            cm.grp, func.count(), func.coalesce(func.sum(spend), 0),
            # squares as floating point: an exact integer square of a large spend can overflow 64 bits
            func.coalesce(func.sum(cast(spend, Float) * cast(spend, Float)), 0.0),
            func.sum(case((bought.c.member_id.is_not(None), 1), else_=0)),
        )
        .select_from(t.campaign_members.outerjoin(bought, bought.c.member_id == cm.member_id))
        .where(cm.campaign == campaign, ctx.members_in_scope(cm.member_id))
        .group_by(cm.grp)
    )
    out: dict[str, tuple[int, int, float, int, int]] = {}
    for grp, n, total, squares, visitors in ctx.conn.execute(query):
        out[grp] = (int(n), int(total), float(squares), int(visitors or 0), 0)
    if rules:
        costs = ctx.conn.execute(
            select(cm.grp, func.sum(ledger.amount))
            .select_from(t.ledger.join(t.campaign_members, and_(cm.member_id == ledger.member_id, cm.campaign == campaign)))
            .where(ledger.kind == "earn", ledger.rule.in_(rules), ledger.occurred_at >= start, ledger.occurred_at < end,
                   ctx.members_in_scope(ledger.member_id))
            .group_by(cm.grp)
        )
        for grp, cost in costs:
            n, total, squares, visitors, _ = out[grp]
            out[grp] = (n, total, squares, visitors, int(cost or 0))
    return out
