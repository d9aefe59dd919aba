"""Which coupons apply to an order: checked, ordered and priced in one place.

`validate_coupons` is pure. For each coupon listed it says whether it applies, in what order and
with what discount, or why it does not. The engine redeems the coupons of a purchase (or of a
`coupon_redemption` event) only when every one applies, with exactly these discounts; the API's
validation endpoint shows the same answer before checkout. The rule is written once, here.

The stacking rule (docs/semantics.md, "Coupon stacking"): each coupon must first be usable on its
own (held, unused, valid at the time, minimum spend met by the order before coupons). The usable
ones are then taken one by one, the one that takes most off the whole order first (ties: apply
order, then coupon id), each only if it is compatible with those already taken
(`stacking.with_others`, `not_with_kinds` both ways, `max_per_order`). The coupons taken apply from
the lowest `apply_order` up; ties go amount off, then free items, then percent off (so by default
a percentage never applies to money already taken off), then policy id, then coupon id. A
percent off is a share of what earlier coupons left. Nothing depends on the order the coupons
were listed in, except which of two listings of the same coupon is called `coupon_twice`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from perkflow.rules.models import CouponPolicy

from .program import Program
from .state import Coupon, MemberState

_RANK = {"amount_off": 0, "free_item": 1, "percent_off": 2}

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
"""31 characters, none of which can be read as another: no 0/O, 1/I/L."""


def handed_out_code(coupon_id: str, prefix: str, length: int) -> str:
    """The code a rule hands out with a coupon: `prefix` and `length` characters of CODE_ALPHABET
    drawn from SHA-256 of the coupon's id (bytes below 248 taken modulo 31, as for random codes),
    so a replay gives the same code. It names the member's own coupon and is never claimable."""
    chars: list[str] = []
    counter = 0
    while len(chars) < length:
        digest = hashlib.sha256(f"perkflow-coupon-code:{counter}:{coupon_id}".encode()).digest()
        chars += [CODE_ALPHABET[b % 31] for b in digest if b < 248]
        counter += 1
    return prefix + "".join(chars[:length])


@dataclass(frozen=True, slots=True)
class CouponCheck:
    coupon: str
    index: int  # its position in the list given
    policy: str | None = None
    applies: bool = False
    order: int | None = None  # 1 for the coupon applied first
    discount: int = 0  # minor units taken off by this coupon
    code: str | None = None  # why it does not apply: unknown_coupon, coupon_twice, coupon_not_usable, ...
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"coupon": self.coupon, "policy": self.policy, "applies": self.applies}
        if self.applies:
            out |= {"order": self.order, "discount": self.discount}
        else:
            out |= {"code": self.code, "message": self.message}
        return out


def _usable(coupon: Coupon, at: datetime) -> str | None:
    if coupon.usable_at(at):
        return None
    state = "already used" if coupon.redeemed_at else "void" if coupon.voided else "not valid at this time"
    return f"coupon '{coupon.id}' is {state}"


def _apply_key(coupon: Coupon, policy: CouponPolicy) -> tuple[int, int, str, str]:
    return (policy.stacking.apply_order, _RANK[policy.benefit.kind], coupon.policy, coupon.id)


def _conflict(coupon: Coupon, policy: CouponPolicy, taken: list[tuple[int, Coupon, CouponPolicy]]) -> tuple[str, str] | None:
    """Why a coupon cannot join those already taken (code, words), or None."""
    if not taken:
        return None
    if not policy.stacking.with_others:
        return "coupon_not_stackable", f"coupon '{coupon.id}' cannot be used with another coupon, and '{taken[0][1].id}' applies"
    alone = next((c for _, c, p in taken if not p.stacking.with_others), None)
    if alone is not None:
        return "coupon_not_stackable", f"coupon '{coupon.id}': coupon '{alone.id}' cannot be used with another coupon"
    kind = policy.benefit.kind
    for _, other, other_policy in taken:
        other_kind = other_policy.benefit.kind
        if other_kind in policy.stacking.not_with_kinds or kind in other_policy.stacking.not_with_kinds:
            return (
                "coupon_kind_excluded",
                f"coupon '{coupon.id}' ({kind}) may not share an order with coupon '{other.id}' ({other_kind})",
            )
    if sum(1 for _, c, _ in taken if c.policy == coupon.policy) >= policy.stacking.max_per_order:
        return "coupon_not_stackable", f"coupon '{coupon.id}': at most {policy.stacking.max_per_order} '{coupon.policy}' coupon(s) per order"
    return None


def _discount(policy: CouponPolicy, left: int) -> int:
    benefit = policy.benefit
    if benefit.kind == "amount_off":
        return min(left, benefit.amount)
    if benefit.kind == "percent_off":
        discount = int((Decimal(left) * benefit.percent / 100).to_integral_value(rounding=ROUND_FLOOR))
        return discount if benefit.max_off is None else min(discount, benefit.max_off)
    return benefit.value


def validate_coupons(
    program: Program, state: MemberState, order_amount: int, coupon_ids: Sequence[str], at: datetime
) -> list[CouponCheck]:
    """One check per coupon listed, in the order given; what each says does not depend on that order."""
    held = {c.id: c for c in state.coupons}
    checks: list[CouponCheck] = []
    usable: list[tuple[int, Coupon, CouponPolicy]] = []
    seen: set[str] = set()
    for i, coupon_id in enumerate(coupon_ids):
        coupon = held.get(coupon_id)
        policy = program.scheme.coupons.get(coupon.policy) if coupon is not None else None
        refusal: tuple[str, str] | None = None
        if coupon is None:
            refusal = ("unknown_coupon", f"the member holds no coupon '{coupon_id}'")
        elif coupon_id in seen:
            refusal = ("coupon_twice", f"coupon '{coupon_id}' is listed twice")
        elif (why := _usable(coupon, at)) is not None:
            refusal = ("coupon_not_usable", why)
        elif policy is None:
            refusal = (
                "coupon_not_usable",
                f"coupon '{coupon_id}' is of policy '{coupon.policy}', which the scheme in force no longer has",
            )
        elif order_amount < policy.min_spend:
            refusal = (
                "coupon_min_spend",
                f"coupon '{coupon_id}' needs an order of at least {policy.min_spend}, this one is {order_amount}",
            )
        seen.add(coupon_id)
        checks.append(CouponCheck(coupon_id, i, coupon.policy if coupon else None))
        if refusal is not None:
            checks[i] = replace(checks[i], code=refusal[0], message=refusal[1])
            continue
        assert coupon is not None and policy is not None
        usable.append((i, coupon, policy))
    # Which stack: the biggest saving on the whole order first, so the answer is the same however
    # the coupons were listed.
    usable.sort(key=lambda t: (-_discount(t[2], order_amount), _apply_key(t[1], t[2])))
    taken: list[tuple[int, Coupon, CouponPolicy]] = []
    for i, coupon, policy in usable:
        conflict = _conflict(coupon, policy, taken)
        if conflict is None:
            taken.append((i, coupon, policy))
        else:
            checks[i] = replace(checks[i], code=conflict[0], message=conflict[1])
    left = order_amount
    for order, (i, coupon, policy) in enumerate(sorted(taken, key=lambda t: _apply_key(t[1], t[2])), 1):
        discount = _discount(policy, left)
        left -= min(left, discount)
        checks[i] = CouponCheck(coupon.id, i, coupon.policy, True, order, discount)
    return checks
