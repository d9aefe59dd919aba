"""The heart of Perkflow: `evaluate(program, member_state, event) -> Decision`.

Pure: no clock, no I/O. The same inputs give an equal decision. The steps of an event, in order
(docs/semantics.md states them for operators):

1. checks that may refuse the event (a late event, a refund of an unknown purchase, a coupon that
   cannot be used, a reward the member cannot afford); a refused event changes nothing;
2. counters move with the event (rules see counters that include it);
3. built-in effects: a refund takes back what its purchase earned, in proportion to the amount
   refunded; coupons on a purchase, or the coupon of a coupon_redemption, are redeemed (engine/coupons.py);
   a reward redemption spends its cost;
4. rules for the event type, from the highest priority down, each fired or skipped with a reason;
   expressions read the member as the event found it (after step 2), so rule order never changes
   what a condition sees;
5. the tier is re-evaluated; an upgrade applies from the next event, so a purchase earns at the
   tier the member held before it.

Time-driven effects (expiry, tier reviews) are events of their own, produced by `due_events`.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from functools import lru_cache
from operator import attrgetter, itemgetter
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from perkflow.rules.expr import EvalError

from ._frozen import quick_init
from .calendar import (
    EPOCH_ORDINAL,
    add_duration,
    add_duration_to_day,
    birthday_on,
    local_midnight,
    period_end_exclusive,
    period_key,
    subtract_duration,
)
from .coupons import handed_out_code, validate_coupons
from .events import Event
from .opening import OpeningRefused, read_opening
from .payments import joint_refusal, refusal, split, worth
from .program import CompiledAction, CompiledCounter, CompiledGoal, CompiledRule, Program
from .state import (
    UNTIL_EVENT,
    CounterState,
    Coupon,
    Earning,
    GoalState,
    Lot,
    MemberState,
    Referral,
    TierOverride,
)

_FAR = datetime.max.replace(tzinfo=UTC)
_ROUNDING = {"floor": ROUND_FLOOR, "ceil": ROUND_CEILING, "half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN}
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_AMOUNT, _AVAILABLE_AT, _KIND = attrgetter("amount"), attrgetter("available_at"), attrgetter("kind")
_EXPIRES_AT = attrgetter("expires_at")
_DAY, _VALUE = itemgetter(0), itemgetter(1)
_NOTHING_COUNTED = CounterState()  # immutable: one instance serves every counter not yet moved
_NO_PROGRESS = GoalState()


@quick_init
@dataclass(frozen=True, slots=True)
class Effect:
    """One thing that happened. Balance effects carry the signed change of the balance, so a
    balance always equals the sum of the `amount`s of its effects."""

    kind: str  # earn, spend, expire, clawback, coupon_issued, coupon_redeemed, reward_granted, tier_changed, tagged, untagged, notify
    rule: str | None = None
    balance: str | None = None
    part: str | None = None
    amount: int = 0
    lots: tuple[tuple[str, int], ...] = ()  # (lot id, units added or taken)
    debt: int = 0  # debt created (spend, clawback) or repaid (earn)
    expires_at: datetime | None = None
    available_at: datetime | None = None
    coupon: str | None = None
    policy: str | None = None
    discount: int = 0
    valid_until: datetime | None = None
    reward: str | None = None
    tier: str | None = None
    previous_tier: str | None = None
    reason: str | None = None
    tag: str | None = None
    template: str | None = None
    channel: str | None = None
    variables: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    of_event: str | None = None
    code: str | None = None  # coupon_issued: the coupon's code, if it has one
    referrer: str | None = None  # referred, referral_qualified: the member who invited this one

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:  # type: ignore[attr-defined]
            value = getattr(self, name)
            if value is None or value == () or value == _EMPTY or (value == 0 and name in ("debt", "discount")):
                continue
            if name == "amount" and self.balance is None:
                continue
            if isinstance(value, datetime):
                value = value.isoformat()
            elif name == "lots":
                value = [list(x) for x in value]
            elif name == "variables":
                value = dict(value)
            out[name] = value
        return out


@quick_init
@dataclass(frozen=True, slots=True)
class RuleTrace:
    rule: str
    outcome: str  # fired or skipped
    reason: str = ""  # why it was skipped: when_false, cap_reached, budget_exhausted, ...
    read: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)  # the values its condition read
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "outcome": self.outcome}
        if self.reason:
            out["reason"] = self.reason
        if self.read:
            out["read"] = {k: _jsonable(v) for k, v in self.read.items()}
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str
    message: str
    pointer: str = ""


@quick_init
@dataclass(frozen=True, slots=True)
class Decision:
    event_id: str
    event_type: str
    member_id: str
    version: str
    effects: tuple[Effect, ...]
    trace: tuple[RuleTrace, ...]
    state: MemberState  # the member after the event (unchanged when rejected)
    budget_uses: Mapping[str, int] = field(default_factory=lambda: _EMPTY)  # budget key -> units used: coupon:<id>, reward:<id>, campaign:<id>
    rejection: Rejection | None = None
    budget_limits: Mapping[str, int] = field(default_factory=lambda: _EMPTY)  # budget key -> its limit, for rows made on first use

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "member_id": self.member_id,
            "version": self.version,
            "effects": [e.to_dict() for e in self.effects],
            "trace": [t.to_dict() for t in self.trace],
        }
        if self.budget_uses:
            out["budget_uses"] = dict(self.budget_uses)
        if self.rejection is not None:
            out["rejection"] = {"code": self.rejection.code, "message": self.rejection.message, "pointer": self.rejection.pointer}
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _round(value: Any, rounding: str) -> int:
    kind = type(value)
    if kind is int:
        return value  # type: ignore[no-any-return]
    if kind is Decimal:
        return int(value.to_integral_value(rounding=_ROUNDING[rounding]))
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return int(value.to_integral_value(rounding=_ROUNDING[rounding]))
    raise EvalError(f"an amount must be a number, got {value!r}")


def _oldest_first(lot: Lot) -> tuple[Any, ...]:
    return (lot.earned_at, lot.id)


def _soonest_expiry(lot: Lot) -> tuple[Any, ...]:
    return (lot.expires_at is None, lot.expires_at or _FAR, lot.earned_at, lot.id)


def lot_order(program: Program, balance: str) -> Callable[[Lot], tuple[Any, ...]]:
    if program.balances[balance].consumption == "oldest_first":
        return _oldest_first
    return _soonest_expiry


def _sorts_before(lot: Lot, last: Lot, consumption: str) -> bool:
    """Whether `lot` goes before `last` in the balance's consumption order (`lot_order`). A new lot
    usually expires later than, or was earned after, the last one held: that is decided from the
    one field that differs, without building both sort keys."""
    if consumption == "oldest_first":
        if last.earned_at < lot.earned_at:
            return False
        return _oldest_first(last) > _oldest_first(lot)
    if last.expires_at is not None and lot.expires_at is not None and last.expires_at < lot.expires_at:
        return False
    return _soonest_expiry(last) > _soonest_expiry(lot)


# Every lot of a balance earned on one local day expires at the same instant: computed once.
@lru_cache(maxsize=4096)
def _rolling_expiry(day: date, after: str, tz: ZoneInfo) -> datetime:
    return local_midnight(add_duration_to_day(day, after) + timedelta(days=1), tz)


@lru_cache(maxsize=4096)
def _period_expiry(day: date, period: str, periods_after: int, tz: ZoneInfo) -> datetime:
    return local_midnight(period_end_exclusive(day, period, periods_after), tz)


def _activates_at(at: datetime, duration: str | None, tz: ZoneInfo) -> datetime:
    """When a lot earned at `at` activates by itself; a lot pending only until an event never does."""
    return add_duration(at, duration, tz) if duration is not None else UNTIL_EVENT


class _Held(tuple):  # type: ignore[type-arg]
    """A balance's lots as `earn` leaves them, carrying the sum of their amounts and whether any
    has an activation time, so that reading the balance does not walk every lot held: the running
    total of the balance, kept in the state. It is the tuple of those lots (equal to it, hashed and
    shown alike, and pickled as a plain tuple); the sums are fixed when it is made, from the lots
    before (`_sums`) and the one lot added."""

    total: int
    pending: bool

    def __reduce__(self) -> tuple[Any, ...]:
        return (tuple, (tuple(self),))


def _hold(lots: tuple[Lot, ...], total: int, pending: bool) -> _Held:
    # Not a __new__: a Python-level constructor would cost more than the sums it saves.
    held = _Held(lots)
    held.total, held.pending = total, pending
    return held


def _sums(lots: tuple[Lot, ...] | list[Lot]) -> tuple[int, bool]:
    """(the sum of the lots' amounts, whether any has an activation time)."""
    if type(lots) is _Held:
        return lots.total, lots.pending
    return sum(map(_AMOUNT, lots)), any(map(_AVAILABLE_AT, lots))


class _Skip(Exception):
    """A rule cannot fire; carries the reason for the trace."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason, self.detail = reason, detail


class _Refuse(Exception):
    def __init__(self, code: str, message: str, pointer: str = "") -> None:
        self.rejection = Rejection(code, message, pointer)


@dataclass(slots=True)
class _Work:
    """The member while one event is evaluated: copied on first write, frozen again at the end."""

    program: Program
    state: MemberState
    event: Event
    budgets: Mapping[str, int]
    tracing: bool
    at: datetime = field(init=False)
    day: date = field(init=False)
    lots: dict[str, tuple[Lot, ...] | list[Lot]] = field(init=False)
    owned: set[str] = field(default_factory=set)
    debts: dict[str, int] | None = None
    coupons: list[Coupon] | None = None
    caps: dict[str, tuple[str, int]] | None = None
    tags: set[str] | None = None
    rewards: dict[str, int] | None = None
    earnings: dict[str, Earning] | None = None
    goals: dict[str, GoalState] | None = None
    referral: Referral | None = field(init=False)
    tier: str | None = None
    tier_since: datetime | None = None
    tier_review_at: datetime | None = None
    grace_until: datetime | None = None
    tier_override: TierOverride | None = None
    counters: Mapping[str, CounterState] = field(init=False)
    effects: list[Effect] = field(default_factory=list)
    trace: list[RuleTrace] = field(default_factory=list)
    budget_uses: dict[str, int] = field(default_factory=dict)
    budget_limits: dict[str, int] = field(default_factory=dict)
    earned: list[tuple[str, str | None, int]] = field(default_factory=list)
    new_lots: list[str] = field(default_factory=list)
    seq: int = 0

    def __post_init__(self) -> None:
        self.at = self.event.occurred_at
        self.day = self.at.astimezone(self.program.tz).date()
        self.lots = dict(self.state.lots)
        self.counters = self.state.counters
        self.referral = self.state.referral
        s = self.state
        self.tier, self.tier_since, self.tier_review_at, self.grace_until = s.tier, s.tier_since, s.tier_review_at, s.grace_until
        self.tier_override = s.tier_override

    # --- lots --------------------------------------------------------------------------------

    def _own(self, balance: str) -> list[Lot]:
        lots = self.lots.get(balance, ())
        if balance not in self.owned or type(lots) is not list:  # the state's, or a tuple earn() made
            lots = self.lots[balance] = list(lots)
            self.owned.add(balance)
        return lots

    def _debts(self) -> dict[str, int]:
        if self.debts is None:
            self.debts = dict(self.state.debts)
        return self.debts

    def available(self, balance: str) -> int:
        at = self.at
        lots = self.lots.get(balance, ())
        if type(lots) is _Held and not lots.pending:
            total = lots.total
        # The whole sum, in C, unless some lot has an activation time (datetimes are never false).
        elif not any(map(_AVAILABLE_AT, lots)):
            total = sum(map(_AMOUNT, lots))
        else:
            total = 0
            for lot in lots:
                if lot.available_at is None or lot.available_at <= at:
                    total += lot.amount
        debts = self.debts if self.debts is not None else self.state.debts
        return total - debts.get(balance, 0)

    def next_id(self, prefix: str = "") -> str:
        self.seq += 1
        return f"{self.event.id}#{prefix}{self.seq}"

    def earn(self, balance: str, part: str | None, amount: int, rule: str | None, kind: str = "earn") -> None:
        if amount <= 0:
            return
        program = self.program
        config = program.balances[balance]
        debts = self._debts() if (self.debts or self.state.debts).get(balance) else None
        repaid = min(debts.get(balance, 0), amount) if debts is not None else 0
        if repaid and debts is not None:
            debts[balance] -= repaid
        units = amount - repaid
        at = self.at
        expiry_kind = config.expiry.kind
        expires_at = None if expiry_kind == "never" else self._expiry(expiry_kind, balance)
        available_at = _activates_at(at, config.pending.duration, program.tz) if config.pending else None
        lots_changed: tuple[tuple[str, int], ...] = ()
        if units > 0:
            self.seq += 1
            event_id = self.event.id
            lot = Lot(f"{event_id}#{self.seq}", balance, units, at, expires_at, part, available_at, event_id, rule)
            lots = self.lots.get(balance, ())
            if lots and _sorts_before(lot, lots[-1], config.consumption):
                bisect.insort(self._own(balance), lot, key=lot_order(program, balance))
            elif balance in self.owned and type(lots) is list:
                lots.append(lot)
            else:
                # A new lot usually sorts last (events come in time order): one copy of the
                # state's lots with the new one at the end, which freeze() then keeps as it is.
                total, pending = _sums(lots)
                self.lots[balance] = _hold(tuple(lots) + (lot,), total + units, pending or available_at is not None)
                self.owned.add(balance)
            lots_changed = ((lot.id, units),)
            self.new_lots.append(lot.id)
        self.earned.append((balance, part, amount))
        self.effects.append(
            Effect(
                kind, rule, balance, part, amount, lots_changed, repaid,
                expires_at if lots_changed else None, available_at if lots_changed else None,
            )
        )

    def _expiry(self, kind: str, balance: str) -> datetime | None:
        if kind == "never":
            return None
        expiry = self.program.balances[balance].expiry
        if kind == "rolling":
            assert expiry.after is not None
            return _rolling_expiry(self.day, expiry.after, self.program.tz)
        assert expiry.period is not None
        return _period_expiry(self.day, expiry.period, expiry.periods_after, self.program.tz)

    def take(self, balance: str, amount: int, part: str | None, *, pending_too: bool = False, first: frozenset[str] = frozenset()) -> tuple[list[tuple[str, int]], int]:
        """Take up to `amount` from the lots (the `first` ones before the rest); returns what was
        taken per lot and what could not be found."""
        lots = self._own(balance)
        need = amount
        taken: list[tuple[str, int]] = []
        at = self.at
        order = [lot for lot in lots if lot.id in first] + [lot for lot in lots if lot.id not in first] if first else lots
        left: dict[str, Lot] = {}
        for lot in order:
            if need <= 0:
                break
            if part is not None and lot.part != part:
                continue
            if not pending_too and lot.available_at is not None and lot.available_at > at:
                continue
            n = min(need, lot.amount)
            need -= n
            taken.append((lot.id, n))
            left[lot.id] = Lot(lot.id, lot.balance, lot.amount - n, lot.earned_at, lot.expires_at, lot.part, lot.available_at, lot.source, lot.rule)
        if left:
            lots[:] = [left.get(lot.id, lot) for lot in lots if left.get(lot.id, lot).amount > 0]
        return taken, need

    def spend_plan(self, balance: str, amount: int) -> list[tuple[str | None, int]]:
        """How a spend is split between the parts of a balance (principal / bonus)."""
        at = self.at
        lots = [lot for lot in self.lots.get(balance, ()) if lot.available_at is None or lot.available_at <= at]
        return split(self.program.balances[balance], lots, amount)

    def restore(self, balance: str, part: str | None, amount: int, of_event: str) -> None:
        """Give back units a refunded purchase paid with: a new active lot of the part they were
        paid from, expiring as a lot earned now would; a debt of the balance is repaid first."""
        debts = self._debts() if (self.debts or self.state.debts).get(balance) else None
        repaid = min(debts.get(balance, 0), amount) if debts is not None else 0
        if repaid and debts is not None:
            debts[balance] -= repaid
        units = amount - repaid
        expires_at = self._expiry(self.program.balances[balance].expiry.kind, balance)
        lots: tuple[tuple[str, int], ...] = ()
        if units > 0:
            lot = Lot(self.next_id("r"), balance, units, self.at, expires_at, part, None, self.event.id, None)
            bisect.insort(self._own(balance), lot, key=lot_order(self.program, balance))
            lots = ((lot.id, units),)
        self.effects.append(
            Effect("restore", None, balance, part, amount, lots, repaid, expires_at if lots else None, of_event=of_event)
        )

    def spend(self, balance: str, amount: int, rule: str | None, *, reward: str | None = None, kind: str = "spend") -> None:
        """Spend from a balance the caller has checked is sufficient (or may go negative)."""
        config = self.program.balances[balance]
        for part, share in self.spend_plan(balance, amount):
            taken, short = self.take(balance, share, part)
            if short and config.allow_negative:
                debts = self._debts()
                debts[balance] = debts.get(balance, 0) + short
            elif short:
                raise AssertionError("spend beyond the balance; callers check first")
            self.effects.append(
                Effect(kind, rule, balance, part, -share, tuple((i, -n) for i, n in taken), short, reward=reward)
            )

    # --- coupons, caps, tags ----------------------------------------------------------------

    def _coupons(self) -> list[Coupon]:
        if self.coupons is None:
            self.coupons = list(self.state.coupons)
        return self.coupons

    def remaining(self, key: str, limit: int) -> int:
        return limit - self.budgets.get(key, 0) - self.budget_uses.get(key, 0)

    def use_budget(self, key: str, units: int, limit: int | None = None) -> None:
        self.budget_uses[key] = self.budget_uses.get(key, 0) + units
        if limit is not None:
            self.budget_limits[key] = limit

    def coupon_budgets(self, policy_id: str, count: int) -> list[tuple[str, int, int]]:
        """The budgets `count` coupons of a policy use: (key, units, limit). The count budget's key
        names its period (coupon:<id>@2026-11-23) and store (|<store>) when it has them."""
        policy = self.program.scheme.coupons[policy_id]
        out = []
        if policy.budget is not None:
            key = f"coupon:{policy_id}"
            if policy.budget_per is not None:
                key += "@" + period_key(self.day, policy.budget_per)
            if policy.budget_by_store:
                key += "|" + self.event.store
            out.append((key, count, policy.budget))
        if policy.money_budget is not None:
            out.append((f"coupon_value:{policy_id}", count * policy.face_value(), policy.money_budget))
        return out

    def coupon_budget_short(self, policy_id: str, count: int) -> str | None:
        """Why `count` more coupons of the policy would overspend a budget, or None."""
        for key, units, limit in self.coupon_budgets(policy_id, count):
            if units > self.remaining(key, limit):
                left = max(self.remaining(key, limit), 0)
                return f"coupon '{policy_id}' budget {key} has {left} of {limit} left, {units} needed"
        return None

    def issue_coupon(self, policy_id: str, count: int, rule: str | None, *, code: bool | str = False) -> None:
        """Issue `count` coupons of the policy. `code`: True hands each out with a code in the
        policy's format (`handed_out_code`), a string is the code a claim used."""
        policy = self.program.scheme.coupons[policy_id]
        tz = self.program.tz
        validity = policy.validity
        if validity.days is not None:
            valid_from = self.at
            valid_until = local_midnight(self.day + timedelta(days=validity.days), tz)
        else:
            assert validity.start is not None and validity.end is not None
            valid_from = local_midnight(validity.start, tz)
            valid_until = local_midnight(validity.end + timedelta(days=1), tz)
        for _ in range(count):
            coupon_id = self.next_id("c")
            given = code if isinstance(code, str) else None
            if code is True and policy.codes is not None:
                given = handed_out_code(coupon_id, policy.codes.prefix, policy.codes.length)
            coupon = Coupon(coupon_id, policy_id, self.at, valid_from, valid_until, self.event.id, rule, code=given)
            self._coupons().append(coupon)
            self.effects.append(Effect("coupon_issued", rule, coupon=coupon.id, policy=policy_id, valid_until=valid_until, code=given))
        for key, units, limit in self.coupon_budgets(policy_id, count):
            self.use_budget(key, units, limit)

    def held(self, policy_id: str) -> int:
        coupons = self.coupons if self.coupons is not None else self.state.coupons
        return sum(1 for c in coupons if c.policy == policy_id and not c.voided)

    def earned_in_period(self, balance: str, per: str) -> int:
        """Units earned in the balance in the current period, for its earning cap."""
        caps = self.caps if self.caps is not None else self.state.caps
        period, units = caps.get(f"earn:{balance}|{per}", ("", 0))
        return units if period == period_key(self.day, per) else 0

    def count_earning(self, balance: str, amount: int) -> None:
        cap = self.program.limited[balance].earn_cap
        if cap is None or amount <= 0:
            return
        if self.caps is None:
            self.caps = dict(self.state.caps)
        self.caps[f"earn:{balance}|{cap.per}"] = (period_key(self.day, cap.per), self.earned_in_period(balance, cap.per) + amount)

    def holding(self, balance: str) -> int:
        """The balance, pending units included, less its debt."""
        debts = self.debts if self.debts is not None else self.state.debts
        return _sums(self.lots.get(balance, ()))[0] - debts.get(balance, 0)

    def cap_key(self, rule: str, per: str) -> tuple[str, str]:
        return f"{rule}|{per}", period_key(self.day, per)

    def set_tag(self, tag: str, on: bool, rule: str | None) -> None:
        if self.tags is None:
            self.tags = set(self.state.tags)
        if on and tag not in self.tags:
            self.tags.add(tag)
            self.effects.append(Effect("tagged", rule, tag=tag))
        elif not on and tag in self.tags:
            self.tags.discard(tag)
            self.effects.append(Effect("untagged", rule, tag=tag))

    def change_tier(self, tier: str, reason: str, rule: str | None) -> None:
        held = self.held_by_override(tier)
        if held != tier:
            if self.tracing:
                self.trace.append(RuleTrace(rule or "tier", "skipped", "tier_override", detail=f"{reason} to {tier}: {self.override_text()}"))
            tier = held
        if tier == self.tier:
            return
        previous = self.tier
        self.tier, self.tier_since, self.grace_until = tier, self.at, None
        # the lowest tier is never reviewed: there is nothing below it
        self.tier_review_at = next_review(self.program, self.at) if self.program.rank.get(tier, 0) else None
        self.effects.append(Effect("tier_changed", rule, tier=tier, previous_tier=previous, reason=reason))

    def held_by_override(self, tier: str) -> str:
        """The tier the member gets when `tier` is due: a fixed override holds its tier, a floor
        holds at least its tier."""
        override = self.tier_override
        if override is None or override.tier not in self.program.rank:
            return tier
        if override.kind == "fixed" or self.program.rank.get(tier, 0) < self.program.rank[override.tier]:
            return override.tier
        return tier

    def override_text(self) -> str:
        override = self.tier_override
        assert override is not None
        until = f" until {override.until.astimezone(self.program.tz).isoformat()}" if override.until else ""
        return f"held by a {override.kind} override at {override.tier}{until} ({override.reason})"

    def freeze(self) -> MemberState:
        s = self.state
        # tuple() would copy a _Held into a plain tuple, forgetting its sums: tuples stay as they are
        lots = {b: v if isinstance(v, tuple) else tuple(v) for b, v in self.lots.items() if v} if self.owned else s.lots
        at = self.at
        last_event_at, last_purchase_at = s.last_event_at, s.last_purchase_at
        if last_event_at is None or last_event_at < at:
            last_event_at = at
        if self.event.type == "purchase" and (last_purchase_at is None or last_purchase_at < at):
            last_purchase_at = at
        # Positional, in MemberState's field order: this runs once per event.
        return MemberState(
            s.member_id,
            s.joined_at,
            self.tier,
            self.tier_since,
            self.tier_review_at,
            self.grace_until,
            self.tier_override,
            frozenset(self.tags) if self.tags is not None else s.tags,
            s.home_store,
            s.birthday,
            lots,
            {k: v for k, v in self.debts.items() if v} if self.debts is not None else s.debts,
            self.counters,
            tuple(self.coupons) if self.coupons is not None else s.coupons,
            self.caps if self.caps is not None else s.caps,
            self.earnings if self.earnings is not None else s.earnings,
            self.rewards if self.rewards is not None else s.rewards,
            last_event_at,
            last_purchase_at,
            self.goals if self.goals is not None else s.goals,
            s.segment,
            s.segment_on,
            self.referral,
        )


# --- counters ------------------------------------------------------------------------------------


def _counter_value(state: CounterState, counter: CompiledCounter, today: int) -> int:
    kind = counter.counter.kind
    if kind == "streak":
        return state.streak if state.last_day >= today - 1 else 0
    if not counter.window:
        return state.total
    first = today - counter.window + 1
    if state.days and state.days[0][0] < first:
        return sum(v for d, v in state.days if d >= first)
    return state.total


def _move_counter(state: CounterState, counter: CompiledCounter, value: int, today: int) -> CounterState:
    kind = counter.counter.kind
    if kind == "streak":
        if state.last_day == today:
            return state
        streak = state.streak + 1 if state.last_day == today - 1 else 1
        return CounterState(last_day=today, streak=streak)
    if not counter.window:
        return CounterState(total=state.total + value)
    first = today - counter.window + 1
    old = state.days
    days = list(old) if not old or min(map(_DAY, old)) >= first else [(d, v) for d, v in old if d >= first]
    if days and days[-1][0] == today:
        days[-1] = (today, days[-1][1] + value)
    else:
        days.append((today, value))
    return CounterState(total=sum(map(_VALUE, days)), days=tuple(days))


# --- evaluation ----------------------------------------------------------------------------------


def _event_names(event: Event, occurred_at: int) -> dict[str, Any]:
    names = dict(event.attributes)
    names["type"] = event.type
    names["store"] = event.store
    names["channel"] = event.channel
    names["occurred_at"] = occurred_at
    return names


def _member_names(program: Program, work: _Work, with_balances: bool) -> dict[str, Any]:
    s = work.state
    names: dict[str, Any] = {
        "tier": work.tier or "",
        "tier_rank": program.rank.get(work.tier or "", 0),
        "tags": work.tags if work.tags is not None else s.tags,
        "joined_at": int(s.joined_at.timestamp()),
        "home_store": s.home_store,
        "birthday_month": s.birthday[0] if s.birthday else 0,
        "birthday_day": s.birthday[1] if s.birthday else 0,
    }
    if with_balances:
        for balance in program.balances:
            names[balance] = work.available(balance)
    return names


def _read(data: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for name, space, attr in _split_names(names):
        value = data.get(space)
        out[name] = value.get(attr) if attr and isinstance(value, dict) else value
    return out


@lru_cache(maxsize=4096)
def _split_names(names: tuple[str, ...]) -> tuple[tuple[str, str, str], ...]:
    """(name, namespace, attribute) of each dotted name an expression reads."""
    return tuple((name, *name.partition(".")[::2]) for name in names)


def evaluate(
    program: Program,
    state: MemberState,
    event: Event,
    budgets: Mapping[str, int] | None = None,
    *,
    trace: bool = True,
    referrer: MemberState | None = None,
) -> Decision:
    """Evaluate one event for one member. `budgets` holds the units already used of each budget
    (coupon:<policy>, reward:<id>, campaign:<id>); missing keys count as unused. `referrer`: for a
    signup carrying a `referral_code`, the state of the member that code names, None when no member
    has it (the shell looks it up; the engine decides)."""
    work = _Work(program, state, event, budgets or _EMPTY, trace)
    try:
        _check_time(program, state, event)
        if event.type == "expiry":
            _expire(work)
        elif event.type == "activation":
            _activate(work, lambda lot: lot.available_at <= work.at)
        elif event.type == "tier_review":
            _review_tier(work)
        elif event.type == "tier_override":
            _set_override(work, event)
        elif event.type == "tier_override_end":
            _end_override(work, event)
        elif event.type == "opening":
            _open(work, event)
        else:
            _evaluate_event(program, work, event, referrer)
    except _Refuse as refused:
        return Decision(event.id, event.type, state.member_id, program.version, (), (), state, _EMPTY, refused.rejection)
    _finish_notifications(program, work)
    return Decision(
        event.id,
        event.type,
        state.member_id,
        program.version,
        tuple(work.effects),
        tuple(work.trace),
        work.freeze(),
        work.budget_uses,
        None,
        work.budget_limits,
    )


def _check_time(program: Program, state: MemberState, event: Event) -> None:
    if state.last_event_at is None or event.type in ("expiry", "tier_review", "activation", "tier_override_end"):
        return
    limit = program.late_event_limit
    if event.occurred_at < state.last_event_at - limit:
        raise _Refuse(
            "late_event",
            f"the event is more than {program.scheme.late_event_limit} earlier than the member's latest event "
            f"({state.last_event_at.isoformat()})",
            "/occurred_at",
        )


def _evaluate_event(program: Program, work: _Work, event: Event, referrer: MemberState | None) -> None:
    now = int(event.occurred_at.timestamp())
    data: dict[str, Any] = {"event": _event_names(event, now), "now": now}
    data["member"] = _member_names(program, work, program.reads_balances.get(event.type, True))
    tier_names = program.tier_names.get(work.tier or "")
    data["tier"] = tier_names if tier_names is not None else {"id": "", "rank": 0}
    data["campaign"] = _EMPTY

    # 1. refusals before anything moves
    if event.type == "refund":
        _refund(program, work, event)
    elif event.type == "reward_redemption":
        _check_reward(program, work, event)
    elif event.type == "adjustment":
        _adjust(program, work, event)
    elif event.type == "code_claim":
        _check_claim(program, work, event)
    payments = _payments(program, event) if event.type == "purchase" else {}
    if payments:
        _check_payments(program, work, event, payments)

    # 2. counters include the event
    today = work.day.toordinal() - EPOCH_ORDINAL
    moving = program.counters.get(event.type, ())
    if moving:
        counters = dict(work.counters)
        for counter in moving:
            try:
                if counter.when is not None and not counter.when(data):
                    continue
                value = _round(counter.of(data), "floor") if counter.of is not None else 1
            except EvalError as exc:
                work.trace.append(RuleTrace(f"counter:{counter.name}", "skipped", "expression_error", detail=str(exc)))
                continue
            counters[counter.name] = _move_counter(counters.get(counter.name, _NOTHING_COUNTED), counter, value, today)
        work.counters = counters
    all_counters = program.scheme.counters
    if all_counters:
        compiled = program.counter_by_name
        data["counters"] = {
            name: _counter_value(work.counters.get(name, _NOTHING_COUNTED), compiled[name], today) if name in compiled else 0
            for name in all_counters
        }
    else:
        data["counters"] = _EMPTY

    # 3. built-in effects
    if (event.type == "purchase" and event.attributes.get("coupons")) or event.type == "coupon_redemption":
        _redeem_coupons(program, work, event)
    if event.type == "reward_redemption":
        _redeem_reward(program, work, event)
    paid: list[tuple[str, str | None, int]] = []
    for balance, units in payments.items():
        spent = len(work.effects)
        work.spend(balance, units, None)
        paid += [(balance, e.part, -e.amount) for e in work.effects[spent:]]
    if event.type == "code_claim":
        work.issue_coupon(event.attributes["policy"], 1, None, code=event.attributes["code"])
    if event.type in program.activated_by:
        original = event.attributes.get("original_event_id")
        balances = program.activated_by[event.type]
        _activate(work, lambda lot: lot.source == original and lot.balance in balances)

    # 4. rules
    _run_rules(program, work, event, data)

    # 4b. achievements the event moves
    if event.type in program.goals:
        _move_goals(program, work, program.goals[event.type], data)

    # 4c. referrals: a signup binds the member to a referrer; the first purchase decides
    if program.scheme.referrals is not None:
        if event.type == "signup" and event.attributes.get("referral_code"):
            _bind_referral(work, event, referrer)
        elif event.type == "purchase" and work.referral is not None and work.referral.status == "pending":
            _decide_referral(program, work, event, data)

    # 5. tier
    _reevaluate_tier(program, work, data)

    if event.type in ("purchase", "topup") and (work.earned or event.attributes.get("amount") or paid):
        earnings = dict(work.state.earnings)
        amount = event.attributes.get("amount", 0)
        earnings[event.id] = Earning(event.id, event.type, amount, 0, tuple(work.earned), tuple(work.new_lots), tuple(paid))
        work.earnings = earnings


@dataclass(slots=True)
class _Ready:
    """A rule that passed every check, with its amounts worked out, waiting to fire."""

    rule: CompiledRule
    amounts: list[int]
    clipped: list[RuleTrace] | None
    cap_updates: dict[str, tuple[str, int]] | None
    read: Mapping[str, Any]
    campaign_budget: tuple[str, str, int] | None


def _run_rules(program: Program, work: _Work, event: Event, data: dict[str, Any]) -> None:
    stopped_by: str | None = None
    tracing = work.tracing
    candidates = program.candidates(event.type, event.store)
    decided: set[str] = set()  # groups already decided, at the place of their first rule
    for rule in candidates:
        group = rule.group
        if group is not None and group in decided:
            continue  # traced when its group was decided
        if stopped_by is not None:
            if tracing:
                work.trace.append(RuleTrace(rule.id, "skipped", "after_exclusive", detail=f"exclusive rule '{stopped_by}' fired"))
            continue
        if group is not None:
            decided.add(group)
            members = [r for r in candidates if r.group == group]
            fired = _decide_group(program, work, event, data, group, members)
        else:
            ready = _ready(program, work, event, data, rule)
            fired = rule if ready is not None else None
            if ready is not None:
                _fire(program, work, data, ready)
        if fired is not None and fired.rule.exclusive:
            stopped_by = fired.id


def _ready(program: Program, work: _Work, event: Event, data: dict[str, Any], rule: CompiledRule) -> _Ready | None:
    """Check a rule and work out its amounts without applying anything; None (and a trace line)
    when it is skipped."""
    tracing = work.tracing
    read: Mapping[str, Any] = _EMPTY
    try:
        if rule.channels is not None and event.channel not in rule.channels:
            raise _Skip("out_of_scope", f"channel '{event.channel}' is not in the rule's scope")
        campaign = rule.campaign
        if campaign is not None:
            if tracing and campaign.audience_segments is not None:
                read = _segment_read(work.state)
            _check_campaign(work, campaign, data)
        else:
            data["campaign"] = _EMPTY
        cap_updates = _check_caps(work, rule) if rule.caps else None
        when = rule.when
        if when is not None:
            if tracing:
                read = {**read, **_read(data, when.names)} if read else _read(data, when.names)
            try:
                passed = when.fn(data)  # Expr.__call__ without the extra call
            except EvalError as exc:
                raise _Skip("expression_error", str(exc)) from None
            if not passed:  # the common skip, traced without raising
                if tracing:
                    work.trace.append(RuleTrace(rule.id, "skipped", "when_false", read))
                return None
        budget = (campaign.id, campaign.budget_balance, campaign.budget_limit) if campaign and campaign.budget_balance else None
        amounts, clipped = _plan_actions(program, work, rule.actions, rule.id, data, budget)
    except _Skip as skip:
        if tracing:
            work.trace.append(RuleTrace(rule.id, "skipped", skip.reason, read, skip.detail))
        return None
    return _Ready(rule, amounts, clipped, cap_updates, read, budget)


def _fire(program: Program, work: _Work, data: dict[str, Any], ready: _Ready) -> None:
    rule = ready.rule
    data["campaign"] = rule.campaign.names if rule.campaign is not None else _EMPTY
    _apply_actions(program, work, rule.actions, ready.amounts, ready.clipped, rule.id, data, ready.campaign_budget)
    if ready.cap_updates:
        if work.caps is None:
            work.caps = dict(work.state.caps)
        work.caps.update(ready.cap_updates)
    if work.tracing:
        work.trace.append(RuleTrace(rule.id, "fired", "", ready.read))


def _decide_group(
    program: Program, work: _Work, event: Event, data: dict[str, Any], group: str, members: list[CompiledRule]
) -> CompiledRule | None:
    """At most one rule of a `first`, `best` or `lowest_cost` group fires. Every member is checked
    as usual (a skipped one is traced with its own reason); of those that could fire, `first`
    takes the first in rule order, `best` the one worth most to the member, `lowest_cost` the one
    worth least (ties: the first in rule order, i.e. priority, then file order). The others are
    traced `group_lost` naming the winner, and consume no budget, cap or stock."""
    policy = program.group_policy[group]
    passed: list[_Ready] = []
    for rule in members:
        if policy == "first" and passed:
            if work.tracing:
                work.trace.append(RuleTrace(rule.id, "skipped", "group_lost", detail=f"group '{group}' (first): rule '{passed[0].rule.id}' fired first"))
            continue
        ready = _ready(program, work, event, data, rule)
        if ready is not None:
            passed.append(ready)
    if not passed:
        return None
    if policy == "first":
        winner = passed[0]
        values: dict[str, Decimal] = {}
    else:
        values = {r.rule.id: rule_value(program, r.rule, r.amounts) for r in passed}
        pick = max if policy == "best" else min  # both keep the first of equals: rule order breaks ties
        winner = pick(passed, key=lambda r: values[r.rule.id])
    if work.tracing:
        for r in passed:
            if r is not winner:
                worth = f": worth {_figure(values[winner.rule.id])} against {_figure(values[r.rule.id])}" if values else ""
                work.trace.append(RuleTrace(r.rule.id, "skipped", "group_lost", r.read, f"group '{group}' ({policy}): rule '{winner.rule.id}' won{worth}"))
    _fire(program, work, data, winner)
    return winner.rule


def _figure(value: Decimal) -> str:
    return format(value.normalize(), "f")


def rule_value(program: Program, rule: CompiledRule, amounts: list[int]) -> Decimal:
    """What firing a rule is worth to the member, in minor units: awards at their balance's unit
    worth, less deductions; coupons at face value; a reward at its cost in its balance."""
    worth = program.unit_worth
    total = Decimal(0)
    for action, amount in zip(rule.actions, amounts, strict=True):
        kind = action.kind
        if kind == "award":
            assert action.balance is not None
            total += amount * worth[action.balance]
        elif kind == "deduct":
            assert action.balance is not None
            total -= amount * worth[action.balance]
        elif kind == "issue_coupon":
            assert action.target is not None
            total += action.count * program.scheme.coupons[action.target].face_value()
        elif kind == "grant_reward":
            assert action.target is not None
            cost = program.scheme.rewards[action.target].cost
            total += cost.amount * worth[cost.balance]
    return total


def goal_progress(goal: CompiledGoal, state: GoalState, day: date) -> int:
    """The progress that counts on a local day: a count or sum of another period, or a streak
    broken before yesterday, is 0."""
    if goal.achievement.measure == "streak":
        return state.progress if state.last_day >= day.toordinal() - EPOCH_ORDINAL - 1 else 0
    return state.progress if state.period == period_key(day, goal.achievement.period) else 0


def _move_goals(program: Program, work: _Work, goals: tuple[CompiledGoal, ...], data: dict[str, Any]) -> None:
    """Move each achievement the event counts for, and complete those that reach their target:
    the badge (a tag), then the goal's actions, checked whole like a rule's. A completion stands
    even when its actions cannot be applied (a spent budget): the trace says so, as for a tier's
    on_reach. Expressions read what the rules read."""
    data["campaign"] = _EMPTY
    today = work.day.toordinal() - EPOCH_ORDINAL
    for goal in goals:
        name = f"achievement:{goal.id}"
        achievement = goal.achievement
        try:
            if goal.when is not None and not goal.when.fn(data):
                continue
            value = _round(goal.of.fn(data), "floor") if goal.of is not None else 1
        except EvalError as exc:
            work.trace.append(RuleTrace(name, "skipped", "expression_error", detail=str(exc)))
            continue
        if work.goals is None:
            work.goals = dict(work.state.goals)
        old = work.goals.get(goal.id, _NO_PROGRESS)
        key = period_key(work.day, achievement.period)
        if achievement.measure == "streak":
            if old.last_day == today:
                continue  # a day counts once
            moved = replace(old, progress=old.progress + 1 if old.last_day == today - 1 else 1, last_day=today)
        else:
            moved = replace(old, period=key, progress=(old.progress if old.period == key else 0) + value)
        allowed = old.completions == 0 if achievement.repeat == "once" else old.completed_in != key
        if moved.progress < achievement.target or not allowed:
            work.goals[goal.id] = moved
            continue
        detail = f"{moved.progress} of {achievement.target}" + (f" this {achievement.period}" if key else "")
        work.goals[goal.id] = replace(
            moved,
            # a streak starts again after each completion, so a repeat needs a new streak
            progress=0 if achievement.measure == "streak" else moved.progress,
            completions=old.completions + 1,
            completed_in=key,
            earned_at=old.earned_at or work.at,
        )
        work.effects.append(Effect("achieved", name, tag=achievement.badge, reason=key or None))
        if achievement.badge is not None:
            work.set_tag(achievement.badge, True, name)
        try:
            _run_actions(program, work, goal.actions, name, data)
        except _Skip as skip:
            work.trace.append(RuleTrace(name, "skipped", skip.reason, detail=f"completed ({detail}); its actions: {skip.detail}"))
            continue
        if work.tracing:
            work.trace.append(RuleTrace(name, "fired", "", detail=detail))


def _bind_referral(work: _Work, event: Event, referrer: MemberState | None) -> None:
    """Bind a new member to the member whose code the signup carries, or refuse the referral (never
    the signup) with the reason in the trace: the code names no member, the member itself, a member
    this one referred (a loop), or this member is already known (an earlier event, a purchase or a
    referrer already)."""
    code = str(event.attributes["referral_code"])
    me = work.state
    if code == me.member_id:
        reason = "self_referral"
    elif referrer is None or referrer.member_id != code:
        reason = "unknown_code"
    elif referrer.referral is not None and referrer.referral.referred_by == me.member_id:
        reason = "referral_loop"
    elif me.referral is not None or me.last_event_at is not None or me.last_purchase_at is not None:
        reason = "referee_known"
    else:
        work.referral = Referral(code, work.at)
        work.effects.append(Effect("referred", "referral:signup", referrer=code))
        if work.tracing:
            work.trace.append(RuleTrace("referral:signup", "fired", "", detail=f"invited by {code}"))
        return
    work.trace.append(RuleTrace("referral:signup", "skipped", reason, detail=f"code {code}"))


def _decide_referral(program: Program, work: _Work, event: Event, data: dict[str, Any]) -> None:
    """The referee's first purchase: when it meets `qualify`, the referee's actions run and the
    `referral_qualified` effect tells the shell to give the referrer its event; otherwise the
    referral ends unrewarded. Either way it is decided once."""
    assert work.referral is not None
    referrer = work.referral.referred_by
    reason, detail = "", ""
    try:
        if program.referral_qualify is not None and not program.referral_qualify.fn(data):
            reason, detail = "when_false", f"the first purchase does not qualify; invited by {referrer}"
    except EvalError as exc:
        reason, detail = "expression_error", str(exc)
    if reason:
        work.referral = replace(work.referral, status="unqualified", decided_by=event.id)
        work.trace.append(RuleTrace("referral:purchase", "skipped", reason, detail=detail))
        return
    work.referral = replace(work.referral, status="rewarded", decided_by=event.id)
    work.effects.append(Effect("referral_qualified", "referral:purchase", referrer=referrer))
    try:
        _run_actions(program, work, program.referee_then, "referral:purchase", data)
    except _Skip as skip:
        work.trace.append(RuleTrace("referral:purchase", "skipped", skip.reason, detail=f"qualified; the referee's actions: {skip.detail}"))
        return
    if work.tracing:
        work.trace.append(RuleTrace("referral:purchase", "fired", "", detail=f"qualified; invited by {referrer}"))


def _check_campaign(work: _Work, campaign: Any, data: dict[str, Any]) -> None:
    event = work.event
    if event.type in ("campaign_start", "campaign_end") and event.attributes.get("campaign") != campaign.id:
        raise _Skip("other_campaign", f"the event is about campaign '{event.attributes.get('campaign')}', not '{campaign.id}'")
    # a campaign's own end event falls on its (excluded) end instant: its rules still see it
    if not (campaign.start <= work.at < campaign.end or (event.type == "campaign_end" and work.at == campaign.end)):
        raise _Skip("outside_window", f"campaign '{campaign.id}' runs {campaign.start.isoformat()} to {campaign.end.isoformat()}")
    data["campaign"] = campaign.names
    if campaign.audience_tags is not None:
        tags = work.tags if work.tags is not None else work.state.tags
        if not campaign.audience_tags & tags:
            raise _Skip("not_in_audience", f"the member has none of the tags {sorted(campaign.audience_tags)}")
    if campaign.audience_segments is not None:
        _check_segment(work.state, campaign.audience_segments)
    if campaign.audience_when is not None:
        try:
            if not campaign.audience_when(data):
                raise _Skip("not_in_audience", f"audience condition is false: {campaign.audience_when.source}")
        except EvalError as exc:
            raise _Skip("expression_error", str(exc)) from None
    if campaign.holdout_cut or campaign.rollout_cut < 2**64:
        u = _rollout_position(campaign.id, work.state.member_id)
        if u < campaign.holdout_cut:
            raise _Skip("in_holdout", f"the member is in campaign '{campaign.id}''s holdout group")
        if u >= campaign.rollout_cut:
            raise _Skip("not_in_rollout", f"the member is outside campaign '{campaign.id}''s rollout")


def _check_segment(state: MemberState, segments: frozenset[str]) -> None:
    """A segment audience reads the segment the scheduler last stored; without one (never computed,
    as in a simulation) the engine cannot tell, and says so rather than guess."""
    if state.segment_on is None:
        raise _Skip("segment_unknown", "the member's RFM segment has not been computed")
    if state.segment not in segments:
        held = f"'{state.segment}'" if state.segment else "none (no purchase in the period)"
        raise _Skip(
            "not_in_audience",
            f"the member's segment computed for {state.segment_on.isoformat()} is {held}, not one of {sorted(segments)}",
        )


def _segment_read(state: MemberState) -> dict[str, Any]:
    """The segment a rule's audience let through, and the day it was computed for, for the trace."""
    return {"member.segment": state.segment, "member.segment_on": state.segment_on.isoformat() if state.segment_on else None}


@lru_cache(maxsize=16384)
def _rollout_position(campaign_id: str, member_id: str) -> int:
    """The member's u of SETTLED.md scaled to 2**64; a pure function of the two ids, so a member's
    events after the first reuse it instead of hashing again."""
    return int(hashlib.sha256(f"{campaign_id}:{member_id}".encode()).hexdigest()[:16], 16)


def _check_caps(work: _Work, rule: CompiledRule) -> dict[str, tuple[str, int]]:
    updates: dict[str, tuple[str, int]] = {}
    caps = work.caps if work.caps is not None else work.state.caps
    for limit, per in rule.caps:
        key, period = work.cap_key(rule.id, per)
        seen_period, uses = caps.get(key, ("", 0))
        uses = uses if seen_period == period else 0
        if uses >= limit:
            raise _Skip("cap_reached", f"fired {uses} of {limit} times" + ("" if per == "lifetime" else f" this {per}"))
        updates[key] = (period, uses + 1)
    return updates


def _run_actions(
    program: Program,
    work: _Work,
    actions: tuple[CompiledAction, ...],
    rule: str | None,
    data: Mapping[str, Any],
    *,
    campaign_budget: tuple[str, str, int] | None = None,
) -> None:
    """Check every action of a rule first, then apply them all: a rule fires whole or not at all."""
    amounts, clipped = _plan_actions(program, work, actions, rule, data, campaign_budget)
    _apply_actions(program, work, actions, amounts, clipped, rule, data, campaign_budget)


def _plan_actions(
    program: Program,
    work: _Work,
    actions: tuple[CompiledAction, ...],
    rule: str | None,
    data: Mapping[str, Any],
    campaign_budget: tuple[str, str, int] | None,
) -> tuple[list[int], list[RuleTrace] | None]:
    """The amounts of a rule's actions, cut by balance limits, after checking that every action
    can be applied (raises `_Skip` otherwise). Nothing is applied."""
    amounts = _amounts(actions, data, "")
    clipped = _clip(program, work, actions, amounts, rule) if program.limited else None
    _check_actions(program, work, actions, amounts, data, campaign_budget, {}, {})
    return amounts, clipped


def _apply_actions(
    program: Program,
    work: _Work,
    actions: tuple[CompiledAction, ...],
    amounts: list[int],
    clipped: list[RuleTrace] | None,
    rule: str | None,
    data: Mapping[str, Any],
    campaign_budget: tuple[str, str, int] | None,
) -> None:
    if clipped and work.tracing:
        work.trace.extend(clipped)
    for action, amount in zip(actions, amounts, strict=True):
        kind = action.kind
        if kind == "award":
            assert action.balance is not None
            work.earn(action.balance, action.part, amount, rule)
            if action.balance in program.limited:
                work.count_earning(action.balance, amount)
            if campaign_budget is not None and action.balance == campaign_budget[1]:
                work.use_budget(f"campaign:{campaign_budget[0]}", amount)
                liability = program.liability.get(campaign_budget[0])
                if liability is not None:
                    work.use_budget(f"campaign_value:{campaign_budget[0]}", _worth(amount, liability[1]), liability[0])
        elif kind == "deduct":
            assert action.balance is not None
            if amount:
                work.spend(action.balance, amount, rule)
        elif kind == "issue_coupon":
            assert action.target is not None
            work.issue_coupon(action.target, action.count, rule, code=action.code)
        elif kind == "grant_reward":
            assert action.target is not None
            _grant_reward(program, work, action.target, rule, data)
        elif kind == "set_tier":
            assert action.target is not None
            work.change_tier(action.target, "set", rule)
        elif kind in ("tag", "untag"):
            assert action.target is not None
            work.set_tag(action.target, kind == "tag", rule)
        elif kind == "notify":
            work.effects.append(Effect("notify", rule, template=action.target, channel=action.channel))


def _clip(program: Program, work: _Work, actions: tuple[CompiledAction, ...], amounts: list[int], rule: str | None) -> list[RuleTrace]:
    """Cut the awards of a limited balance to its earning cap and its maximum, in place; a trace
    line for each cut. On a money balance a cut refuses the event: paid money is never dropped."""
    lines: list[RuleTrace] = []
    added: dict[str, int] = {}
    for i, action in enumerate(actions):
        balance = action.balance
        if action.kind != "award" or balance not in program.limited:
            continue
        assert balance is not None
        limits = program.limited[balance]
        wanted = amounts[i]
        amount, reason, detail = wanted, "", ""
        so_far = added.get(balance, 0)
        if limits.earn_cap is not None:
            cap = limits.earn_cap
            earned = work.earned_in_period(balance, cap.per) + so_far
            if amount > cap.limit - earned:
                amount = max(cap.limit - earned, 0)
                reason, detail = "earn_cap", f"{earned} of {cap.limit} {balance} already earned this {cap.per}"
        if limits.max_balance is not None:
            holding = work.holding(balance) + so_far
            if amount > limits.max_balance - holding:
                amount = max(limits.max_balance - holding, 0)
                reason, detail = "max_balance", f"{balance} is {holding} of at most {limits.max_balance}"
        if amount == wanted:
            continue
        if program.balances[balance].unit == "money":
            raise _Refuse("above_max_balance" if reason == "max_balance" else "earn_cap_reached", f"{wanted} {balance} cannot be added: {detail}")
        amounts[i] = amount
        added[balance] = so_far + amount
        lines.append(RuleTrace(rule or "", "clipped", reason, detail=f"{balance} award of {wanted} cut to {amount}: {detail}"))
    return lines


def _worth(units: int, value: Decimal) -> int:
    """What awarded units are worth in minor units, rounded up: a liability cap is never passed by rounding."""
    return int((units * value).to_integral_value(rounding=ROUND_CEILING))


def _amounts(actions: tuple[CompiledAction, ...], data: Mapping[str, Any], prefix: str) -> list[int]:
    amounts: list[int] = []
    for action in actions:
        if action.amount is None:
            amounts.append(0)
            continue
        try:
            amount = _round(action.amount.fn(data), action.rounding)
        except EvalError as exc:
            raise _Skip("expression_error", f"{prefix}{action.kind} amount: {exc}") from None
        if amount < 0:
            raise _Skip("expression_error", f"{prefix}{action.kind} amount is negative ({amount})")
        amounts.append(amount)
    return amounts


def _check_actions(
    program: Program,
    work: _Work,
    actions: tuple[CompiledAction, ...],
    amounts: list[int],
    data: Mapping[str, Any],
    campaign_budget: tuple[str, str, int] | None,
    spending: dict[str, int],
    coupons_wanted: dict[str, int],
) -> None:
    """Raise `_Skip` if an action cannot be applied. `spending` and `coupons_wanted` add up what
    the actions checked so far need (a rule's own, and those of the rewards it grants)."""
    scheme = program.scheme
    for action, amount in zip(actions, amounts, strict=True):
        if action.kind == "award" and campaign_budget is not None and action.balance == campaign_budget[1]:
            key = f"campaign:{campaign_budget[0]}"
            if amount > work.remaining(key, campaign_budget[2]):
                raise _Skip("budget_exhausted", f"campaign budget has {max(work.remaining(key, campaign_budget[2]), 0)} left, the rule needs {amount}")
            liability = program.liability.get(campaign_budget[0])
            if liability is not None:
                worth, cap = _worth(amount, liability[1]), liability[0]
                if worth > work.remaining(f"campaign_value:{campaign_budget[0]}", cap):
                    left = max(work.remaining(f"campaign_value:{campaign_budget[0]}", cap), 0)
                    raise _Skip("budget_exhausted", f"campaign liability cap has {left} of {cap} left, the award is worth {worth}")
        elif action.kind == "deduct":
            assert action.balance is not None
            spending[action.balance] = spending.get(action.balance, 0) + amount
            config = program.balances[action.balance]
            if not config.allow_negative and spending[action.balance] > work.available(action.balance):
                raise _Skip("insufficient_balance", f"{action.balance} is {work.available(action.balance)}, the rule deducts {spending[action.balance]}")
        elif action.kind == "issue_coupon":
            assert action.target is not None
            policy = scheme.coupons[action.target]
            coupons_wanted[action.target] = coupons_wanted.get(action.target, 0) + action.count
            wanted = coupons_wanted[action.target]
            if (short := work.coupon_budget_short(action.target, wanted)) is not None:
                raise _Skip("budget_exhausted", short)
            if policy.per_member is not None and work.held(action.target) + wanted > policy.per_member:
                raise _Skip("member_cap_reached", f"the member already has {work.held(action.target)} of at most {policy.per_member} '{action.target}' coupons")
        elif action.kind == "grant_reward":
            assert action.target is not None
            reward = scheme.rewards[action.target]
            if reward.stock is not None and work.remaining(f"reward:{action.target}", reward.stock) < 1:
                raise _Skip("out_of_stock", f"reward '{action.target}' is out of stock")
            # What the reward grants is checked too: a grant that cannot be made skips the whole
            # rule, instead of failing after the rule's other actions were applied.
            grants = program.reward_grants[action.target]
            grant_amounts = _amounts(grants, data, f"reward '{action.target}' ")
            _check_actions(program, work, grants, grant_amounts, data, None, spending, coupons_wanted)


def _grant_reward(program: Program, work: _Work, reward_id: str, rule: str | None, data: Mapping[str, Any]) -> None:
    reward = program.scheme.rewards[reward_id]
    if reward.stock is not None:
        work.use_budget(f"reward:{reward_id}", 1)
    if work.rewards is None:
        work.rewards = dict(work.state.rewards)
    work.rewards[reward_id] = work.rewards.get(reward_id, 0) + 1
    work.effects.append(Effect("reward_granted", rule, reward=reward_id))
    _run_actions(program, work, program.reward_grants[reward_id], f"reward:{reward_id}", data)


# --- built-in effects -----------------------------------------------------------------------------


def _refund(program: Program, work: _Work, event: Event) -> None:
    original_id = event.attributes["original_event_id"]
    original = work.state.earnings.get(original_id)
    if original is None:
        raise _Refuse("unknown_original_event", f"no purchase or top-up '{original_id}' of this member to refund", "/attributes/original_event_id")
    amount = event.attributes["amount"]
    left = original.amount - original.refunded
    if amount > left:
        raise _Refuse("refund_too_large", f"only {left} of '{original_id}' is left to refund, not {amount}", "/attributes/amount")
    refunded = original.refunded + amount
    first = frozenset(original.lots)
    for balance, part, units in original.earned:
        if original.amount == 0:
            continue
        # Cumulative floor: partial refunds never take back more than the whole purchase earned,
        # and a full refund takes back exactly what it earned.
        claw = units * refunded // original.amount - units * original.refunded // original.amount
        if claw <= 0:
            continue
        taken, short = work.take(balance, claw, part, pending_too=True, first=first)
        debt = 0
        if short and program.balances[balance].allow_negative:
            # Only spent units become a debt; a pending lot is taken above, so it never does.
            debts = work._debts()
            debts[balance] = debts.get(balance, 0) + short
            debt = short
        amount_taken = sum(n for _, n in taken) + debt
        if amount_taken:
            work.effects.append(
                Effect("clawback", None, balance, part, -amount_taken, tuple((i, -n) for i, n in taken), debt, of_event=original_id)
            )
    for balance, part, units in original.paid if original.amount else ():
        # What the purchase paid goes back to the part it came from, by the same cumulative floor.
        back = units * refunded // original.amount - units * original.refunded // original.amount
        if back > 0:
            work.restore(balance, part, back, original_id)
    earnings = dict(work.state.earnings)
    earnings[original_id] = replace(original, refunded=refunded)
    work.earnings = earnings


def _redeem_coupons(program: Program, work: _Work, event: Event) -> None:
    """Redeem the coupons of a purchase, or the one of a coupon_redemption event: all of them, with
    the discounts `validate_coupons` gives, or the event is refused naming the first that fails."""
    if event.type == "coupon_redemption":
        ids, order_amount = [event.attributes["coupon"]], event.attributes["order_amount"]
        pointers = ["/attributes/coupon"]
    else:
        ids = list(event.attributes["coupons"])
        order_amount = event.attributes.get("order_amount") or event.attributes["amount"]
        pointers = [f"/attributes/coupons/{i}" for i in range(len(ids))]
    checks = validate_coupons(program, work.state, order_amount, ids, work.at)
    refused = next((c for c in checks if not c.applies), None)
    if refused is not None:
        assert refused.code is not None
        raise _Refuse(refused.code, refused.message, pointers[refused.index])
    coupons = {c.id: c for c in work._coupons()}
    redeemed = {}
    for check in sorted(checks, key=lambda c: c.order or 0):
        redeemed[check.coupon] = replace(coupons[check.coupon], redeemed_at=work.at, redeemed_by=event.id)
        work.effects.append(Effect("coupon_redeemed", coupon=check.coupon, policy=check.policy, discount=check.discount))
    work.coupons = [redeemed.get(c.id, c) for c in work._coupons()]


def _adjust(program: Program, work: _Work, event: Event) -> None:
    """A manual adjustment by support staff: units added as a new lot, or taken like a spend."""
    balance, amount = event.attributes["balance"], event.attributes["amount"]
    config = program.balances.get(balance)
    if config is None:
        raise _Refuse("unknown_balance", f"no balance '{balance}' (known: {', '.join(program.balances)})", "/attributes/balance")
    if amount == 0:
        raise _Refuse("zero_adjustment", "an adjustment of 0 changes nothing", "/attributes/amount")
    if not event.attributes["reason"].strip():
        raise _Refuse("missing_reason", "an adjustment needs a reason", "/attributes/reason")
    if amount > 0:
        most = config.limits.max_balance
        if most is not None and work.holding(balance) + amount > most:
            raise _Refuse("above_max_balance", f"{balance} is {work.holding(balance)}; it may hold at most {most}", "/attributes/amount")
        part = config.parts[0] if config.parts else None
        work.earn(balance, part, amount, None, kind="adjust")
    else:
        have = work.available(balance)
        if -amount > have and not config.allow_negative:
            raise _Refuse("insufficient_balance", f"{balance} is {have}; it cannot go below zero", "/attributes/amount")
        work.spend(balance, -amount, None, kind="adjust")


def _payments(program: Program, event: Event) -> dict[str, int]:
    """What each paying balance pays of a purchase: points_paid and stored_value_paid, by balance."""
    out: dict[str, int] = {}
    for attribute in ("points_paid", "stored_value_paid"):
        units = event.attributes.get(attribute)
        if not units:
            continue
        balance = program.payers.get(attribute)
        if balance is None:
            kind = "points" if attribute == "points_paid" else "stored value"
            raise _Refuse("points_not_accepted", f"no balance of this scheme takes {kind} for orders (order_payment)", f"/attributes/{attribute}")
        out[balance] = units
    return out


def _check_payments(program: Program, work: _Work, event: Event, payments: Mapping[str, int]) -> None:
    """Points and stored value paying part of a purchase: within each paying balance's limits and
    what the member can spend, or the event is refused."""
    points = program.payers.get("points_paid")
    points_worth = worth(program.balances[points], payments.get(points, 0)) if points is not None else 0
    order = event.attributes.get("order_amount") or event.attributes["amount"] + points_worth
    attributes = {balance: attribute for attribute, balance in program.payers.items()}
    for balance, units in payments.items():
        refused = refusal(program.balances[balance], balance, units, order, work.available(balance))
        if refused is not None:
            raise _Refuse(refused.code, refused.message, f"/attributes/{attributes[balance]}")
    joint = joint_refusal(program, payments, order)
    if joint is not None:
        raise _Refuse(joint.code, joint.message, "/attributes/stored_value_paid")


def _check_claim(program: Program, work: _Work, event: Event) -> None:
    """A code claimed: the coupon it stands for is issued within the policy's cap and budget."""
    policy_id = event.attributes["policy"]
    policy = program.scheme.coupons.get(policy_id)
    if policy is None or policy.codes is None:
        raise _Refuse("unknown_coupon_policy", f"no coupon policy '{policy_id}' with codes in the scheme in force", "/attributes/policy")
    if policy.per_member is not None and work.held(policy_id) >= policy.per_member:
        raise _Refuse("member_cap_reached", f"a member may hold at most {policy.per_member} '{policy_id}' coupons", "/attributes/code")
    if (short := work.coupon_budget_short(policy_id, 1)) is not None:
        raise _Refuse("budget_exhausted", short, "/attributes/code")


def _check_reward(program: Program, work: _Work, event: Event) -> None:
    reward_id = event.attributes["reward"]
    reward = program.scheme.rewards.get(reward_id)
    if reward is None:
        raise _Refuse("unknown_reward", f"no reward '{reward_id}' in the catalogue", "/attributes/reward")
    if reward.stock is not None and work.remaining(f"reward:{reward_id}", reward.stock) < 1:
        raise _Refuse("out_of_stock", f"reward '{reward_id}' is out of stock", "/attributes/reward")
    if reward.per_member is not None and work.state.rewards.get(reward_id, 0) >= reward.per_member:
        raise _Refuse("reward_limit_reached", f"a member may redeem '{reward_id}' at most {reward.per_member} times", "/attributes/reward")
    have = work.available(reward.cost.balance)
    if have < reward.cost.amount:
        raise _Refuse(
            "insufficient_balance",
            f"'{reward_id}' costs {reward.cost.amount} {reward.cost.balance}; the member has {have}",
            "/attributes/reward",
        )


def _redeem_reward(program: Program, work: _Work, event: Event) -> None:
    reward_id = event.attributes["reward"]
    reward = program.scheme.rewards[reward_id]
    work.spend(reward.cost.balance, reward.cost.amount, None, reward=reward_id)
    data = {"member": _member_names(program, work, True), "tier": program.tier_names.get(work.tier or "", {}), "counters": {}, "now": int(work.at.timestamp())}
    try:
        _grant_reward(program, work, reward_id, None, data)
    except _Skip as skip:
        raise _Refuse(skip.reason, skip.detail, "/attributes/reward") from None


# --- tiers ----------------------------------------------------------------------------------------


def _metric(program: Program, work: _Work, data: Mapping[str, Any]) -> int:
    tiers = program.scheme.tiers
    assert tiers is not None
    metric = tiers.metric
    if metric.balance is not None:
        return work.available(metric.balance)
    if metric.counter is not None:
        compiled = program.counter_by_name[metric.counter]
        return _counter_value(work.counters.get(metric.counter, CounterState()), compiled, work.day.toordinal() - EPOCH_ORDINAL)
    assert program.metric_expr is not None
    fresh = dict(data)
    fresh["member"] = _member_names(program, work, True)
    return _round(program.metric_expr(fresh), "floor")


def _reevaluate_tier(program: Program, work: _Work, data: Mapping[str, Any]) -> None:
    tiers = program.scheme.tiers
    if tiers is None:
        return
    try:
        value = _metric(program, work, data)
    except EvalError as exc:
        work.trace.append(RuleTrace("tier", "skipped", "expression_error", detail=str(exc)))
        return
    current = program.rank.get(work.tier or "", 0)
    thresholds = program.thresholds
    if value >= thresholds[0]:
        reached = bisect.bisect_right(thresholds, value) - 1  # the highest level whose threshold is reached
    else:
        reached = max(i for i, level in enumerate(program.levels) if level.threshold <= value)
    if reached > current:
        target = program.levels[reached].id
        if work.held_by_override(target) != target:
            if work.tracing:
                work.trace.append(RuleTrace("tier", "skipped", "tier_override", {"metric": value}, f"upgrade to {target}: {work.override_text()}"))
            return
        work.change_tier(target, "upgrade", None)
        try:
            _run_actions(program, work, program.on_reach[target], f"tier:{target}", data)
        except _Skip as skip:
            # The upgrade stands; its on_reach actions (checked whole before any applies) do not.
            if work.tracing:
                work.trace.append(RuleTrace(f"tier:{target}", "skipped", skip.reason, detail=skip.detail))
    elif reached < current and tiers.downgrade.kind == "immediate":
        work.change_tier(program.levels[reached].id, "downgrade", None)


def _open(work: _Work, event: Event) -> None:
    """Opening balances: each lot with its own dates and a ledger entry of kind `opening`, the
    tier with the day it was reached (its term or review counts from then), the coupons as held.
    Only a member with nothing applied yet can be opened."""
    program = work.program
    if work.state.last_event_at is not None:
        raise _Refuse("member_has_history", "the member already has events: an opening comes first", "/member_id")
    try:
        lots, coupons, tier = read_opening(event.attributes["data"], event.id, work.at, program.balances, program.rank, program.scheme.coupons)
    except OpeningRefused as refused:
        raise _Refuse(refused.code, refused.message, refused.pointer) from None
    for lot in lots:
        held = work._own(lot.balance)
        held.append(lot)
        held.sort(key=lot_order(program, lot.balance))
        work.effects.append(Effect("opening", None, lot.balance, lot.part, lot.amount, ((lot.id, lot.amount),), expires_at=lot.expires_at))
    for coupon in coupons:
        work._coupons().append(coupon)
        work.effects.append(Effect("coupon_issued", None, coupon=coupon.id, policy=coupon.policy, valid_until=coupon.valid_until, code=coupon.code))
    if tier is not None and tier[0] != work.tier:
        previous = work.tier
        work.tier, work.tier_since, work.grace_until = tier[0], tier[1], None
        work.tier_review_at = next_review(program, tier[1]) if program.rank.get(tier[0], 0) else None
        work.effects.append(Effect("tier_changed", None, tier=tier[0], previous_tier=previous, reason="opening"))


def _set_override(work: _Work, event: Event) -> None:
    """Staff set the tier by hand: the override replaces any other, and the tier moves at once as
    far as it requires (a floor raises a lower tier, a fixed override sets it either way)."""
    program = work.program
    attributes = event.attributes
    tier, kind, reason = attributes["tier"], attributes["kind"], attributes["reason"]
    if program.scheme.tiers is None or tier not in program.rank:
        raise _Refuse("unknown_tier", f"no tier '{tier}' (known: {', '.join(program.rank)})", "/attributes/tier")
    if not reason.strip():
        raise _Refuse("missing_reason", "a tier override needs a reason", "/attributes/reason")
    until = attributes.get("until") or 0  # an absent optional instant reads as 0: no end
    end = datetime.fromtimestamp(until, UTC) if until > 0 else None
    if end is not None and end <= work.at:
        raise _Refuse("override_already_over", "'until' must be after the override is set", "/attributes/until")
    work.tier_override = TierOverride(kind, tier, reason, work.at, end, work.tier)
    work.effects.append(Effect("tier_override", None, tier=tier, previous_tier=work.tier, reason=kind))
    work.trace.append(RuleTrace("tier_override", "fired", "set", detail=work.override_text()))
    if work.tier is not None and (held := work.held_by_override(work.tier)) != work.tier:
        work.change_tier(held, "override", None)


def _end_override(work: _Work, event: Event) -> None:
    """The override ends: an override that moved the tier (or under which it moved) is followed by
    a 保级 review of the tier held, whatever the downgrade kind, since that tier was given, not
    earned; one that never moved it leaves it to its own rules. Then an upgrade the override held
    back applies at once (with its on_reach actions), as upgrades are immediate: staff who end a
    hold expect the member back at the tier the metric earns, not at the next purchase."""
    program = work.program
    override = work.tier_override
    if override is None:
        raise _Refuse("no_tier_override", "the member has no tier override", "")
    detail = work.override_text()
    work.tier_override = None
    work.effects.append(Effect("tier_override_end", None, tier=work.tier, previous_tier=override.tier, reason=override.kind))
    tiers = program.scheme.tiers
    if tiers is None or work.tier is None or work.tier not in program.rank:
        work.trace.append(RuleTrace("tier_override", "fired", "ended", detail=detail))
        return
    now = int(work.at.timestamp())
    data: dict[str, Any] = {"event": _event_names(event, now), "now": now, "campaign": _EMPTY, "counters": {}}
    data["member"] = _member_names(program, work, True)
    data["tier"] = program.tier_names.get(work.tier, {})
    value = _metric(program, work, data)
    work.trace.append(RuleTrace("tier_override", "fired", "ended", {"metric": value}, detail))
    if work.tier != override.before:
        current = program.rank[work.tier]
        keep = current
        while keep > 0 and value < (program.levels[keep].retain if program.levels[keep].retain is not None else program.levels[keep].threshold):
            keep -= 1
        if keep < current:
            work.change_tier(program.levels[keep].id, "override_end", None)
    _reevaluate_tier(program, work, data)


def next_review(program: Program, at: datetime) -> datetime | None:
    """When a tier reached (or kept at a review) at `at` is next reviewed. `review`: `every` after
    the instant. `term` (等级有效期): the term counts the local day of `at` as its first day and ends
    at the local midnight after its last, so 12mo from 15 March 2026 ends at 00:00 on 15 March 2027;
    a term kept at its end review starts on the day the previous one ended."""
    tiers = program.scheme.tiers
    downgrade = tiers.downgrade if tiers is not None else None
    if downgrade is None:
        return None
    if downgrade.kind == "review" and downgrade.every is not None:
        return add_duration(at, downgrade.every, program.tz)
    if downgrade.kind == "term" and downgrade.term is not None:
        return local_midnight(add_duration_to_day(at.astimezone(program.tz).date(), downgrade.term), program.tz)
    return None


def _review_tier(work: _Work) -> None:
    program = work.program
    tiers = program.scheme.tiers
    if tiers is None or work.tier is None:
        return
    data = {"member": _member_names(program, work, True), "counters": {}, "now": int(work.at.timestamp())}
    value = _metric(program, work, data)
    current = program.rank[work.tier]
    level = program.levels[current]
    retain = level.retain if level.retain is not None else level.threshold
    downgrade = tiers.downgrade
    detail = f"metric {value}, {level.id} needs {retain} to keep"
    override = work.tier_override
    if override is not None and (override.kind == "fixed" or program.rank.get(override.tier, 0) >= current):
        # the override holds the tier whatever the metric; the next review comes as if it were kept
        work.grace_until = None
        work.tier_review_at = next_review(program, work.at)
        work.trace.append(RuleTrace("tier_review", "fired", "tier_override", {"metric": value}, f"{detail}; {work.override_text()}"))
        return
    if value >= retain:
        work.grace_until = None
        work.tier_review_at = next_review(program, work.at)
        if work.tier_review_at is not None:
            detail += f", held until {work.tier_review_at.isoformat()}"
        work.trace.append(RuleTrace("tier_review", "fired", "kept", {"metric": value}, detail))
        return
    if downgrade.grace is not None and work.grace_until is None:
        work.grace_until = add_duration(work.at, downgrade.grace, program.tz)
        work.tier_review_at = work.grace_until
        work.trace.append(RuleTrace("tier_review", "fired", "grace", {"metric": value}, detail))
        return
    keep = 0
    for i in range(current, -1, -1):
        candidate = program.levels[i]
        if value >= (candidate.retain if candidate.retain is not None else candidate.threshold):
            keep = i
            break
    work.change_tier(program.levels[keep].id, "review", None)
    work.trace.append(RuleTrace("tier_review", "fired", "downgraded", {"metric": value}, detail))


# --- time ----------------------------------------------------------------------------------------


def _activate(work: _Work, due: Callable[[Lot], bool]) -> None:
    """Pending lots for which `due` holds become spendable: one `activate` effect per balance,
    which moves no units (the balance already counted them)."""
    for balance in list(work.lots):
        lots = work.lots[balance]
        ready = [lot for lot in lots if lot.available_at is not None and due(lot)]
        if not ready:
            continue
        ids = {lot.id for lot in ready}
        work.lots[balance] = [replace(lot, available_at=None) if lot.id in ids else lot for lot in lots]
        work.owned.add(balance)
        work.effects.append(Effect("activate", None, balance, None, 0, tuple((lot.id, lot.amount) for lot in ready)))


def _expire(work: _Work) -> None:
    at = work.at
    for balance in list(work.lots):
        lots = work.lots[balance]
        gone = [lot for lot in lots if lot.expires_at is not None and lot.expires_at <= at]
        if not gone:
            continue
        keep = [lot for lot in lots if lot.expires_at is None or lot.expires_at > at]
        work.lots[balance] = keep
        work.owned.add(balance)
        work.effects.append(
            Effect("expire", None, balance, None, -sum(lot.amount for lot in gone), tuple((lot.id, -lot.amount) for lot in gone))
        )


_DUE_ORDER = {
    "activation": -2, "expiry": -1, "tier_override_end": 0, "tier_review": 1, "points_expiring": 2, "birthday": 3, "inactivity": 4,
    "campaign_end": 5, "campaign_start": 6,
}


def _stamp(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def due_events(program: Program, state: MemberState, until: datetime) -> list[Event]:
    """The time-driven events of a member due at or before `until`, in time order, with ids that
    are the same however often and wherever they are computed.

    Expiry and tier reviews follow from the state itself (a lot past its expiry, a review date).
    Reminders, birthdays, inactivity and campaigns' starts and ends happen at an instant: they are
    due when that instant is after the member's latest applied event (or joining) and at or before
    `until`, so applying them (which moves `last_event_at`) is what marks them done, in a replay and
    in the service alike."""
    due: dict[tuple[datetime, int, str], Event] = {}
    member = state.member_id

    def add(instant: datetime, kind: str, event_id: str, attributes: dict[str, Any] | None = None) -> None:
        due[(instant, _DUE_ORDER[kind], event_id)] = Event(event_id, kind, member, instant, "", "system", attributes or {})

    for balance, lots in state.lots.items():
        config = program.balances.get(balance)
        if config is not None and config.consumption == "soonest_expiry":
            # Lots are held in consumption order (state.py), here soonest expiry first and lots
            # without expiry last: the due ones are a prefix, so stop at the first lot not due.
            for lot in lots:
                if lot.expires_at is None or lot.expires_at > until:
                    break
                add(lot.expires_at, "expiry", f"expiry:{member}:{_stamp(lot.expires_at)}")
        elif _soonest(map(_EXPIRES_AT, lots), until):
            for lot in lots:
                if lot.expires_at is not None and lot.expires_at <= until:
                    add(lot.expires_at, "expiry", f"expiry:{member}:{_stamp(lot.expires_at)}")
    for balance in program.pending_balances:
        lots = state.lots.get(balance, ())
        if not _soonest(map(_AVAILABLE_AT, lots), until):
            continue
        for lot in lots:
            if lot.available_at is not None and lot.available_at <= until:
                add(lot.available_at, "activation", f"activation:{member}:{_stamp(lot.available_at)}")
    if state.tier_review_at is not None and state.tier_review_at <= until:
        add(state.tier_review_at, "tier_review", f"tier_review:{member}:{_stamp(state.tier_review_at)}")
    override_end = state.tier_override.until if state.tier_override is not None else None
    if override_end is not None and override_end <= until:
        add(override_end, "tier_override_end", f"tier_override_end:{member}:{_stamp(override_end)}")

    done_until = state.last_event_at or state.joined_at  # instants after this are not yet produced
    if done_until < until:
        tz = program.tz
        reminding = program.reminding
        for balance in reminding:
            config = program.balances[balance]
            expiring: dict[datetime, int] = {}
            for lot in state.lots.get(balance, ()):
                if lot.expires_at is not None and lot.amount > 0:
                    expiring[lot.expires_at] = expiring.get(lot.expires_at, 0) + lot.amount
            for expires_at, amount in expiring.items():
                remind_at = subtract_duration(expires_at, config.remind_before, tz)
                if done_until < remind_at <= until:
                    attributes = {"balance": balance, "amount": amount, "expires_at": int(expires_at.timestamp())}
                    # a second balance that reminds of the same instant gets a short suffix of its name
                    suffix = "" if balance == reminding[0] else "#" + hashlib.sha256(balance.encode()).hexdigest()[:8]
                    add(remind_at, "points_expiring", f"points_expiring:{member}:{_stamp(expires_at)}{suffix}", attributes)
        if state.birthday is not None:
            month, day = state.birthday
            first, last = done_until.astimezone(tz).year, until.astimezone(tz).year
            for year in range(first, last + 1):
                instant = local_midnight(birthday_on(year, month, day), tz)
                if done_until < instant <= until:
                    add(instant, "birthday", f"birthday:{member}:{year}", {"year": year})
        inactivity = program.scheme.inactivity
        if inactivity is not None:
            since = state.last_purchase_at or state.joined_at
            instant = add_duration(since, inactivity.after, tz)
            if done_until < instant <= until:
                add(instant, "inactivity", f"inactivity:{member}:{_stamp(instant)}", {"since": int(since.timestamp())})
        # campaigns' starts and ends (only those some rule or counter listens to); a member who
        # joined after a campaign started gets no start event
        for instant, kind, campaign in program.campaign_instants:
            if instant > until:
                break
            if done_until < instant:
                add(instant, kind, f"{kind}:{campaign}:{member}", {"campaign": campaign})
    return [due[key] for key in sorted(due)]


def _soonest(instants: Iterable[datetime | None], until: datetime) -> bool:
    """Whether some instant (None: none) is at or before `until`. Most events find no lot due:
    this looks in C (datetimes are never false) before due_events walks the lots one by one."""
    soonest = min(filter(None, instants), default=None)
    return soonest is not None and soonest <= until


def next_due(program: Program, state: MemberState, until: datetime) -> list[Event]:
    """The time-driven events due at the earliest due instant by `until` (empty: none). Apply them
    all, in order, then ask again: a due event can itself make more due (a birthday award whose lot
    expires before `until`), and those must be applied in time order too. They are taken together
    because applying one moves `last_event_at` to their instant, which marks every instant-driven
    event up to it as done."""
    due = due_events(program, state, until)
    return [e for e in due if e.occurred_at == due[0].occurred_at] if due else []


def _finish_notifications(program: Program, work: _Work) -> None:
    if "notify" not in map(_KIND, work.effects):  # one pass in C: most events notify nobody
        return
    earned: dict[str, int] = {}
    for e in work.effects:
        if e.kind == "earn" and e.balance:
            earned[e.balance] = earned.get(e.balance, 0) + e.amount
    variables: dict[str, Any] = {f"{b}_earned": n for b, n in earned.items()}
    for balance in program.balances:
        variables[balance] = work.available(balance)
    variables["tier"] = work.tier or ""
    if work.event.type == "points_expiring":
        attributes = work.event.attributes
        variables["amount"] = attributes.get("amount", 0)
        variables["expires_at"] = datetime.fromtimestamp(attributes.get("expires_at", 0), UTC).astimezone(program.tz).date().isoformat()
    work.effects[:] = [
        Effect("notify", e.rule, template=e.template, channel=e.channel, variables=MappingProxyType(variables)) if e.kind == "notify" else e
        for e in work.effects
    ]
