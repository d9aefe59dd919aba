"""Member state: the immutable value the engine reads and returns.

A member's balances are held as lots. Each lot remembers when it was earned, when it expires
and (for pending balances) when it can be spent. A balance's value is the sum of its lots less
its debt; no lot is ever below zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Any

from ._frozen import quick_init

_EMPTY: Mapping[Any, Any] = MappingProxyType({})
UNTIL_EVENT = datetime(9999, 1, 1, tzinfo=UTC)
"""The `available_at` of a lot pending until an event (order_completed) with no duration: never by itself."""


@quick_init
@dataclass(frozen=True, slots=True)
class Lot:
    id: str  # "<event id>#<n>": deterministic, so a replay creates the same ids
    balance: str
    amount: int  # what is left of it, never below zero
    earned_at: datetime
    expires_at: datetime | None = None  # excluded: the lot is gone at this instant
    part: str | None = None  # principal / bonus for stored value
    available_at: datetime | None = None  # pending until this instant (UNTIL_EVENT: until the balance's event); None once active
    source: str = ""  # the event that earned it
    rule: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class Coupon:
    id: str  # "<event id>#c<n>"
    policy: str
    issued_at: datetime
    valid_from: datetime
    valid_until: datetime  # excluded
    source: str
    rule: str | None = None
    redeemed_at: datetime | None = None
    redeemed_by: str | None = None  # the event that used it
    voided: bool = False
    code: str | None = None  # the code it was claimed with, or handed out with (issue_coupon code: true)

    def usable_at(self, at: datetime) -> bool:
        return self.redeemed_at is None and not self.voided and self.valid_from <= at < self.valid_until


@quick_init
@dataclass(frozen=True, slots=True)
class TierOverride:
    """A tier set by staff (人工调级): `floor` keeps the member at least at `tier`, `fixed` exactly
    at it, until `until` (excluded; None: until removed)."""

    kind: str  # floor, fixed
    tier: str
    reason: str
    set_at: datetime
    until: datetime | None = None
    before: str | None = None  # the tier when it was set: an override that never moved the tier leaves it be at its end


@quick_init
@dataclass(frozen=True, slots=True)
class Earning:
    """What one purchase or top-up earned and paid with, kept so that a refund can take the one
    back and give the other back."""

    event_id: str
    event_type: str
    amount: int  # the money amount of the original event
    refunded: int  # money refunded so far
    earned: tuple[tuple[str, str | None, int], ...]  # (balance, part, units) awarded by its rules
    lots: tuple[str, ...]  # ids of the lots it created
    paid: tuple[tuple[str, str | None, int], ...] = ()  # (balance, part, units) it paid with: points, stored value


@quick_init
@dataclass(frozen=True, slots=True)
class CounterState:
    total: int = 0  # lifetime counters
    days: tuple[tuple[int, int], ...] = ()  # windowed counters: (local day ordinal, amount), oldest first
    last_day: int = 0  # streaks: the last local day ordinal counted
    streak: int = 0


@quick_init
@dataclass(frozen=True, slots=True)
class GoalState:
    """A member's progress towards one achievement (scheme `achievements:`)."""

    period: str = ""  # count and sum: the period key `progress` belongs to (2026-11, 2026-Q4, 2026, '' lifetime)
    progress: int = 0  # count or sum in that period; streak: consecutive local days since the last completion
    last_day: int = 0  # streak: the last local day ordinal counted
    completions: int = 0  # times completed, in all
    completed_in: str = ""  # the period key of the latest completion
    earned_at: datetime | None = None  # the first completion: the date of the badge


@quick_init
@dataclass(frozen=True, slots=True)
class Referral:
    """Who invited the member (scheme `referrals:`) and what became of it."""

    referred_by: str  # the referrer's member id (their referral code)
    bound_at: datetime  # the signup that carried the code
    status: str = "pending"  # pending until the first purchase; then rewarded or unqualified
    decided_by: str = ""  # the first purchase's event id


@quick_init
@dataclass(frozen=True, slots=True)
class MemberState:
    member_id: str
    joined_at: datetime
    tier: str | None = None
    tier_since: datetime | None = None
    tier_review_at: datetime | None = None
    grace_until: datetime | None = None
    tier_override: TierOverride | None = None
    tags: frozenset[str] = frozenset()
    home_store: str = ""
    birthday: tuple[int, int] | None = None  # (month, day): never the year, never sent elsewhere
    lots: Mapping[str, tuple[Lot, ...]] = field(default_factory=lambda: _EMPTY)  # per balance, in consumption order
    debts: Mapping[str, int] = field(default_factory=lambda: _EMPTY)  # per balance, >= 0
    counters: Mapping[str, CounterState] = field(default_factory=lambda: _EMPTY)
    coupons: tuple[Coupon, ...] = ()
    caps: Mapping[str, tuple[str, int]] = field(default_factory=lambda: _EMPTY)  # "rule|per" -> (period, uses)
    earnings: Mapping[str, Earning] = field(default_factory=lambda: _EMPTY)  # by event id
    rewards: Mapping[str, int] = field(default_factory=lambda: _EMPTY)  # reward id -> times redeemed
    last_event_at: datetime | None = None
    last_purchase_at: datetime | None = None  # for inactivity: the latest purchase applied
    goals: Mapping[str, GoalState] = field(default_factory=lambda: _EMPTY)  # achievement id -> progress
    # The member's RFM segment as the scheduler last computed it, and the local day it was computed
    # for. segment None with a day: no purchase in the period; segment_on None: never computed
    # (a simulation, or before the first run), so a segment audience cannot tell.
    segment: str | None = None
    segment_on: date | None = None
    referral: Referral | None = None  # the member was invited by another (scheme `referrals:`)

    def balance(self, name: str) -> int:
        """The balance: its lots, pending ones included, less its debt."""
        return sum(lot.amount for lot in self.lots.get(name, ())) - self.debts.get(name, 0)

    def available(self, name: str, at: datetime) -> int:
        """What can be spent at `at`: the balance less lots still pending."""
        return sum(
            lot.amount for lot in self.lots.get(name, ()) if lot.available_at is None or lot.available_at <= at
        ) - self.debts.get(name, 0)

    def pending(self, name: str, at: datetime) -> int:
        return sum(lot.amount for lot in self.lots.get(name, ()) if lot.available_at is not None and lot.available_at > at)

    def part_balance(self, name: str, part: str) -> int:
        return sum(lot.amount for lot in self.lots.get(name, ()) if lot.part == part)


def new_member(
    member_id: str,
    joined_at: datetime,
    *,
    tier: str | None = None,
    home_store: str = "",
    tags: frozenset[str] = frozenset(),
    birthday: tuple[int, int] | None = None,
) -> MemberState:
    """A member who has just joined, at the lowest tier of the scheme (pass it as `tier`)."""
    return MemberState(
        member_id=member_id,
        joined_at=joined_at,
        tier=tier,
        tier_since=joined_at if tier else None,
        tags=tags,
        home_store=home_store,
        birthday=birthday,
    )
