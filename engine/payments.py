"""Paying an order with balances at the till (积分抵现, 储值消费): pure functions.

A scheme may let one points balance (`unit: count`) and one stored-value balance (`unit: money`)
pay orders (`order_payment`). A purchase names what each paid in `points_paid` and
`stored_value_paid`; a till asks beforehand how much each may pay (`quote`) and the service
reserves it with a hold. Both use `refusal`, so a hold is refused exactly when the purchase that
captures it would be.

`order` is the bill before balances pay, after coupons (a purchase's `order_amount`, or its
`amount` plus the worth of the points paid). Stored value is money already paid in, so a
purchase's `amount` includes what stored value paid and excludes what points paid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from perkflow.rules.models import Balance

from .program import Program
from .state import Lot, MemberState

_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class PaymentRefusal:
    code: str  # order_payment_limit, below_min_redemption, insufficient_balance, negative_amount
    message: str


@dataclass(frozen=True, slots=True)
class PaymentQuote:
    """How much of one order one paying balance may pay."""

    balance: str
    attribute: str  # points_paid or stored_value_paid
    available: int  # spendable at the instant, less what active holds reserve
    held: int  # reserved by active holds
    most: int  # units that may pay this order (0 when fewer than `min_redemption` could)
    worth: int  # what `most` is worth, in minor units, rounded down
    parts: tuple[tuple[str, int], ...]  # how `most` would be drawn from the parts now

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "balance": self.balance, "attribute": self.attribute, "available": self.available, "held": self.held,
            "most": self.most, "worth": self.worth,
        }
        if self.parts:
            out["parts"] = dict(self.parts)
        return out


def unit_value(config: Balance) -> Decimal:
    """What one unit is worth in minor units: the balance's `value`; a money balance without one
    is worth its face value."""
    if config.value is not None:
        return config.value
    return _ONE if config.unit == "money" else Decimal(0)


def worth(config: Balance, units: int) -> int:
    return int((units * unit_value(config)).to_integral_value(rounding=ROUND_FLOOR))


def most_allowed(config: Balance, order: int) -> int | None:
    """The most units the balance's `order_payment` lets pay an order (None: no limit but the
    member's balance). A balance with a value never pays more than the whole order."""
    payment = config.order_payment
    assert payment is not None
    value = unit_value(config)
    bounds = [payment.max_units] if payment.max_units is not None else []
    if payment.max_share is not None:
        bounds.append(int((payment.max_share * order / value).to_integral_value(rounding=ROUND_FLOOR)))
    if value > 0:
        bounds.append(int((order / value).to_integral_value(rounding=ROUND_FLOOR)))
    return min(bounds) if bounds else None


def refusal(config: Balance, balance: str, units: int, order: int, available: int) -> PaymentRefusal | None:
    """Why `units` of the balance may not pay an order of `order` when `available` can be spent,
    or None when they may."""
    if units < 0:
        return PaymentRefusal("negative_amount", f"a payment from {balance} cannot be negative")
    payment = config.order_payment
    assert payment is not None
    least = config.limits.min_redemption
    if least is not None and units < least:
        return PaymentRefusal("below_min_redemption", f"at least {least} {balance} are spent at once, not {units}")
    if payment.max_units is not None and units > payment.max_units:
        return PaymentRefusal("order_payment_limit", f"at most {payment.max_units} {balance} may pay one order, not {units}")
    if payment.max_share is not None and units * unit_value(config) > payment.max_share * order:
        most = most_allowed(config, order)
        share = format((payment.max_share * 100).normalize(), "f")
        return PaymentRefusal("order_payment_limit", f"{balance} may pay at most {share}% of an order of {order}: {most} {balance}, not {units}")
    if unit_value(config) > 0 and units * unit_value(config) > order:
        return PaymentRefusal("order_payment_limit", f"{balance} may pay at most the whole order of {order}, not {units}")
    if units > available:
        return PaymentRefusal("insufficient_balance", f"{balance} is {available}; the order wants {units}")
    return None


def spendable_lots(lots: Iterable[Lot], at: datetime) -> list[Lot]:
    """The lots that can be spent at `at`: active, and not expired (expiry may not be applied yet)."""
    return [
        lot for lot in lots
        if (lot.available_at is None or lot.available_at <= at) and (lot.expires_at is None or lot.expires_at > at)
    ]


def spendable(state: MemberState, balance: str, at: datetime) -> int:
    return sum(lot.amount for lot in spendable_lots(state.lots.get(balance, ()), at)) - state.debts.get(balance, 0)


def split(config: Balance, lots: Iterable[Lot], amount: int) -> list[tuple[str | None, int]]:
    """How a spend of `amount` is drawn from the parts of a balance (principal / bonus), given the
    lots that can be spent: in the declared order, or in the declared ratio (all but the first part
    get `floor(amount × share)`, the first the rest), a part that runs out leaving the rest to the
    others in declared order. A balance without parts: one share."""
    if config.parts is None or config.spending is None:
        return [(None, amount)]
    holdings = dict.fromkeys(config.parts, 0)
    for lot in lots:
        if lot.part in holdings:
            holdings[lot.part] += lot.amount
    if config.spending.order is not None:
        plan: list[tuple[str | None, int]] = []
        need = amount
        for p in config.spending.order:
            n = min(need, holdings[p])
            if n:
                plan.append((p, n))
            need -= n
        return plan + ([(config.spending.order[-1], need)] if need > 0 else [])
    ratio = config.spending.ratio or {}
    total = sum(ratio.values())
    shares = {p: amount * ratio[p] // total for p in config.parts[1:]}
    shares[config.parts[0]] = amount - sum(shares.values())
    short = 0
    for p in config.parts:
        if shares[p] > holdings[p]:
            short += shares[p] - holdings[p]
            shares[p] = holdings[p]
    for p in config.parts:
        extra = min(short, holdings[p] - shares[p])
        shares[p] += extra
        short -= extra
    if short:
        shares[config.parts[-1]] += short
    return [(p, shares[p]) for p in config.parts if shares[p]]


def quote(program: Program, state: MemberState, at: datetime, order: int, held: Mapping[str, int]) -> list[PaymentQuote]:
    """How much of an order of `order` minor units each paying balance may pay at `at`, with
    `held` (balance -> units) reserved by active holds. Each balance is quoted on its own; paid
    together, points' worth and stored value may not exceed the order (`joint_refusal`)."""
    out = []
    for attribute, balance in sorted(program.payers.items()):
        config = program.balances[balance]
        reserved = held.get(balance, 0)
        available = max(spendable(state, balance, at) - reserved, 0)
        limit = most_allowed(config, order)
        most = available if limit is None else min(available, limit)
        least = config.limits.min_redemption
        if least is not None and most < least:
            most = 0
        lots = spendable_lots(state.lots.get(balance, ()), at)
        parts = tuple((p, n) for p, n in split(config, lots, most) if p is not None) if most else ()
        out.append(PaymentQuote(balance, attribute, available, reserved, most, worth(config, most), parts))
    return out


def joint_refusal(program: Program, amounts: Mapping[str, int], order: int) -> PaymentRefusal | None:
    """Points and stored value paying one order together may not be worth more than the order."""
    total = sum(worth(program.balances[b], n) for b, n in amounts.items())
    if total > order:
        return PaymentRefusal("order_payment_limit", f"the payments are worth {total}, more than the order of {order}")
    return None
