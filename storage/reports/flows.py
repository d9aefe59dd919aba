"""Flows: what was issued, redeemed, expired, clawed back and adjusted, per balance per time bucket,
and per rule over the period, read from the ledger: the closed days the daily rollup holds from
`ledger_days`, the days after them from the ledger rows (rollup.py says why this stays exact)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, case, func, select

from perkflow.storage import tables as t

from .context import Context, local_start
from .result import Cell, Report, Table, columns
from .rollup import rolled_through

# ledger kind -> the column it adds to; spends, expiries and clawbacks are negative in the ledger
# and reported as positive amounts; adjustments are reported as their net signed sum; what a
# refund gives back of a purchase's payment (restore, positive) is taken off redeemed
KINDS = (
    ("earn", "issued", 1), ("spend", "redeemed", -1), ("restore", "redeemed", -1), ("expire", "expired", -1),
    ("clawback", "clawed_back", -1), ("adjust", "adjusted", 1),
)
NAMES = tuple(dict.fromkeys(name for _, name, _ in KINDS))

AMOUNTS = columns(
    ("issued", "Issued", "发放"),
    ("redeemed", "Redeemed", "使用"),
    ("expired", "Expired", "过期"),
    ("clawed_back", "Clawed back", "退款扣回"),
    ("adjusted", "Adjusted (net)", "人工调整(净额)"),
)


def _sums(kind: Any, amount: Any) -> list[Any]:
    return [
        func.coalesce(func.sum(case(*((kind == k, amount * sign) for k, of, sign in KINDS if of == name), else_=0)), 0).label(name)
        for name in NAMES
    ]


def _filtered(ctx: Context, query: Select[Any], since: date | None) -> Select[Any]:
    """Ledger rows of the period, from the local day `since` on when the days before are rolled up."""
    ledger = t.ledger.c
    lo = ctx.lo if since is None else local_start(since, ctx.tz)
    query = query.where(ledger.occurred_at >= lo, ledger.occurred_at < ctx.hi, ctx.members_in_scope(ledger.member_id))
    if ctx.filters.channel is not None:
        query = query.where(ledger.event_id.in_(select(t.events.c.id).where(t.events.c.channel == ctx.filters.channel)))
    rules = ctx.campaign_rules()
    if rules is not None:
        query = query.where(ledger.rule.in_(rules))
    return query


def _rolled(ctx: Context, query: Select[Any], through: date) -> Select[Any]:
    """Rolled-up days of the period up to `through`, with the same channel and campaign filters."""
    days = t.ledger_days.c
    query = query.where(days.day >= ctx.first, days.day <= through)
    if ctx.filters.channel is not None:
        query = query.where(days.channel == ctx.filters.channel)
    rules = ctx.campaign_rules()
    if rules is not None:
        query = query.where(days.rule.in_(rules))
    return query


def _grouped(ctx: Context, key: str, through: date | None) -> list[dict[str, Cell]]:
    """Sums per (key, balance): key is the time bucket or the rule; rolled-up days and ledger rows added up."""
    ledger, days = t.ledger.c, t.ledger_days.c
    live_key = (ctx.bucket_of(ledger.occurred_at) if key == "bucket" else func.coalesce(ledger.rule, "")).label(key)
    since = None if through is None else through + timedelta(days=1)
    parts: list[Select[Any]] = []
    if since is None or since <= ctx.last:  # days the rollup does not hold: from the ledger
        parts.append(_filtered(ctx, select(live_key, ledger.balance, *_sums(ledger.kind, ledger.amount)), since).group_by(live_key, ledger.balance))
    if through is not None:
        rolled_key = (ctx.bucket_of_day(days.day) if key == "bucket" else days.rule).label(key)
        parts.append(_rolled(ctx, select(rolled_key, days.balance, *_sums(days.kind, days.amount)), through).group_by(rolled_key, days.balance))
    totals: dict[tuple[Any, str], dict[str, int]] = {}
    for query in parts:
        for row in ctx.conn.execute(query).mappings():
            sums = totals.setdefault((row[key], row["balance"]), dict.fromkeys(NAMES, 0))
            for name in NAMES:
                sums[name] += int(row[name])
    return [{key: k, "balance": balance, **sums} for (k, balance), sums in sorted(totals.items())]


def flows(ctx: Context) -> Report:
    through = rolled_through(ctx)
    time_rows = tuple(_grouped(ctx, "bucket", through))
    rule_rows = tuple(_grouped(ctx, "rule", through))
    head = columns(("bucket", "Period", "期间"), ("balance", "Balance", "账户"))
    tables = (
        Table("by_period", "Flows by period", "按期间流水", head + AMOUNTS, time_rows),
        Table("by_rule", "Flows by rule", "按规则流水", columns(("rule", "Rule", "规则"), ("balance", "Balance", "账户")) + AMOUNTS, rule_rows),
    )
    notes = ("Rule '' holds what no rule made: expiry, reward redemptions, coupon-free spends, manual adjustments.",)
    return Report("flows", "Flows", "积分流水", ctx.applied(), tables, notes)

