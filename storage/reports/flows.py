"""Flows: what was issued, redeemed, expired, clawed back and adjusted, per balance per time bucket,
and per rule over the period, read from the ledger."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, case, func, select

from perkflow.storage import tables as t

from .context import Context
from .result import Cell, Report, Table, columns

# ledger kind -> the column it adds to; spends, expiries and clawbacks are negative in the ledger
# and reported as positive amounts; adjustments are reported as their net signed sum; what a
# refund gives back of a purchase's payment (restore, positive) is taken off redeemed
KINDS = (
    ("earn", "issued", 1), ("spend", "redeemed", -1), ("restore", "redeemed", -1), ("expire", "expired", -1),
    ("clawback", "clawed_back", -1), ("adjust", "adjusted", 1),
)

AMOUNTS = columns(
    ("issued", "Issued", "发放"),
    ("redeemed", "Redeemed", "使用"),
    ("expired", "Expired", "过期"),
    ("clawed_back", "Clawed back", "退款扣回"),
    ("adjusted", "Adjusted (net)", "人工调整(净额)"),
)


def _sums() -> list[Any]:
    ledger = t.ledger.c
    names = dict.fromkeys(name for _, name, _ in KINDS)
    return [
        func.coalesce(
            func.sum(case(*((ledger.kind == kind, ledger.amount * sign) for kind, of, sign in KINDS if of == name), else_=0)), 0
        ).label(name)
        for name in names
    ]


def _filtered(ctx: Context, query: Select[Any]) -> Select[Any]:
    ledger = t.ledger.c
    query = query.where(ctx.in_period(ledger.occurred_at), ctx.members_in_scope(ledger.member_id))
    if ctx.filters.channel is not None:
        query = query.where(ledger.event_id.in_(select(t.events.c.id).where(t.events.c.channel == ctx.filters.channel)))
    rules = ctx.campaign_rules()
    if rules is not None:
        query = query.where(ledger.rule.in_(rules))
    return query


def flows(ctx: Context) -> Report:
    ledger = t.ledger.c
    bucket = ctx.bucket_of(ledger.occurred_at).label("bucket")
    by_time = _filtered(ctx, select(bucket, ledger.balance, *_sums())).group_by(bucket, ledger.balance).order_by(bucket, ledger.balance)
    time_rows = tuple(_row(r._mapping) for r in ctx.conn.execute(by_time))
    rule = func.coalesce(ledger.rule, "").label("rule")
    by_rule = _filtered(ctx, select(rule, ledger.balance, *_sums())).group_by(rule, ledger.balance).order_by(rule, ledger.balance)
    rule_rows = tuple(_row(r._mapping) for r in ctx.conn.execute(by_rule))
    head = columns(("bucket", "Period", "期间"), ("balance", "Balance", "账户"))
    tables = (
        Table("by_period", "Flows by period", "按期间流水", head + AMOUNTS, time_rows),
        Table("by_rule", "Flows by rule", "按规则流水", columns(("rule", "Rule", "规则"), ("balance", "Balance", "账户")) + AMOUNTS, rule_rows),
    )
    notes = ("Rule '' holds what no rule made: expiry, reward redemptions, coupon-free spends, manual adjustments.",)
    return Report("flows", "Flows", "积分流水", ctx.applied(), tables, notes)


def _row(row: Any) -> dict[str, Cell]:
    return {k: (int(v) if k in {name for _, name, _ in KINDS} else v) for k, v in row.items()}
