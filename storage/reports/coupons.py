"""Coupons per policy over the period: issued, redeemed, expired unused, the share of the period's
coupons redeemed so far, the face value given, and the policy's budget."""

from __future__ import annotations

from sqlalchemy import and_, case, func, select

from perkflow.storage import tables as t

from .context import Context, label
from .result import Cell, Report, Table, columns

COLUMNS = columns(
    ("policy", "Policy", "券种"),
    ("name", "Name", "名称"),
    ("issued", "Issued", "发放"),
    ("redeemed", "Redeemed", "核销"),
    ("expired", "Expired unused", "过期未用"),
    ("redemption_rate", "Redemption rate", "核销率"),
    ("face_value", "Face value given (minor units)", "已核销面值(分)"),
    ("budget", "Budget", "预算"),
    ("budget_used", "Budget used", "预算已用"),
)


def coupons(ctx: Context) -> Report:
    c = t.coupons.c
    one = lambda cond: func.sum(case((cond, 1), else_=0))  # noqa: E731
    query = (
        select(
            c.policy,
            one(ctx.in_period(c.issued_at)),
            one(ctx.in_period(c.redeemed_at)),
            one(and_(ctx.in_period(c.valid_until), c.valid_until <= ctx.as_of, c.redeemed_at.is_(None), c.voided.is_(False))),
            one(and_(ctx.in_period(c.issued_at), c.redeemed_at.is_not(None))),
        )
        .where(ctx.members_in_scope(c.member_id))
        .group_by(c.policy)
    )
    rules = ctx.campaign_rules()
    if rules is not None:
        query = query.where(c.rule.in_(rules))
    counts = {policy: [int(x or 0) for x in rest] for policy, *rest in ctx.conn.execute(query)}
    b = t.budgets.c
    budgets = {key: (limit, used) for key, limit, used in ctx.conn.execute(select(b.key, b.limit, b.used).where(b.key.like("coupon:%")))}
    rows: list[dict[str, Cell]] = []
    for policy_id, policy in ctx.scheme.coupons.items():
        issued, redeemed, expired, of_issued = counts.get(policy_id, [0, 0, 0, 0])
        benefit = policy.benefit
        face = benefit.amount if benefit.kind == "amount_off" else benefit.value if benefit.kind == "free_item" else None
        limit, used = budgets.get(f"coupon:{policy_id}", (None, None))
        rows.append({
            "policy": policy_id, "name": label(policy.name, "en"), "issued": issued, "redeemed": redeemed, "expired": expired,
            "redemption_rate": round(of_issued / issued, 4) if issued else None,
            "face_value": None if face is None else face * redeemed, "budget": limit, "budget_used": used,
        })
    notes = (
        "Issued, redeemed and expired count the coupons whose issue, redemption or end of validity falls in the period; "
        "the redemption rate is the share of the period's issued coupons redeemed by the as-of instant. "
        "Face value is given for amount-off and free-item coupons; a percent-off coupon's value depends on the order. "
        "Budgets are whole-life figures, not the period's.",
    )
    table = Table("coupons", "Coupons by policy", "各券种发放与核销", COLUMNS, tuple(rows))
    return Report("coupons", "Coupons", "优惠券", ctx.applied(), (table,), notes)
