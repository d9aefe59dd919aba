"""What a member still needs: for every tier, reward and coupon, in numbers and in words.

`progress(program, state, at)` is pure, like `evaluate`: the scheme and the member as they stand
at `at` in, a list of `Need`s out. Each says what is measured (`unit`), what the member has, what
is needed and what is lacking, and a sentence in English and Chinese ("120 more growth to Gold",
"再获得 120 成长值即可升级为金卡", "2 more check-in days for the Seven-day badge"). Lots that are pending or already expired at `at` do not count,
because they cannot be spent or do not count for a tier any more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from perkflow.rules.expr import EvalError
from perkflow.rules.models import Text, text_in

from .calendar import EPOCH_ORDINAL, period_key
from .evaluate import _counter_value, _member_names, _round, _Work, goal_progress
from .events import Event
from .program import Program
from .state import CounterState, GoalState, MemberState

LANGS = ("en", "zh-CN")
_SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "HKD": "HK$", "TWD": "NT$", "SGD": "S$"}
_NO_MINOR_UNIT = frozenset({"JPY", "KRW", "VND"})


@dataclass(frozen=True, slots=True)
class Need:
    kind: str  # tier, tier_keep, reward, coupon, achievement
    id: str  # the tier, reward, coupon or achievement id
    name: Mapping[str, str]  # per language
    unit: str  # the balance or counter measured; "money" for a coupon's minimum spend; "" for an expression
    have: int
    need: int
    met: bool
    text: Mapping[str, str]  # the sentence per language
    reason: str = ""  # for what cannot be had whatever the member does: out_of_stock, limit_reached, completed
    until: datetime | None = None  # tier_keep: the review date; coupon: when it stops being valid

    @property
    def lacking(self) -> int:
        return max(self.need - self.have, 0)

    def to_dict(self, tz: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind, "id": self.id, "name": dict(self.name), "unit": self.unit,
            "have": self.have, "need": self.need, "lacking": self.lacking, "met": self.met,
        }
        if self.reason:
            out["reason"] = self.reason
        if self.until is not None:
            out["until"] = (self.until.astimezone(tz) if tz is not None else self.until).isoformat()
        out["text"] = dict(self.text)
        return out


def money(amount: int, currency: str) -> str:
    """An amount in minor units written for people: ¥30, ¥30.50, USD 4.99."""
    symbol = _SYMBOLS.get(currency, currency + " ")
    if currency in _NO_MINOR_UNIT:
        return f"{symbol}{amount:,}"
    whole, cents = divmod(amount, 100)
    return f"{symbol}{whole:,}" + (f".{cents:02d}" if cents else "")


def _names(text: Text | None, fallback: str) -> dict[str, str]:
    return {lang: text_in(text, lang) or fallback for lang in LANGS}


def _spendable(state: MemberState, balance: str, at: datetime) -> int:
    """Units that count at `at`: neither pending nor expired, less the debt."""
    total = 0
    for lot in state.lots.get(balance, ()):
        if (lot.available_at is None or lot.available_at <= at) and (lot.expires_at is None or lot.expires_at > at):
            total += lot.amount
    return total - state.debts.get(balance, 0)


def progress(
    program: Program,
    state: MemberState,
    at: datetime,
    *,
    order_amount: int | None = None,
    budgets: Mapping[str, int] | None = None,
) -> list[Need]:
    """Every tier above the member's, the current tier's review (保级), every reward of the
    catalogue, every coupon the member can use at `at` and every achievement. `order_amount` (minor units) prices the
    coupons' minimum spend against an order; `budgets` (units used, as for `evaluate`) tells a
    reward out of stock."""
    needs = _tiers(program, state, at)
    needs += _rewards(program, state, at, budgets or {})
    needs += _coupons(program, state, at, order_amount)
    needs += _achievements(program, state, at)
    return needs


def _unit_names(program: Program, balance: str) -> dict[str, str]:
    names = _names(program.balances[balance].label, balance)
    english = names["en"]
    if english[:2] != english[:2].upper():  # "Growth" reads "growth" inside a sentence; "VIP points" stays
        names["en"] = english[0].lower() + english[1:]
    return names


def _amount(program: Program, balance: str, units: int) -> str:
    if program.balances[balance].unit == "money":
        return money(units, program.scheme.currency)
    return f"{units:,}"


def _tiers(program: Program, state: MemberState, at: datetime) -> list[Need]:
    tiers = program.scheme.tiers
    if tiers is None:
        return []
    metric = tiers.metric
    if metric.balance is not None:
        have = _spendable(state, metric.balance, at)
        unit, units = metric.balance, _unit_names(program, metric.balance)

        def amount(n: int) -> str:
            return _amount(program, unit, n)
    else:
        unit = metric.counter or ""
        units = {lang: unit for lang in LANGS}

        def amount(n: int) -> str:
            return f"{n:,}"
        if metric.counter is not None:
            today = at.astimezone(program.tz).date().toordinal() - EPOCH_ORDINAL
            have = _counter_value(state.counters.get(metric.counter, CounterState()), program.counter_by_name[metric.counter], today)
        else:
            value = _metric_expr(program, state, at)
            if value is None:
                return []  # the expression reads the event: there is no number without one
            have = value
    current = program.rank.get(state.tier or "", 0)
    needs: list[Need] = []
    for level in program.levels[current + 1:]:
        names = _names(level.name, level.id)
        lacking = amount(max(level.threshold - have, 0))
        if have >= level.threshold:
            text = {"en": f"enough {units['en']} for {names['en']}: it applies from the next event",
                    "zh-CN": f"{units['zh-CN']}已达到{names['zh-CN']}的要求，下一笔交易后生效"}
        else:
            text = {"en": f"{lacking} more {units['en']} to {names['en']}",
                    "zh-CN": f"再获得 {lacking} {units['zh-CN']}即可升级为{names['zh-CN']}"}
        needs.append(Need("tier", level.id, names, unit, have, level.threshold, have >= level.threshold, text))
    review_at = state.grace_until or state.tier_review_at
    if tiers.downgrade.kind == "review" and review_at is not None and current > 0:
        level = program.levels[current]
        retain = level.retain if level.retain is not None else level.threshold
        names = _names(level.name, level.id)
        day = review_at.astimezone(program.tz).date().isoformat()
        if have >= retain:
            text = {"en": f"enough {units['en']} to keep {names['en']} at the review on {day}",
                    "zh-CN": f"{units['zh-CN']}已满足{names['zh-CN']}保级要求（{day} 评审）"}
        else:
            lacking = amount(retain - have)
            text = {"en": f"{lacking} more {units['en']} by {day} to keep {names['en']}",
                    "zh-CN": f"{day} 前再获得 {lacking} {units['zh-CN']}即可保级{names['zh-CN']}"}
        needs.append(Need("tier_keep", level.id, names, unit, have, retain, have >= retain, text, until=review_at))
    return needs


def _metric_expr(program: Program, state: MemberState, at: datetime) -> int | None:
    assert program.metric_expr is not None
    work = _Work(program, state, Event("progress", "progress", state.member_id, at), {}, False)
    today = work.day.toordinal() - EPOCH_ORDINAL
    counters = {
        name: _counter_value(state.counters.get(name, CounterState()), compiled, today)
        for name, compiled in program.counter_by_name.items()
    }
    tier = program.tier_names.get(state.tier or "", {"id": "", "rank": 0})
    data = {"member": _member_names(program, work, True), "counters": counters, "tier": tier, "now": int(at.timestamp())}
    try:
        return _round(program.metric_expr(data), "floor")
    except EvalError:
        return None


def _rewards(program: Program, state: MemberState, at: datetime, budgets: Mapping[str, int]) -> list[Need]:
    needs: list[Need] = []
    for reward_id, reward in program.scheme.rewards.items():
        names = _names(reward.name, reward_id)
        balance, cost = reward.cost.balance, reward.cost.amount
        have = _spendable(state, balance, at)
        units = _unit_names(program, balance)
        price = _amount(program, balance, cost)
        reason = ""
        if reward.stock is not None and budgets.get(f"reward:{reward_id}", 0) >= reward.stock:
            reason = "out_of_stock"
            text = {"en": f"{names['en']} is out of stock", "zh-CN": f"{names['zh-CN']}已兑完"}
        elif reward.per_member is not None and state.rewards.get(reward_id, 0) >= reward.per_member:
            reason = "limit_reached"
            text = {"en": f"you have redeemed {names['en']} the most times allowed ({reward.per_member})",
                    "zh-CN": f"{names['zh-CN']}每位会员最多兑换 {reward.per_member} 次，已达上限"}
        elif have >= cost:
            text = {"en": f"{names['en']} is available now for {price} {units['en']}",
                    "zh-CN": f"现在即可用 {price} {units['zh-CN']}兑换{names['zh-CN']}"}
        else:
            lacking = _amount(program, balance, cost - max(have, 0))
            text = {"en": f"{names['en']} is available when you have {price} {units['en']}: {lacking} more",
                    "zh-CN": f"{names['zh-CN']}需要 {price} {units['zh-CN']}，还差 {lacking}"}
        needs.append(Need("reward", reward_id, names, balance, have, cost, have >= cost and not reason, text, reason))
    return needs


def _coupons(program: Program, state: MemberState, at: datetime, order_amount: int | None) -> list[Need]:
    needs: list[Need] = []
    currency = program.scheme.currency
    for coupon in state.coupons:
        policy = program.scheme.coupons.get(coupon.policy)
        if policy is None or not coupon.usable_at(at):
            continue
        names = _names(policy.name, coupon.policy)
        need = policy.min_spend
        have = order_amount or 0
        if need == 0:
            text = {"en": f"{names['en']} can be used on any order", "zh-CN": f"{names['zh-CN']}无门槛，任意订单可用"}
        elif order_amount is None:
            text = {"en": f"{names['en']} can be used on an order of {money(need, currency)} or more",
                    "zh-CN": f"{names['zh-CN']}满 {money(need, currency)} 可用"}
        elif have >= need:
            text = {"en": f"{names['en']} can be used on this order", "zh-CN": f"本单可使用{names['zh-CN']}"}
        else:
            lacking = money(need - have, currency)
            text = {"en": f"spend {lacking} more to use {names['en']}",
                    "zh-CN": f"再消费 {lacking} 即可使用{names['zh-CN']}"}
        needs.append(Need("coupon", coupon.id, names, "money", have, need, have >= need, text, until=coupon.valid_until))
    return needs


_GOAL_UNITS = {"count": ("event", "events"), "streak": ("day in a row", "days in a row")}
_PERIOD_WORDS = {"month": ("this month", "本月"), "quarter": ("this quarter", "本季度"), "year": ("this year", "今年")}


def _achievements(program: Program, state: MemberState, at: datetime) -> list[Need]:
    """Each achievement: what still counts towards it at `at`, or that it is done (for a goal
    that repeats per period: done for this period)."""
    needs: list[Need] = []
    day = at.astimezone(program.tz).date()
    for goal_id, goal in program.goal_by_id.items():
        achievement = goal.achievement
        names = _names(achievement.name, goal_id)
        goal_state = state.goals.get(goal_id, GoalState())
        have, target = goal_progress(goal, goal_state, day), achievement.target
        key = period_key(day, achievement.period)
        done = goal_state.completions > 0 if achievement.repeat == "once" else goal_state.completed_in == key
        when = _PERIOD_WORDS.get(achievement.period, ("", ""))
        if done:
            text = {"en": f"{names['en']} is done" + (f" {when[0]}" if achievement.repeat == "per_period" else ""),
                    "zh-CN": (when[1] if achievement.repeat == "per_period" else "") + f"已完成{names['zh-CN']}"}
            needs.append(Need("achievement", goal_id, names, achievement.measure, have, target, True, text, "completed"))
            continue
        lacking = target - have
        if achievement.measure == "sum":
            en, zh = f"{lacking:,} more", f"再累计 {lacking:,} "  # what `of` adds up is the scheme's to name
        else:
            singular, plural = _GOAL_UNITS[achievement.measure]
            en = f"{lacking} more {singular if lacking == 1 else plural}"
            zh = f"再连续 {lacking} 天" if achievement.measure == "streak" else f"再完成 {lacking} 次"
        period = f" {when[0]}" if achievement.measure != "streak" and when[0] else ""
        text = {"en": f"{en}{period} for {names['en']}",
                "zh-CN": f"{when[1] if achievement.measure != 'streak' else ''}{zh}即可获得{names['zh-CN']}"}
        needs.append(Need("achievement", goal_id, names, achievement.measure, have, target, False, text))
    return needs
