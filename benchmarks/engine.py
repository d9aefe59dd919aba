"""Engine benchmark (issue 3): evaluation speed, the peers, scale, load time and memory.

    .venv/bin/python benchmarks/engine.py            # the full run, about two minutes
    .venv/bin/python benchmarks/engine.py --quick    # a short run (the smoke test uses it)
    .venv/bin/python benchmarks/engine.py --json     # the same figures as JSON

Every figure comes from one run. The process is pinned to one core, the sides of each comparison
are interleaved round by round (the order rotates each round), and each figure is the median of
the rounds (docs: /work/shared/SETTLED.md, "Measuring on a 2-core machine"). Figures are printed,
never asserted: tests only check that the script runs.

What is timed, per event: the replay step of engine/simulate.py without its report-building,
on events already parsed (`parse_event` is outside the timed loop): the member's time-driven
events due before the event (expiry, tier reviews), `evaluate`, and taking the new state and the
budget uses. A pass replays the whole stream from empty state.

The peers do the coffee scheme's work without the engine:
- hand-written: a plain Python function written for the coffee scheme (the practical limit);
- naive: the same function with every condition and amount evaluated by `simpleeval`, parsing
  the expression text again on each evaluation.
Both are checked equal to the engine on the whole stream before they are timed (and on a longer
stream that reaches the 12-month expiry and the tier reviews); the run stops if they differ.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import hashlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from datetime import time as clock
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import simpleeval  # type: ignore[import-untyped]
import yaml

from perkflow import engine, rules
from perkflow.engine import Event, Program, Replay, parse_event, replay
from perkflow.engine.evaluate import Decision, _counter_value
from perkflow.engine.state import CounterState

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
COFFEE = EXAMPLES / "coffee" / "scheme.yaml"
COFFEE_EVENTS = EXAMPLES / "coffee" / "events.jsonl"

TARGET_EVENTS_PER_S = 50_000
TARGET_VS_HAND = 3.0  # engine time / hand-written time, at most
TARGET_VS_NAIVE = 20.0  # naive time / engine time, at least
TARGET_SCALE = 1.5  # 1,000-rule time / 10-rule time, at most
TARGET_LOAD_S = 1.0
TARGET_MEMORY_MIB = 20.0
TARGET_GROUPS = 1.2  # coffee with its evaluation group deciding / the same group with policy all, at most


class Abort(Exception):
    """A peer does not produce the engine's effects: its figures would mean nothing."""


# --------------------------------------------------------------------------------------------------
# Timing


def calibration() -> float:
    """µs for `sum(range(1000))`, best of 5: how fast this machine runs Python, to compare runs
    made on different machines (a current desktop takes about 6 µs)."""
    import timeit

    return min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6


def pin_to_one_core(cpu: int | None) -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    chosen = cpu if cpu is not None else allowed[-1]
    os.sched_setaffinity(0, {chosen})
    return chosen


def interleaved(sides: Mapping[str, Callable[[], int]], rounds: int) -> dict[str, list[tuple[float, float]]]:
    """Run every side once per round, rotating the order; each sample is (wall µs, CPU µs) per
    event. A side returns how many events it processed. The garbage collector stays on (it is part
    of the cost) but starts each pass from a clean heap."""
    names = list(sides)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            gc.collect()
            cpu0, wall0 = time.process_time_ns(), time.perf_counter_ns()
            n = sides[name]()
            wall1, cpu1 = time.perf_counter_ns(), time.process_time_ns()
            samples[name].append(((wall1 - wall0) / n / 1000, (cpu1 - cpu0) / n / 1000))
    return samples


def summary(samples: list[tuple[float, float]]) -> dict[str, float]:
    """The figures of one side. Time is the CPU time of this process: on a machine shared with
    other work, the wall time also counts the moments the pinned core ran something else (it is
    reported beside, as `wall_us_per_event`)."""
    cpus = [c for _, c in samples]
    us = statistics.median(cpus)
    return {
        "us_per_event": us,
        "events_per_s": 1e6 / us,
        "min_us": min(cpus),
        "max_us": max(cpus),
        "wall_us_per_event": statistics.median(w for w, _ in samples),
        "rounds": len(cpus),
    }


