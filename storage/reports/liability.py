"""Liability (积分负债, 储值余额): what members hold now and what it is worth, per balance and part,
and what will expire within 30, 60 and 90 days."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import and_, case, func, or_, select

from perkflow.storage import tables as t

from .context import Context, label
from .result import Cell, Report, Table, columns

HORIZONS = (30, 60, 90)

COLUMNS = columns(
    ("balance", "Balance", "账户"),
    ("part", "Part", "组成"),
    ("members", "Members holding", "持有会员数"),
    ("outstanding", "Outstanding units", "未使用余额"),
    ("debt", "Debt", "欠款"),
    ("value", "Value (minor units)", "价值(分)"),
    ("expiring_30", "Expiring in 30 days", "30天内到期"),
    ("expiring_60", "Expiring in 60 days", "60天内到期"),
    ("expiring_90", "Expiring in 90 days", "90天内到期"),
)


def liability(ctx: Context) -> Report:
    lots, b = t.lots.c, t.member_balances.c
    as_of = ctx.as_of
    parted = sorted(name for name, balance in ctx.scheme.balances.items() if balance.parts)
    # Members' totals (lots less debt, kept by the event path) answer for every balance in one scan
    # of member_balances; lots the scheduler has not expired yet at the as-of instant (found through
    # the expiry index, normally none) are taken off, member by member, since they are not held.
    overdue = (
        select(lots.member_id, lots.balance, func.sum(lots.amount).label("amount"))
        .where(lots.expires_at <= as_of, lots.amount > 0)
        .group_by(lots.member_id, lots.balance)
        .subquery()
    )
    o = overdue.c
    held_units = b.total + b.debt - func.coalesce(o.amount, 0)
    found: dict[tuple[str, str | None], list[int]] = {}
    debts: dict[str, int] = {}
    holders: dict[str, int] = {}
    for balance, units, members, debt in ctx.conn.execute(
        select(b.balance, func.sum(held_units), func.sum(case((held_units > 0, 1), else_=0)), func.sum(b.debt))
        .select_from(t.member_balances.outerjoin(overdue, and_(o.member_id == b.member_id, o.balance == b.balance)))
        .where(ctx.members_in_scope(b.member_id))
        .group_by(b.balance)
    ):
        holders[balance], debts[balance] = int(members or 0), int(debt or 0)
        if balance not in parted:
            found[(balance, None)] = [int(units or 0), int(members or 0), 0, 0, 0]
    if parted:
        # a part's units and holders need its lots (member_balances has no parts)
        live = or_(lots.expires_at.is_(None), lots.expires_at > as_of)
        for balance, part, units, members in ctx.conn.execute(
            select(lots.balance, lots.part, func.sum(case((live, lots.amount), else_=0)), func.count(func.distinct(case((live, lots.member_id)))))
            .where(lots.balance.in_(parted), lots.amount > 0, ctx.members_in_scope(lots.member_id))
            .group_by(lots.balance, lots.part)
        ):
            found[(balance, part)] = [int(units or 0), int(members or 0), 0, 0, 0]
    # what expires soon: a range of the expiry index, not a scan of every lot
    soon = [func.sum(case((lots.expires_at <= as_of + timedelta(days=d), lots.amount), else_=0)) for d in HORIZONS]
    for balance, part, *amounts in ctx.conn.execute(
        select(lots.balance, lots.part, *soon)
        .where(lots.expires_at > as_of, lots.expires_at <= as_of + timedelta(days=HORIZONS[-1]), lots.amount > 0, ctx.members_in_scope(lots.member_id))
        .group_by(lots.balance, lots.part)
    ):
        key = (balance, part if balance in parted else None)
        entry = found.setdefault(key, [0, 0, 0, 0, 0])
        entry[2:] = [a + int(x or 0) for a, x in zip(entry[2:], amounts, strict=True)]
    rows: list[dict[str, Cell]] = []
    for name, balance in ctx.scheme.balances.items():
        per_unit = Decimal(1) if balance.unit == "money" else balance.value

        def worth(units: int, per_unit: Decimal | None = per_unit) -> int | None:
            return None if per_unit is None else int((units * per_unit).to_integral_value(ROUND_HALF_EVEN))

        parts: list[str | None] = list(balance.parts) if balance.parts else [None]
        totals = [0] * 5
        for part in parts:
            units, members, *soon = found.get((name, part), [0] * 5)
            totals = [a + x for a, x in zip(totals, [units, 0, *soon], strict=True)]
            if balance.parts:
                rows.append(_row(name, part, members, units, 0, worth(units), soon))
        if balance.parts:
            # lots written without a part (before the balance had parts) count in the total only
            units, _, *soon = found.get((name, None), [0] * 5)
            totals = [a + x for a, x in zip(totals, [units, 0, *soon], strict=True)]
        debt = int(debts.get(name) or 0)
        outstanding = totals[0] - debt
        rows.append(_row(name, None, int(holders.get(name) or 0), outstanding, debt, worth(outstanding), totals[2:]))
    table = Table("liability", "Outstanding balances", "余额负债", COLUMNS, tuple(rows))
    notes = (
        "Outstanding: unexpired lots at the as-of instant, pending lots included, less debts; "
        "part rows (principal, bonus) show lots only. Value: money balances at face value, "
        "other balances at the scheme's value per unit, rounded half to even; none when no value is declared. "
        "Expiring in N days: lots whose expiry falls after the as-of instant and at most N×24 hours later.",
    )
    titles = {n: label(b.label, "en") or n for n, b in ctx.scheme.balances.items()}
    return Report("liability", "Liability", "积分与储值负债", ctx.applied(balances=titles), (table,), notes)


def _row(balance: str, part: str | None, members: int, units: int, debt: int, value: int | None, soon: list[int]) -> dict[str, Cell]:
    return {
        "balance": balance, "part": part, "members": members, "outstanding": units, "debt": debt, "value": value,
        **{f"expiring_{d}": n for d, n in zip(HORIZONS, soon, strict=True)},
    }
