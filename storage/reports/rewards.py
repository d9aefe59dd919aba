"""Rewards (积分商城): redemptions per catalogue item over the period, the units they cost, and the
stock left."""

from __future__ import annotations

from sqlalchemy import func, select

from perkflow.storage import tables as t

from .context import Context, label
from .result import Cell, Report, Table, columns

COLUMNS = columns(
    ("reward", "Reward", "兑换品"),
    ("name", "Name", "名称"),
    ("redemptions", "Redemptions", "兑换次数"),
    ("cost", "Units spent", "消耗积分"),
    ("stock", "Stock", "库存"),
    ("remaining", "Remaining stock", "剩余库存"),
)


def rewards(ctx: Context) -> Report:
    e = t.events.c
    reward = e.body[("attributes", "reward")].as_string().label("reward")
    query = (
        select(reward, func.count())
        .where(e.type == "reward_redemption", ctx.in_period(e.occurred_at), ctx.members_in_scope(e.member_id))
        .group_by(reward)
    )
    if ctx.filters.channel is not None:
        query = query.where(e.channel == ctx.filters.channel)
    counts = {r: int(n) for r, n in ctx.conn.execute(query)}
    b = t.budgets.c
    used = {key: n for key, n in ctx.conn.execute(select(b.key, b.used).where(b.key.like("reward:%")))}
    rows: list[dict[str, Cell]] = []
    for reward_id, item in ctx.scheme.rewards.items():
        n = counts.get(reward_id, 0)
        stock = item.stock
        rows.append({
            "reward": reward_id, "name": label(item.name, "en"), "redemptions": n, "cost": n * item.cost.amount,
            "stock": stock, "remaining": None if stock is None else stock - int(used.get(f"reward:{reward_id}", 0)),
        })
    notes = ("Redemptions are applied reward_redemption events; rewards granted by rules are not redemptions. Stock is whole-life.",)
    table = Table("rewards", "Rewards by item", "兑换品", COLUMNS, tuple(rows))
    return Report("rewards", "Rewards", "积分商城", ctx.applied(), (table,), notes)