def ratio(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    """The median over rounds of a's CPU time / b's CPU time in the same round."""
    return statistics.median(x[1] / y[1] for x, y in zip(a, b, strict=True))


# --------------------------------------------------------------------------------------------------
# The engine side: Replay.apply as engine/simulate.py runs it, minus the report


class EngineReplay(Replay):
    """`Replay` with the report-building left out: `apply` (due time-driven events, `evaluate`,
    the new state) runs unchanged; `_record` keeps only what later events depend on, the budget
    uses (a campaign's budget)."""

    def _record(self, decision: Decision) -> None:
        for key, units in decision.budget_uses.items():
            self.budgets[key] = self.budgets.get(key, 0) + units


def engine_pass(program: Program, events: list[Event], trace: bool) -> EngineReplay:
    run = EngineReplay(program, trace=trace)
    apply = run.apply
    for event in events:
        apply(event)
    run.finish()
    return run


def harness_pass(events: list[Event]) -> int:
    """The driver loop alone, calling a function that does nothing: the harness's own cost."""
    seen: dict[str, Event] = {}

    def apply(event: Event) -> None:
        seen[event.member_id] = event

    for event in events:
        apply(event)
    return len(events)


def parse_all(program: Program, raws: Iterable[Mapping[str, Any]]) -> tuple[list[Event], int]:
    events, bad = [], 0
    for raw in raws:
        event, _ = parse_event(raw, program.event_types)
        if event is None:
            bad += 1
        else:
            events.append(event)
    return events, bad


# --------------------------------------------------------------------------------------------------
# A coffee event stream: 200 members, about 20,000 purchases and check-ins over six months

TZ = ZoneInfo("Asia/Shanghai")
MENU = [1500, 1800, 2200, 2600, 2800, 3000, 3200, 3500, 3800]  # fen: pastry .. large latte
SKUS = [
    "CROISSANT",
    "AMERICANO-M",
    "LATTE-S",
    "LATTE-M",
    "FLAT-WHITE",
    "MOCHA-M",
    "LATTE-L",
    "COLD-BREW",
    "SEASONAL-L",
]


def coffee_stream(members: int, events: int, start: date, months: int, seed: int) -> list[dict[str, Any]]:
    """Raw events, as an integrator would post them, in time order. Members sign up over the first
    third of the period, visit at very different rates (a few daily regulars, many occasional
    customers) and some stop coming; 85% of visits are purchases of one to three items, a few
    with a discount; the rest are check-ins."""
    rng = random.Random(seed)
    begin = datetime.combine(start, clock(), TZ)
    end = datetime.combine(_add_months(start, months), clock(), TZ)
    span = (end - begin).total_seconds()
    stores = [f"store-{i:02d}" for i in range(1, 9)]
    people = []
    for m in range(members):
        joined = begin + timedelta(seconds=rng.uniform(0, span / 3))
        leaves = end if rng.random() > 0.2 else joined + (end - joined) * rng.uniform(0.2, 0.8)
        people.append((f"m{m:04d}", joined, leaves, rng.lognormvariate(0, 1), rng.choice(stores)))
    # Visits per day: proportional to each member's taste, at most 1.2 (a daily regular who
    # sometimes comes twice), scaled so that the stream holds about `events` visits.
    days = [(p[2] - p[1]).total_seconds() / 86400 for p in people]
    low, high = 0.0, 100.0
    for _ in range(60):
        base = (low + high) / 2
        if sum(min(1.2, base * p[3]) * d for p, d in zip(people, days, strict=True)) < events:
            low = base
        else:
            high = base
    out: list[tuple[datetime, int, dict[str, Any]]] = []
    for (member_id, joined, leaves, taste, home), d in zip(people, days, strict=True):
        out.append((joined, 0, _raw("", "signup", member_id, joined, home, "app", {})))
        n = max(1, round(min(1.2, base * taste) * d))
        window = (leaves - joined).total_seconds()
        for _ in range(n):
            day = (joined + timedelta(seconds=rng.uniform(3600, window))).astimezone(TZ).date()
            at = datetime.combine(
                day,
                clock(
                    rng.choice([7, 7, 8, 8, 8, 9, 10, 12, 13, 15, 16, 18, 20]),
                    rng.randrange(60),
                    rng.randrange(60),
                ),
                TZ,
            )
            if at <= joined:
                at = joined + timedelta(minutes=rng.randrange(5, 600))
            store = home if rng.random() < 0.8 else rng.choice(stores)
            channel = "app" if rng.random() < 0.3 else "pos"
            if rng.random() < 0.85:
                picks = [rng.randrange(len(MENU)) for _ in range(rng.choice([1, 1, 1, 2, 2, 3]))]
                items = [
                    {
                        "sku": SKUS[i],
                        "category": "food" if i == 0 else "coffee",
                        "quantity": 1,
                        "amount": MENU[i],
                    }
                    for i in picks
                ]
                amount = sum(it["amount"] for it in items)
                if rng.random() < 0.1:
                    amount = amount * 88 // 100  # a staff or partner discount: odd fen
                out.append(
                    (
                        at,
                        1,
                        _raw(
                            "", "purchase", member_id, at, store, channel, {"amount": amount, "items": items}
                        ),
                    )
                )
            else:
                out.append((at, 1, _raw("", "checkin", member_id, at, store, channel, {})))
    out.sort(key=lambda x: (x[0], x[1], x[2]["member_id"]))
    raws = []
    for n, (_, _, raw) in enumerate(out, 1):
        raw["id"] = f"pos-{n:06d}" if raw["type"] != "signup" else f"crm-signup-{raw['member_id']}"
        raws.append(raw)
    return raws


def _raw(
    event_id: str,
    kind: str,
    member_id: str,
    at: datetime,
    store: str,
    channel: str,
    attributes: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": kind,
        "member_id": member_id,
        "occurred_at": at.astimezone(TZ).isoformat(timespec="seconds"),
        "store": store,
        "channel": channel,
        "attributes": attributes,
    }


# --------------------------------------------------------------------------------------------------
# The hand-written peer: Bean Club (examples/coffee/scheme.yaml) as a programmer would write it


def _add_months(day: date, months: int) -> date:
    y, m = divmod(day.year * 12 + day.month - 1 + months, 12)
    last = (date(y + (m + 1) // 12, (m + 1) % 12 + 1, 1) - timedelta(days=1)).day
    return date(y, m + 1, min(day.day, last))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, clock()).replace(tzinfo=TZ).astimezone(TZ)


def _later(at: datetime, *, months: int = 0, days: int = 0) -> datetime:
    """The same local wall time `months` and `days` later."""
    local = at.astimezone(TZ)
    day = _add_months(local.date(), months) + timedelta(days=days)
    return datetime.combine(day, local.timetz().replace(tzinfo=None)).replace(tzinfo=TZ).astimezone(TZ)


class _Lot:
    __slots__ = ("id", "amount", "earned_at", "expires_at", "rule")

    def __init__(
        self, lot_id: str, amount: int, earned_at: datetime, expires_at: datetime, rule: str
    ) -> None:
        self.id, self.amount, self.earned_at, self.expires_at, self.rule = (
            lot_id,
            amount,
            earned_at,
            expires_at,
            rule,
        )


class _Member:
    __slots__ = (
        "id",
        "joined_at",
        "home_store",
        "rank",
        "tier_since",
        "review_at",
        "grace_until",
        "lots",
        "totals",
        "visits",
        "visits_total",
        "coupons",
        "latte_held",
        "earnings",
        "last_event_at",
        "in_rollout",
    )

    def __init__(self, member_id: str, joined_at: datetime, home_store: str) -> None:
        self.id, self.joined_at, self.home_store = member_id, joined_at, home_store
        self.rank, self.tier_since, self.review_at, self.grace_until = 0, joined_at, None, None
        self.lots: dict[str, list[_Lot]] = {"points": [], "growth": []}  # soonest expiry first
        self.totals = {"points": 0, "growth": 0}
        self.visits: deque[list[int]] = deque()  # [local day ordinal, purchases that day], last 30 days
        self.visits_total = 0
        self.coupons: list[tuple[str, str, datetime, datetime]] = []  # id, policy, issued, valid until
        self.latte_held = 0
        self.earnings: dict[str, tuple[int, tuple[tuple[str, None, int], ...], tuple[str, ...]]] = {}
        self.last_event_at: datetime | None = None
        self.in_rollout: bool | None = None


class HandCoffee:
    """The coffee scheme by hand: a ledger of lots per member and balance (each with its 12-month
    rolling expiry, soonest first), visits in the last 30 local days, coupons with their validity
    and per-member cap, the tier with upgrades, 12-month reviews and 30 days' grace, the weekend
    campaign's window, rollout and holdout (SETTLED.md's hash, computed once per member) and budget,
    what each purchase earned (for refunds), late-event refusal, and a list of effects per event.
    It handles the event types of the generated stream: signup, purchase (without coupons), checkin."""

    TIERS = ("member", "silver", "gold")
    THRESHOLDS = (0, 500, 2000)
    MULTIPLIERS = (1, Decimal("1.2"), Decimal("1.5"))
    CAMPAIGN = "double-weekend"
    CAMPAIGN_START = datetime(2026, 1, 1, tzinfo=TZ)
    CAMPAIGN_END = datetime(2026, 7, 1, tzinfo=TZ)
    HOLDOUT, ROLLOUT, BUDGET = Decimal("0.1"), Decimal("0.2"), 200_000
    LATE = timedelta(days=7)

    def __init__(self) -> None:
        self.members: dict[str, _Member] = {}
        self.budget_used = 0
        self.rejected = 0
        self.last_at: datetime | None = None
        self._expiry_of_day: dict[date, datetime] = {}
        self._seq = 0
        self._event_id = ""

    # --- per event

    def apply(self, event: Event) -> list[tuple[Any, ...]] | None:
        at = event.occurred_at
        m = self.members.get(event.member_id)
        if m is None:
            if event.type != "signup":
                self.rejected += 1
                return None
            m = self.members[event.member_id] = _Member(event.member_id, at, event.store)
        self._advance(m, at)
        if m.last_event_at is not None and at < m.last_event_at - self.LATE:
            self.rejected += 1
            return None
        local = at.astimezone(TZ)
        day = local.date()
        effects: list[tuple[Any, ...]] = []
        self._seq, self._event_id = 0, event.id
        self._rules(m, event, local, effects)
        self._reevaluate_tier(m, at, day, effects)
        if m.last_event_at is None or at > m.last_event_at:
            m.last_event_at = at
        if self.last_at is None or at > self.last_at:
            self.last_at = at
        return effects

    def _rules(self, m: _Member, event: Event, local: datetime, effects: list[tuple[Any, ...]]) -> None:
        """The scheme's rules for one event, written out by hand."""
        at, day, kind = event.occurred_at, local.date(), event.type
        if kind == "purchase":
            attributes = event.attributes
            if attributes.get("coupons"):
                raise Abort("the peers replay generated streams, which redeem no coupons")
            amount = attributes["amount"]
            visits = self._visit(m, day.toordinal())
            rank = m.rank
            earned: list[tuple[str, None, int]] = []
            new_lots: list[str] = []
            points = int(Decimal(amount) / 100 * self.MULTIPLIERS[rank]) if amount > 0 else 0  # floor
            if amount > 0:  # base-earn
                self._earn(m, "points", points, at, day, "base-earn", effects, earned, new_lots)
                self._earn(
                    m, "growth", int(Decimal(amount) / 100), at, day, "base-earn", effects, earned, new_lots
                )
            if visits == 5 and m.latte_held < 12:  # frequent-visitor
                self._coupon(m, "latte-free", 14, at, day, "frequent-visitor", effects)
                m.latte_held += 1
            weekend = local.isoweekday() >= 6
            double = (
                points
                if self.CAMPAIGN_START <= at < self.CAMPAIGN_END
                and self._in_rollout(m)
                and weekend
                and points <= self.BUDGET - self.budget_used
                else None
            )  # weekend-double
            bonus = amount // 200 if rank >= 1 and weekend else None  # weekend-tier-bonus
            self._weekend_bonus(m, double, bonus, at, day, effects, earned, new_lots)
            if earned or amount:
                m.earnings[event.id] = (amount, tuple(earned), tuple(new_lots))
        elif kind == "signup":  # welcome
            self._earn(m, "points", 100, at, day, "welcome", effects, [], [])
        elif kind != "checkin":
            raise Abort(f"the peers replay signup, purchase and checkin events, not '{kind}'")

    def _weekend_bonus(
        self,
        m: _Member,
        double: int | None,
        bonus: int | None,
        at: datetime,
        day: date,
        effects: list[tuple[Any, ...]],
        earned: list[tuple[str, None, int]],
        new_lots: list[str],
    ) -> None:
        """The group weekend-bonus (best): the award worth more fires (a point is worth 1 fen);
        on a tie the tier bonus, first in file order."""
        if bonus is not None and (double is None or bonus >= double):
            self._earn(m, "points", bonus, at, day, "weekend-tier-bonus", effects, earned, new_lots)
        elif double is not None:
            self._earn(m, "points", double, at, day, "weekend-double", effects, earned, new_lots)
            self.budget_used += double

    def finish(self) -> None:
        if self.last_at is not None:
            for member_id in sorted(self.members):
                self._advance(self.members[member_id], self.last_at)

    # --- state

    def _visit(self, m: _Member, today: int) -> int:
        visits = m.visits
        first = today - 29
        while visits and visits[0][0] < first:
            m.visits_total -= visits.popleft()[1]
        if visits and visits[-1][0] == today:
            visits[-1][1] += 1
        else:
            visits.append([today, 1])
        m.visits_total += 1
        return m.visits_total

    def _in_rollout(self, m: _Member) -> bool:
        if m.in_rollout is None:
            u = int(hashlib.sha256(f"{self.CAMPAIGN}:{m.id}".encode()).hexdigest()[:16], 16)
            scale = 2**64
            m.in_rollout = (
                self.HOLDOUT * scale <= u < (self.HOLDOUT + self.ROLLOUT * (1 - self.HOLDOUT)) * scale
            )
        return m.in_rollout

    def _earn(
        self,
        m: _Member,
        balance: str,
        units: int,
        at: datetime,
        day: date,
        rule: str,
        effects: list[tuple[Any, ...]],
        earned: list[tuple[str, None, int]],
        new_lots: list[str],
    ) -> None:
        if units <= 0:
            return
        self._seq += 1
        lot_id = f"{self._event_id}#{self._seq}"
        expires = self._expiry_of_day.get(day)
        if expires is None:
            expires = self._expiry_of_day[day] = _midnight(_add_months(day, 12) + timedelta(days=1))
        lot = _Lot(lot_id, units, at, expires, rule)
        lots = m.lots[balance]
        if lots and (lots[-1].expires_at, lots[-1].earned_at, lots[-1].id) > (expires, at, lot_id):
            bisect.insort(lots, lot, key=lambda x: (x.expires_at, x.earned_at, x.id))
        else:
            lots.append(lot)
        m.totals[balance] += units
        effects.append(("earn", rule, balance, units, lot_id, expires))
        earned.append((balance, None, units))
        new_lots.append(lot_id)

    def _coupon(
        self,
        m: _Member,
        policy: str,
        days: int,
        at: datetime,
        day: date,
        rule: str,
        effects: list[tuple[Any, ...]],
    ) -> None:
        self._seq += 1
        coupon_id = f"{self._event_id}#c{self._seq}"
        valid_until = _midnight(day + timedelta(days=days))
        m.coupons.append((coupon_id, policy, at, valid_until))
        effects.append(("coupon_issued", rule, coupon_id, policy, valid_until))

    def _change_tier(
        self, m: _Member, rank: int, at: datetime, reason: str, effects: list[tuple[Any, ...]]
    ) -> None:
        effects.append(("tier_changed", self.TIERS[rank], self.TIERS[m.rank], reason))
        m.rank, m.tier_since, m.grace_until = rank, at, None
        m.review_at = _later(at, months=12) if rank else None

    def _reevaluate_tier(self, m: _Member, at: datetime, day: date, effects: list[tuple[Any, ...]]) -> None:
        growth = m.totals["growth"]
        reached = 2 if growth >= 2000 else 1 if growth >= 500 else 0
        if reached > m.rank:
            self._change_tier(m, reached, at, "upgrade", effects)
            self._coupon(m, "upgrade-5", 30, at, day, f"tier:{self.TIERS[reached]}", effects)

    def _advance(self, m: _Member, until: datetime) -> None:
        """Expiry and tier reviews due at or before `until`, in time order, as the runtime does
        before an event: everything due at the earliest due instant (expiry before a review at the
        same instant), then look again, since a review can set a later review that is due too."""
        while True:
            expiry = min((lots[0].expires_at for lots in m.lots.values() if lots), default=None)
            if expiry is not None and expiry > until:
                expiry = None
            review = m.review_at if m.review_at is not None and m.review_at <= until else None
            if expiry is None and review is None:
                return
            instant = min(x for x in (expiry, review) if x is not None)
            if expiry == instant:
                for balance, lots in m.lots.items():
                    n = 0
                    while n < len(lots) and lots[n].expires_at <= instant:
                        n += 1
                    if n:
                        m.totals[balance] -= sum(lot.amount for lot in lots[:n])
                        del lots[:n]
            if review == instant:
                self._review(m, instant)
            if m.last_event_at is None or instant > m.last_event_at:  # as any event, a due one moves it
                m.last_event_at = instant

    def _review(self, m: _Member, at: datetime) -> None:
        growth = m.totals["growth"]
        if growth >= self.THRESHOLDS[m.rank]:
            m.grace_until, m.review_at = None, _later(at, months=12)
        elif m.grace_until is None:
            m.grace_until = m.review_at = _later(at, days=30)
        else:
            keep = max(i for i in range(m.rank + 1) if growth >= self.THRESHOLDS[i])
            self._change_tier(m, keep, at, "review", [])


class NaiveCoffee(HandCoffee):
    """The hand-written peer with each condition and amount of the scheme evaluated by plain
    simpleeval from its text on every evaluation (it parses the text each time). State handling is
    the hand-written peer's, so only expression evaluation differs. Names are built per event as
    the engine exposes them; `event.amount` is given as a Decimal so that `/` stays exact, as it
    does in the engine. `weekday(now) in (6, 7)` needs a literal tuple, which `simple_eval` refuses,
    so it goes through simpleeval's own `EvalWithCompoundTypes`, also parsing each time."""

    def __init__(self, scheme: Any) -> None:
        super().__init__()
        texts: dict[str, Any] = {rule.id: rule for rule in scheme.rules}
        texts.update({rule.id: rule for campaign in scheme.campaigns for rule in campaign.rules})

        def amounts(rule_id: str) -> list[str]:
            return [action.award.amount for action in texts[rule_id].then]

        self.base_when = texts["base-earn"].when
        self.base_points, self.base_growth = amounts("base-earn")
        self.visitor_when = texts["frequent-visitor"].when
        self.weekend_when = texts["weekend-double"].when
        (self.weekend_points,) = amounts("weekend-double")
        self.bonus_when = texts["weekend-tier-bonus"].when
        (self.bonus_points,) = amounts("weekend-tier-bonus")
        (self.welcome_points,) = amounts("welcome")
        self.functions = {"weekday": lambda t: datetime.fromtimestamp(t, TZ).isoweekday()}
        self.compound: set[str] = set()

    def _eval(self, text: str, names: dict[str, Any]) -> Any:
        if text not in self.compound:
            try:
                return simpleeval.simple_eval(text, names=names, functions=self.functions)
            except simpleeval.FeatureNotAvailable:
                self.compound.add(text)
        return simpleeval.EvalWithCompoundTypes(names=names, functions=self.functions).eval(text)

    @staticmethod
    def _units(value: Any) -> int:
        return (
            int(value.to_integral_value(rounding=ROUND_FLOOR)) if isinstance(value, Decimal) else int(value)
        )

    def _rules(self, m: _Member, event: Event, local: datetime, effects: list[tuple[Any, ...]]) -> None:
        at, day, kind = event.occurred_at, local.date(), event.type
        now = int(at.timestamp())
        names: dict[str, Any] = {
            "event": {"type": kind, "store": event.store, "channel": event.channel, "occurred_at": now},
            "member": {
                "tier": self.TIERS[m.rank],
                "tier_rank": m.rank,
                "tags": frozenset(),
                "joined_at": int(m.joined_at.timestamp()),
                "home_store": m.home_store,
            },
            "tier": {"id": self.TIERS[m.rank], "rank": m.rank, "points_multiplier": self.MULTIPLIERS[m.rank]},
            "campaign": {},
            "now": now,
        }
        if kind == "purchase":
            attributes = event.attributes
            if attributes.get("coupons"):
                raise Abort("the peers replay generated streams, which redeem no coupons")
            amount = attributes["amount"]
            names["event"].update(attributes)
            names["event"]["amount"] = Decimal(amount)
            names["counters"] = {"visits_30d": self._visit(m, day.toordinal())}
            earned: list[tuple[str, None, int]] = []
            new_lots: list[str] = []
            if self._eval(self.base_when, names):
                points = self._units(self._eval(self.base_points, names))
                growth = self._units(self._eval(self.base_growth, names))
                self._earn(m, "points", points, at, day, "base-earn", effects, earned, new_lots)
                self._earn(m, "growth", growth, at, day, "base-earn", effects, earned, new_lots)
            if self._eval(self.visitor_when, names) and m.latte_held < 12:
                self._coupon(m, "latte-free", 14, at, day, "frequent-visitor", effects)
                m.latte_held += 1
            bonus = (
                self._units(self._eval(self.bonus_points, names)) if self._eval(self.bonus_when, names) else None
            )
            double = None
            if self.CAMPAIGN_START <= at < self.CAMPAIGN_END and self._in_rollout(m):
                names["campaign"] = {
                    "id": self.CAMPAIGN,
                    "start": int(self.CAMPAIGN_START.timestamp()),
                    "end": int(self.CAMPAIGN_END.timestamp()),
                }
                if self._eval(self.weekend_when, names):
                    points = self._units(self._eval(self.weekend_points, names))
                    double = points if points <= self.BUDGET - self.budget_used else None
            self._weekend_bonus(m, double, bonus, at, day, effects, earned, new_lots)
            if earned or amount:
                m.earnings[event.id] = (amount, tuple(earned), tuple(new_lots))
        elif kind == "signup":
            names["counters"] = {"visits_30d": 0}
            self._earn(
                m,
                "points",
                self._units(self._eval(self.welcome_points, names)),
                at,
                day,
                "welcome",
                effects,
                [],
                [],
            )
        elif kind != "checkin":
            raise Abort(f"the peers replay signup, purchase and checkin events, not '{kind}'")


def peer_pass(peer: HandCoffee, events: list[Event]) -> HandCoffee:
    apply = peer.apply
    for event in events:
        apply(event)
    peer.finish()
    return peer


# --- checking a peer against the engine


def _engine_views(program: Program, run: Replay) -> dict[str, Any]:
    at = run.last_at
    assert at is not None
    today = at.astimezone(TZ).date().toordinal()
    counters = {c.name: c for cs in program.counters.values() for c in cs}
    views = {}
    for member_id, s in run.members.items():
        views[member_id] = {
            "tier": (s.tier, s.tier_since, s.tier_review_at, s.grace_until),
            "lots": {
                b: [(lot.id, lot.amount, lot.expires_at) for lot in s.lots.get(b, ())]
                for b in ("points", "growth")
            },
            "balances": {b: s.balance(b) for b in ("points", "growth")},
            "coupons": [(c.id, c.policy, c.issued_at, c.valid_until) for c in s.coupons],
            # the engine's own reading of a counter on the last day
            "visits_30d": _counter_value(
                s.counters.get("visits_30d", CounterState()),
                counters["visits_30d"],
                today - date(1970, 1, 1).toordinal(),
            ),
            "earnings": {k: (e.amount, e.earned, e.lots) for k, e in s.earnings.items()},
            "last_event_at": s.last_event_at,
        }
    return views


def _peer_views(peer: HandCoffee) -> dict[str, Any]:
    assert peer.last_at is not None
    today = peer.last_at.astimezone(TZ).date().toordinal()
    views = {}
    for member_id, m in peer.members.items():
        views[member_id] = {
            "tier": (peer.TIERS[m.rank], m.tier_since, m.review_at, m.grace_until),
            "lots": {
                b: [(lot.id, lot.amount, lot.expires_at) for lot in m.lots[b]] for b in ("points", "growth")
            },
            "balances": dict(m.totals),
            "coupons": list(m.coupons),
            "visits_30d": sum(n for d, n in m.visits if d >= today - 29),
            "earnings": dict(m.earnings),
            "last_event_at": m.last_event_at,
        }
    return views


def check_peer(name: str, program: Program, run: Replay, peer: HandCoffee) -> dict[str, Any]:
    """Abort unless the peer left every member exactly as the engine did."""
    want, got = _engine_views(program, run), _peer_views(peer)
    problems = []
    if set(want) != set(got):
        problems.append(f"members differ: engine {len(want)}, {name} {len(got)}")
    for member_id in sorted(set(want) & set(got)):
        for key in want[member_id]:
            if want[member_id][key] != got[member_id][key]:
                problems.append(
                    f"member {member_id} {key}: engine {want[member_id][key]!r:.300} "
                    f"!= {name} {got[member_id][key]!r:.300}"
                )
    budget = run.budgets.get("campaign:double-weekend", 0)
    if budget != peer.budget_used:
        problems.append(f"campaign budget used: engine {budget} != {name} {peer.budget_used}")
    if len(run.rejections) != peer.rejected:
        problems.append(f"rejected events: engine {len(run.rejections)} != {name} {peer.rejected}")
    if problems:
        raise Abort(
            f"the {name} peer does not produce the engine's effects ({len(problems)} differences):\n  "
            + "\n  ".join(problems[:10])
        )
    lots = sum(len(v["lots"]["points"]) + len(v["lots"]["growth"]) for v in want.values())
    tiers: dict[str, int] = {}
    for v in want.values():
        tiers[v["tier"][0]] = tiers.get(v["tier"][0], 0) + 1
    return {
        "members": len(want),
        "lots_held": lots,
        "coupons": sum(len(v["coupons"]) for v in want.values()),
        "points_outstanding": sum(v["balances"]["points"] for v in want.values()),
        "campaign_budget_used": budget,
        "tiers": dict(sorted(tiers.items())),
        "system_events": run.system,
    }


# --------------------------------------------------------------------------------------------------
# Generated schemes: N rules over 20 event types and 50 stores

SCALE_TYPES = [
    "dine_in",
    "takeaway",
    "delivery",
    "pickup",
    "catering",
    "gift_card",
    "merch",
    "subscription",
    "bakery",
    "bar",
    "breakfast",
    "lunch",
    "dinner",
    "ticket",
    "workshop",
    "parking",
    "car_wash",
    "fuel",
    "pharmacy",
    "repair",
]
SCALE_STORES = [f"store-{i:02d}" for i in range(1, 51)]


def scale_scheme(n_rules: int, seed: int = 7) -> dict[str, Any]:
    """A chain's scheme with `n_rules` rules. One in fifty (at least one) is chain-wide: the k-th
    is the base earning of the k-th event type. The rest each belong to one store and one event
    type: the j-th store rule to event type j // 50 at store j mod 50, so 10 rules fill 9 stores of
    one event type and 1,000 rules give one rule to each (event type, store) of 20 types and 49
    stores. Store rules rotate through six realistic shapes, two of them with frequency caps, with
    thresholds drawn at random; a rule's content depends only on its place (k or j), not on the
    size of the scheme, so the larger schemes add rules without changing the smaller ones'."""
    rng = random.Random()
    chain_wide = max(1, n_rules // 50)
    shapes = [
        lambda: (
            {"when": f"event.amount >= {rng.randrange(10, 100) * 100}"},
            [
                {
                    "award": {
                        "balance": "points",
                        "amount": "floor(event.amount / 100 * tier.points_multiplier)",
                    }
                },
                {"award": {"balance": "growth", "amount": "event.amount / 100"}},
            ],
            None,
        ),
        lambda: (
            {"when": f'member.tier != "member" and event.amount >= {rng.randrange(20, 120) * 100}'},
            [{"award": {"balance": "points", "amount": str(rng.randrange(5, 40) * 10)}}],
            [{"limit": 1, "per": "day"}],
        ),
        lambda: (
            {"when": f"weekday(now) == {rng.randint(1, 7)} and event.amount >= {rng.randrange(5, 50) * 100}"},
            [{"award": {"balance": "points", "amount": "event.amount / 100"}}],
            None,
        ),
        lambda: (
            {"when": f"counters.visits_30d >= {rng.randint(2, 12)}"},
            [{"award": {"balance": "growth", "amount": str(rng.randrange(1, 10) * 5)}}],
            None,
        ),
        lambda: (
            {"when": f"hour(now) < {rng.randint(9, 12)} and event.amount >= {rng.randrange(10, 40) * 100}"},
            [
                {
                    "award": {
                        "balance": "points",
                        "amount": f"round(event.amount / {rng.choice([100, 200, 500])})",
                    }
                }
            ],
            None,
        ),
        lambda: (
            {"when": 'event.channel == "app"'},
            [{"award": {"balance": "points", "amount": str(rng.randrange(1, 10) * 10)}}],
            [{"limit": 3, "per": "week"}],
        ),
    ]
    rule_list: list[dict[str, Any]] = []
    for k in range(chain_wide):
        event_type = SCALE_TYPES[k % len(SCALE_TYPES)]
        rule_list.append(
            {
                "id": f"r{k:04d}-{event_type.replace('_', '-')}",
                "on": event_type,
                "when": "event.amount > 0",
                "then": [
                    {
                        "award": {
                            "balance": "points",
                            "amount": "event.amount / 100 * tier.points_multiplier",
                        }
                    },
                    {"award": {"balance": "growth", "amount": "event.amount / 100"}},
                ],
            }
        )
    for j in range(n_rules - chain_wide):
        event_type = SCALE_TYPES[(j // len(SCALE_STORES)) % len(SCALE_TYPES)]
        rng.seed(seed * 100_003 + j)
        when, then, caps = shapes[j % len(shapes)]()
        rule: dict[str, Any] = {
            "id": f"r{chain_wide + j:04d}-{event_type.replace('_', '-')}",
            "on": event_type,
            **when,
            "then": then,
            "scope": {"stores": [SCALE_STORES[j % len(SCALE_STORES)]]},
        }
        if caps:
            rule["caps"] = caps
        rule_list.append(rule)
    return {
        "perkflow": 1,
        "id": f"chain-{n_rules}",
        "name": {"en": f"Chain with {n_rules} rules"},
        "timezone": "Asia/Shanghai",
        "balances": {
            "points": {"expiry": {"kind": "rolling", "after": "12mo"}},
            "growth": {"spendable": False},
        },
        "tiers": {
            "metric": {"balance": "growth"},
            "levels": [
                {"id": "member", "name": "Member", "threshold": 0, "benefits": {"points_multiplier": 1}},
                {
                    "id": "silver",
                    "name": "Silver",
                    "threshold": 1000,
                    "benefits": {"points_multiplier": 1.25},
                },
                {"id": "gold", "name": "Gold", "threshold": 5000, "benefits": {"points_multiplier": 1.5}},
            ],
        },
        "counters": {"visits_30d": {"kind": "count", "on": SCALE_TYPES, "window": "30d"}},
        "event_types": {
            t: {"description": f"A {t.replace('_', ' ')} order", "attributes": {"amount": {"type": "money"}}}
            for t in SCALE_TYPES
        },
        "rules": rule_list,
    }


def scale_yaml(n_rules: int) -> str:
    return yaml.safe_dump(scale_scheme(n_rules), sort_keys=False, allow_unicode=True)


def load_program(text: str, filename: str) -> Program:
    loaded = rules.loads(text, filename)
    if not loaded.ok or loaded.scheme is None:
        raise Abort(f"{filename} does not load: {[str(e) for e in loaded.errors[:3]]}")
    return engine.compile(loaded.scheme)


def scale_cells(scheme: dict[str, Any]) -> list[tuple[str, str]]:
    """The (event type, store) cells where an event meets exactly two rules: one rule of that
    store and one chain-wide rule of that event type."""
    chain_wide = {r["on"] for r in scheme["rules"] if "scope" not in r}
    cells: dict[tuple[str, str], int] = {}
    for r in scheme["rules"]:
        if "scope" in r:
            for store in r["scope"]["stores"]:
                cells[(r["on"], store)] = cells.get((r["on"], store), 0) + 1
    return sorted(cell for cell, n in cells.items() if n == 1 and cell[0] in chain_wide)


def scale_stream(
    members: int, events: int, cells: list[tuple[str, str]], seed: int = 11
) -> list[dict[str, Any]]:
    """Members sign up, then events over 60 days, each at a (type, store) cell drawn from `cells`
    (`scale_cells` of the scheme): every event meets two rules whatever the scheme's size, so the
    sizes compare the cost of a larger scheme, not of more rules met. Members, times, channels
    and amounts are drawn alike for every size."""
    rng = random.Random(seed)
    aim = random.Random(seed + 1)  # the cells apart, so the other draws do not depend on them
    begin = datetime(2026, 3, 2, 8, tzinfo=TZ)
    raws = []
    for m in range(members):
        raws.append(
            _raw(
                f"signup-{m}",
                "signup",
                f"c{m:05d}",
                begin + timedelta(seconds=m),
                rng.choice(SCALE_STORES),
                "app",
                {},
            )
        )
    at = begin + timedelta(hours=1)
    step = timedelta(days=60) / events
    for n in range(events):
        at += step
        kind, store = aim.choice(cells)
        raws.append(
            _raw(
                f"ev-{n:06d}",
                kind,
                f"c{rng.randrange(members):05d}",
                at,
                store,
                "app" if rng.random() < 0.3 else "pos",
                {"amount": rng.choice(MENU) * rng.choice([1, 1, 2, 3])},
            )
        )
    return raws


# --------------------------------------------------------------------------------------------------
# The sections


def bench_examples(rounds: int, min_pass_events: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for folder in (
        sorted(p for p in EXAMPLES.iterdir() if (p / "scheme.yaml").is_file()) if EXAMPLES.is_dir() else []
    ):
        events_file = folder / "events.jsonl"
        if not events_file.is_file():
            rows.append({"example": folder.name, "events": None, "note": "no events.jsonl yet"})
            continue
        program = load_program(
            (folder / "scheme.yaml").read_text(encoding="utf-8"), str(folder / "scheme.yaml")
        )
        raws = [
            json.loads(line) for line in events_file.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
        events, bad = parse_all(program, raws)
        if not events:
            rows.append({"example": folder.name, "events": 0, "note": "no event parses"})
            continue
        repeat = max(1, -(-min_pass_events // len(events)))

        def side(
            trace: bool, program: Program = program, events: list[Event] = events, repeat: int = repeat
        ) -> Callable[[], int]:
            def run() -> int:
                for _ in range(repeat):
                    engine_pass(program, events, trace)
                return repeat * len(events)

            return run

        sides = {"on": side(True), "off": side(False)}
        for s in sides.values():
            s()  # warm-up
        samples = interleaved(sides, rounds)
        rows.append(
            {
                "example": folder.name,
                "events": len(events),
                "unparsed": bad,
                "passes_per_sample": repeat,
                "trace_on": summary(samples["on"]),
                "trace_off": summary(samples["off"]),
            }
        )
    return rows


def bench_groups(rounds: int, min_pass_events: int) -> dict[str, Any]:
    """The coffee example with its evaluation group (weekend-bonus, policy best) against the same
    scheme with the group's policy set to `all` (every rule fires as if ungrouped), on the
    example's own events, trace on and off, all four sides interleaved."""
    on_text = COFFEE.read_text(encoding="utf-8")
    off_text = on_text.replace("    policy: best\n", "    policy: all\n")
    if on_text.count("    policy: best\n") != 1:
        raise Abort("examples/coffee/scheme.yaml no longer has its one 'policy: best' group")
    programs = {"on": load_program(on_text, str(COFFEE)), "off": load_program(off_text, str(COFFEE))}
    raws = [json.loads(line) for line in COFFEE_EVENTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    events, bad = parse_all(programs["on"], raws)
    if bad:
        raise Abort(f"{bad} events of examples/coffee/events.jsonl do not parse")
    rules = replay(programs["on"], raws).report()["rules"]
    lost = sum(counts.get("skipped:group_lost", 0) for counts in rules.values())
    repeat = max(1, -(-min_pass_events // len(events)))

    def side(program: Program, trace: bool) -> Callable[[], int]:
        def go() -> int:
            for _ in range(repeat):
                engine_pass(program, events, trace)
            return repeat * len(events)

        return go

    sides = {f"groups {g}, trace {t}": side(programs[g], t == "on") for t in ("on", "off") for g in ("on", "off")}
    for s in sides.values():
        s()  # warm-up
    samples = interleaved(sides, rounds)
    return {
        "events": len(events),
        "passes_per_sample": repeat,
        "group_lost_lines": lost,
        "sides": {name: summary(samples[name]) for name in sides},
        "ratio": {t: ratio(samples[f"groups on, trace {t}"], samples[f"groups off, trace {t}"]) for t in ("on", "off")},
    }


def bench_coffee(rounds: int, members: int, n_events: int, check_events: int) -> dict[str, Any]:
    coffee_text = COFFEE.read_text(encoding="utf-8")
    program = load_program(coffee_text, str(COFFEE))
    scheme = program.scheme
    raws = coffee_stream(members, n_events, date(2026, 1, 1), 6, seed=2026)
    events, bad = parse_all(program, raws)
    if bad:
        raise Abort(f"{bad} generated coffee events do not parse")
    # A longer stream, 18 months from July 2025: it reaches the 12-month expiry, the tier reviews
    # with their grace and downgrades, so the peers are checked on those paths too.
    long_events, bad = parse_all(
        program, coffee_stream(members, check_events, date(2025, 7, 1), 18, seed=2025)
    )
    if bad:
        raise Abort(f"{bad} generated coffee events do not parse")

    checks = {}
    for label, stream in (("timed stream", events), ("18-month stream", long_events)):
        on = engine_pass(program, stream, True)
        off = engine_pass(program, stream, False)
        if _engine_views(program, on) != _engine_views(program, off) or on.budgets != off.budgets:
            raise Abort(f"the engine with trace off differs from trace on ({label})")
        facts = {"hand-written": check_peer("hand-written", program, on, peer_pass(HandCoffee(), stream))}
        facts["naive"] = check_peer("naive", program, on, peer_pass(NaiveCoffee(scheme), stream))
        checks[label] = {"events": len(stream), **facts["hand-written"]}

    sides: dict[str, Callable[[], int]] = {
        "engine, trace on": lambda: (engine_pass(program, events, True), len(events))[1],
        "engine, trace off": lambda: (engine_pass(program, events, False), len(events))[1],
        "hand-written": lambda: (peer_pass(HandCoffee(), events), len(events))[1],
        "naive simpleeval": lambda: (peer_pass(NaiveCoffee(scheme), events), len(events))[1],
        "harness alone": lambda: harness_pass(events),
    }
    samples = interleaved(sides, rounds)
    kinds: dict[str, int] = {}
    for e in events:
        kinds[e.type] = kinds.get(e.type, 0) + 1
    return {
        "events": len(events),
        "members": members,
        "mix": dict(sorted(kinds.items())),
        "period": f"{events[0].occurred_at.date()} .. {events[-1].occurred_at.date()}",
        "checked": checks,
        "sides": {name: summary(s) for name, s in samples.items()},
        "engine_over_hand": {
            "on": ratio(samples["engine, trace on"], samples["hand-written"]),
            "off": ratio(samples["engine, trace off"], samples["hand-written"]),
        },
        "naive_over_hand": ratio(samples["naive simpleeval"], samples["hand-written"]),
        "naive_over_engine": {
            "on": ratio(samples["naive simpleeval"], samples["engine, trace on"]),
            "off": ratio(samples["naive simpleeval"], samples["engine, trace off"]),
        },
    }


def bench_scale(rounds: int, sizes: list[int], members: int, n_events: int) -> dict[str, Any]:
    programs, streams, facts = {}, {}, {}
    for n in sizes:
        scheme = scale_scheme(n)
        cells = scale_cells(scheme)
        raws = scale_stream(members, n_events, cells)
        program = load_program(yaml.safe_dump(scheme, sort_keys=False, allow_unicode=True), f"chain-{n}.yaml")
        events, bad = parse_all(program, raws)
        if bad:
            raise Abort(f"{bad} scale events do not parse against chain-{n}")
        programs[n], streams[n] = program, events
        fired = met = 0

        def keep(decision: Decision) -> None:
            nonlocal fired, met
            if decision.event_type not in ("signup", "expiry", "tier_review"):
                met += sum(1 for line in decision.trace if not line.rule.startswith(("tier", "counter:")))
                fired += sum(1 for line in decision.trace if line.outcome == "fired")

        run = Replay(program, trace=True, keep=keep)
        for event in events:
            run.apply(event)
        run.finish()
        counted = sum(1 for e in events if e.type != "signup")
        facts[n] = {
            "cells": len(cells),
            "rules_met_per_event": met / counted,
            "rules_fired_per_event": fired / counted,
        }

    sides: dict[str, Callable[[], int]] = {}
    for n in sizes:
        for trace in (True, False):
            sides[f"{n}/{'on' if trace else 'off'}"] = lambda p=programs[n], e=streams[n], t=trace: (
                engine_pass(p, e, t),
                len(e),
            )[1]
    for s in sides.values():
        s()
    samples = interleaved(sides, rounds)
    out: dict[str, Any] = {"events": len(streams[sizes[0]]), "members": members, "sizes": {}}
    for n in sizes:
        out["sizes"][n] = {
            **facts[n],
            "trace_on": summary(samples[f"{n}/on"]),
            "trace_off": summary(samples[f"{n}/off"]),
        }
    lo, hi = sizes[0], sizes[-1]
    out["growth"] = {
        "sizes": [lo, hi],
        "on": ratio(samples[f"{hi}/on"], samples[f"{lo}/on"]),
        "off": ratio(samples[f"{hi}/off"], samples[f"{lo}/off"]),
    }
    return out


_RSS_PROBE = r"""
import gc, sys
from perkflow import engine, rules
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * __import__("os").sysconf("SC_PAGE_SIZE")
text = open(sys.argv[1], encoding="utf-8").read()
small = open(sys.argv[2], encoding="utf-8").read()
engine.compile(rules.loads(small).scheme)  # every lazy import warmed on a small scheme
clear = getattr(__import__("perkflow.rules.expr", fromlist=["x"]), "clear_compiled", None)
if clear is not None:
    clear()
gc.collect()
before = rss()
program = engine.compile(rules.loads(text).scheme)
gc.collect()
print(rss() - before)
"""


def forget_compiled() -> None:
    """Empty the engine's cache of compiled expressions, if it has one, so a load is cold."""
    from perkflow.rules import expr

    clear = getattr(expr, "clear_compiled", None)
    if clear is not None:
        clear()


def bench_load(n_rules: int, repeats: int) -> dict[str, Any]:
    """Each load starts cold: the cache of compiled expressions is emptied first."""
    text = scale_yaml(n_rules)
    load_program(scale_yaml(10), "warm.yaml")
    times, walls = [], []
    for _ in range(repeats):
        forget_compiled()
        gc.collect()
        cpu0, t0 = time.process_time(), time.perf_counter()
        program = load_program(text, f"chain-{n_rules}.yaml")
        times.append(time.process_time() - cpu0)
        walls.append(time.perf_counter() - t0)
    del program
    parts = []
    for _ in range(repeats):
        forget_compiled()
        gc.collect()
        t0 = time.process_time()
        loaded = rules.loads(text, "chain.yaml")
        t1 = time.process_time()
        engine.compile(loaded.scheme)  # type: ignore[arg-type]
        parts.append((t1 - t0, time.process_time() - t1))
    forget_compiled()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    kept = load_program(text, f"chain-{n_rules}.yaml")
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    rss = None
    if Path("/proc/self/statm").exists():
        with tempfile.TemporaryDirectory() as tmp:
            big, small = Path(tmp, "big.yaml"), Path(tmp, "small.yaml")
            big.write_text(text, encoding="utf-8")
            small.write_text(scale_yaml(10), encoding="utf-8")
            probe = subprocess.run(
                [sys.executable, "-c", _RSS_PROBE, str(big), str(small)],
                capture_output=True,
                text=True,
                check=False,
            )
            if probe.returncode == 0:
                rss = int(probe.stdout.strip()) / 2**20
    from perkflow.rules.check import compile_all

    exprs, _ = compile_all(rules.loads(text, "chain.yaml").scheme)  # type: ignore[arg-type]
    return {
        "rules": n_rules,
        "expressions": len(exprs),
        "distinct_expressions": len({e.source for e in exprs.values()}),
        "yaml_bytes": len(text.encode()),
        "load_s": statistics.median(times),
        "load_s_all": times,
        "load_wall_s": statistics.median(walls),
        "loads_s": statistics.median(p[0] for p in parts),
        "compile_s": statistics.median(p[1] for p in parts),
        "repeats": repeats,
        "tracemalloc_retained_mib": (current - before) / 2**20,
        "tracemalloc_peak_mib": (peak - before) / 2**20,
        "rss_delta_mib": rss,
    }


# --------------------------------------------------------------------------------------------------
# Output


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _row(name: str, s: dict[str, float], target: str = "") -> str:
    return (
        f"  {name:<30}{s['us_per_event']:>9.2f}  {s['min_us']:>8.2f}..{s['max_us']:<8.2f}"
        f"{s['events_per_s']:>10,.0f}{s['wall_us_per_event']:>10.2f}  {target}"
    ).rstrip()


_HEAD = f"  {'':<30}{'µs/event':>9}  {'(min..max)':^18}{'events/s':>10}{'wall µs':>10}  target"


def render(results: dict[str, Any]) -> str:
    env = results["environment"]
    quick = "  QUICK RUN: too few rounds and events to be a measurement." if env["quick"] else ""
    lines = [
        "Perkflow engine benchmark",
        "=========================",
        f"Python {env['python']} ({env['machine']}), {env['cpus']} CPUs, this process pinned to CPU "
        f"{env['pinned_cpu']}; {env['rounds']} rounds, sides interleaved, median.{quick}",
        f"Machine speed: sum(range(1000)) takes {env['calibration_us']:.1f} µs here "
        "(about 6 µs on a current desktop).",
        "Timed per event: the replay step of engine/simulate.py without its report: the time-driven",
        "events due (expiry, tier reviews), evaluate, the new state and the budget uses, on Event",
        "objects parsed beforehand (parse_event is outside the timed loop). Times are the CPU time",
        "of this process per event (what one core spends); wall time beside it also counts the",
        "moments other work on the machine took the core.",
        "",
    ]
    coffee = results["coffee"]
    mix = ", ".join(f"{v:,} {k}" for k, v in coffee["mix"].items())
    lines += [
        "1. Coffee workload: examples/coffee/scheme.yaml on a generated stream",
        "---------------------------------------------------------------------",
        f"  {coffee['events']:,} events ({mix}), {coffee['members']} members, {coffee['period']}.",
        "  Peers, each checked equal to the engine before it is timed (same lots with ids, amounts and",
        "  expiry, balances, tier with its dates, coupons, visits_30d, earnings, campaign budget, for",
        "  every member):",
    ]
    for label, c in coffee["checked"].items():
        lines.append(
            f"    on the {label}: {c['events']:,} events, {c['lots_held']:,} lots, {c['coupons']:,} coupons, "
            f"tiers {c['tiers']}, {c['system_events']:,} expiry/review events"
        )
    lines += [
        "  hand-written: a plain function for this scheme over its own mutable state: lots per balance",
        "    with 12-month expiry, 30-day visits, coupons with the per-member cap, tier upgrade, review",
        "    and grace, the campaign's window, rollout/holdout hash (once per member) and budget, what",
        "    each purchase earned (for refunds), late-event refusal, a list of effects per event.",
        "  naive: the same state handling, with every condition and amount evaluated by simpleeval from its",
        "    text, parsed again on every evaluation.",
        "",
        _HEAD,
    ]
    sides = coffee["sides"]
    for name in ("engine, trace on", "engine, trace off"):
        s = sides[name]
        ok = s["events_per_s"] >= TARGET_EVENTS_PER_S
        lines.append(_row(name, s, f">= {TARGET_EVENTS_PER_S:,} ev/s  {verdict(ok)}"))
    for name in ("hand-written", "naive simpleeval", "harness alone"):
        lines.append(_row(name, sides[name]))
    lines.append("  ratios, median of the per-round ratios:")
    for t in ("on", "off"):
        r = coffee["engine_over_hand"][t]
        lines.append(
            f"    engine (trace {t:<3}) / hand-written{'':<8}{r:>7.2f}x  target <= {TARGET_VS_HAND:g}x   "
            f"{verdict(r <= TARGET_VS_HAND)}"
        )
    for t in ("on", "off"):
        r = coffee["naive_over_engine"][t]
        lines.append(
            f"    naive / engine (trace {t:<3}){'':<14}{r:>7.2f}x  target >= {TARGET_VS_NAIVE:g}x  "
            f"{verdict(r >= TARGET_VS_NAIVE)}"
        )
    r = coffee["naive_over_hand"]
    lines.append(
        f"    naive / hand-written{'':<20}{r:>7.2f}x  (the most any engine could reach against this peer)"
    )
    naive_us, hand_us = sides["naive simpleeval"]["us_per_event"], sides["hand-written"]["us_per_event"]
    lines += [
        f"  The naive peer does the hand-written peer's state handling, so {(1 - 1 / r) * 100:.0f}% of its time is",
        f"  simpleeval parsing and evaluating. 20x faster than it is {naive_us / TARGET_VS_NAIVE:.1f} µs/event: "
        f"{hand_us / (naive_us / TARGET_VS_NAIVE):.1f}x faster",
        "  than the hand-written function itself.",
    ]
    lines += [
        "",
        "2. Examples: the engine on examples/<name>/events.jsonl",
        "-------------------------------------------------------",
    ]
    if not results["examples"]:
        lines.append("  no examples found")
    else:
        lines.append(_HEAD)
    for ex in results["examples"]:
        if ex.get("note"):
            lines.append(f"  {ex['example']:<30}{ex['note']}")
            continue
        for t in ("on", "off"):
            s = ex[f"trace_{t}"]
            target = ""
            if ex["example"] == "coffee":
                target = (
                    f">= {TARGET_EVENTS_PER_S:,} ev/s  {verdict(s['events_per_s'] >= TARGET_EVENTS_PER_S)}"
                )
            lines.append(_row(f"{ex['example']} ({ex['events']:,} ev), trace {t}", s, target))
        if ex.get("unparsed"):
            lines.append(f"    ({ex['unparsed']} events of the file do not parse; they are left out)")
    scale = results["scale"]
    lines += [
        "",
        "3. Scale: generated schemes over 20 event types and 50 stores",
        "-------------------------------------------------------------",
        f"  {scale['events']:,} events for each size ({scale['members']} members, the same times, members,",
        "  channels and amounts). One rule in fifty is chain-wide (at least one); each other rule belongs",
        "  to one store and one event type. Every event is aimed at a (type, store) cell that has one",
        "  store rule and one chain-wide rule, so it meets two rules at every size: the sizes compare the",
        "  cost of a larger scheme, not of more rules met. 'cells' is how many such cells the scheme has,",
        "  'met' counts the rules an event is checked against, 'fired' those that fire (their actions",
        "  differ by size: the rules met are not the same rules).",
        f"  {'rules':>6}{'cells':>7}{'met/event':>11}{'fired/event':>13}{'µs/event trace on':>20}{'trace off':>11}",
    ]
    for n, s in scale["sizes"].items():
        lines.append(
            f"  {n:>6}{s['cells']:>7}{s['rules_met_per_event']:>11.2f}{s['rules_fired_per_event']:>13.2f}"
            f"{s['trace_on']['us_per_event']:>20.2f}{s['trace_off']['us_per_event']:>11.2f}"
        )
    g = scale["growth"]
    for t in ("on", "off"):
        lines.append(
            f"  {g['sizes'][1]:,}-rule / {g['sizes'][0]:,}-rule time per event, trace {t:<3}  {g[t]:>6.2f}x  "
            f"target <= {TARGET_SCALE:g}x  {verdict(g[t] <= TARGET_SCALE)}"
        )
    load = results["load"]
    rss = load["rss_delta_mib"]
    memory = max(load["tracemalloc_retained_mib"], rss or 0.0)
    rss_text = f"{rss:.1f} MiB" if rss is not None else "n/a"
    lines += [
        "",
        f"4. Loading the {load['rules']:,}-rule scheme from YAML ({load['yaml_bytes'] / 1024:,.0f} KiB)",
        "----------------------------------------------------",
        f"  {load['expressions']:,} expressions, {load['distinct_expressions']:,} different texts. "
        "Each load starts cold",
        "  (the cache of compiled expressions emptied first).",
        f"  rules.loads + engine.compile, CPU time, median of {load['repeats']}: {load['load_s'] * 1000:,.0f} ms "
        f"(timed apart: loads {load['loads_s'] * 1000:,.0f}, compile {load['compile_s'] * 1000:,.0f};",
        f"  wall time {load['load_wall_s'] * 1000:,.0f} ms)"
        f"   target < {TARGET_LOAD_S * 1000:,.0f} ms  {verdict(load['load_s'] < TARGET_LOAD_S)}",
        f"  memory it adds: tracemalloc, kept {load['tracemalloc_retained_mib']:.1f} MiB "
        f"(peak {load['tracemalloc_peak_mib']:.1f} MiB while loading); "
        f"RSS growth in a fresh process {rss_text}",
        f"  the larger of kept and RSS growth: {memory:.1f} MiB   target < {TARGET_MEMORY_MIB:g} MiB  "
        f"{verdict(memory < TARGET_MEMORY_MIB)}",
    ]
    groups = results["groups"]
    lines += [
        "",
        "5. Evaluation groups: examples/coffee with its group, and with the group's policy set to all",
        "--------------------------------------------------------------------------------------------",
        f"  {groups['events']:,} events of examples/coffee/events.jsonl, {groups['passes_per_sample']} passes a sample; "
        f"{groups['group_lost_lines']} trace lines group_lost with the group on.",
        _HEAD,
    ]
    for name, s in groups["sides"].items():
        lines.append(_row(name, s))
    for t in ("on", "off"):
        r = groups["ratio"][t]
        lines.append(
            f"  groups on / groups off, trace {t:<3}  {r:>6.2f}x  target <= {TARGET_GROUPS:g}x  {verdict(r <= TARGET_GROUPS)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run with small streams and 3 rounds (not a measurement)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    parser.add_argument("--rounds", type=int, help="rounds per comparison (default 10, quick 3)")
    parser.add_argument("--cpu", type=int, help="the CPU to pin to (default: the last one allowed)")
    args = parser.parse_args(argv)
    quick = args.quick
    rounds = args.rounds or (3 if quick else 10)
    cpu = pin_to_one_core(args.cpu)
    results: dict[str, Any] = {
        "environment": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "pinned_cpu": cpu,
            "rounds": rounds,
            "quick": quick,
            "calibration_us": calibration(),
            "timed": "replay step without report-building on pre-parsed events; parse_event excluded",
        }
    }
    try:
        results["coffee"] = bench_coffee(
            rounds,
            members=30 if quick else 200,
            n_events=1_000 if quick else 20_000,
            check_events=800 if quick else 8_000,
        )
        results["examples"] = bench_examples(rounds, min_pass_events=300 if quick else 5_000)
        results["scale"] = bench_scale(
            rounds, [10, 100, 1000], members=100 if quick else 300, n_events=600 if quick else 8_000
        )
        results["load"] = bench_load(1000, 1 if quick else 5)
        results["groups"] = bench_groups(rounds, min_pass_events=300 if quick else 5_000)
    except Abort as abort:
        print(f"benchmark aborted: {abort}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    else:
        print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
