"""Merging two members (a duplicate account found later): what the survivor holds afterwards.

Pure. The survivor keeps its id, home store and birthday; it takes every lot, debt, coupon and
earnings record of the absorbed member, so a later refund of the absorbed member's purchase takes
back what that purchase earned. Counters add up day by day, rewards redeemed add up, tags join,
frequency caps keep the higher use in the same period (a once-per-member rule never fires twice
for one person), and the member keeps the higher of the two tiers. Achievements keep the further
progress in the later period and the more completions, with the earlier badge date, so a goal
completed once is never completed again by joining two accounts.
"""

from __future__ import annotations

from .evaluate import lot_order
from .program import Program
from .state import CounterState, GoalState, MemberState


def _counter(a: CounterState, b: CounterState) -> CounterState:
    days: dict[int, int] = {}
    for day, value in (*a.days, *b.days):
        days[day] = days.get(day, 0) + value
    later = max(a, b, key=lambda c: (c.last_day, c.streak))
    return CounterState(a.total + b.total, tuple(sorted(days.items())), later.last_day, later.streak)


def _goal(a: GoalState, b: GoalState) -> GoalState:
    later = max(a, b, key=lambda g: (g.period, g.last_day, g.progress))  # period keys sort in time order
    dates = [g.earned_at for g in (a, b) if g.earned_at is not None]
    return GoalState(
        later.period, later.progress, later.last_day, max(a.completions, b.completions),
        max(a.completed_in, b.completed_in), min(dates) if dates else None,
    )


def merge_states(program: Program, survivor: MemberState, absorbed: MemberState) -> MemberState:
    lots = {}
    for balance in sorted(set(survivor.lots) | set(absorbed.lots)):
        both = (*survivor.lots.get(balance, ()), *absorbed.lots.get(balance, ()))
        lots[balance] = (
            tuple(sorted(both, key=lot_order(program, balance))) if balance in program.balances else both
        )
    debts = {
        b: survivor.debts.get(b, 0) + absorbed.debts.get(b, 0)
        for b in set(survivor.debts) | set(absorbed.debts)
    }
    counters = {
        name: _counter(
            survivor.counters.get(name, CounterState()), absorbed.counters.get(name, CounterState())
        )
        for name in sorted(set(survivor.counters) | set(absorbed.counters))
    }
    caps = dict(absorbed.caps)
    for key, mine in survivor.caps.items():
        theirs = caps.get(key)
        if theirs is None or mine[0] > theirs[0]:  # period labels of one key sort in time order
            caps[key] = mine
        elif mine[0] == theirs[0]:
            caps[key] = (mine[0], max(mine[1], theirs[1]))
    rewards = {
        r: survivor.rewards.get(r, 0) + absorbed.rewards.get(r, 0)
        for r in set(survivor.rewards) | set(absorbed.rewards)
    }
    higher = (
        absorbed
        if program.rank.get(absorbed.tier or "", 0) > program.rank.get(survivor.tier or "", 0)
        else survivor
    )
    last = [s.last_event_at for s in (survivor, absorbed) if s.last_event_at is not None]
    return MemberState(
        member_id=survivor.member_id,
        joined_at=min(survivor.joined_at, absorbed.joined_at),
        tier=higher.tier,
        tier_since=higher.tier_since,
        tier_review_at=higher.tier_review_at,
        grace_until=higher.grace_until,
        tier_override=survivor.tier_override,
        tags=survivor.tags | absorbed.tags,
        home_store=survivor.home_store,
        birthday=survivor.birthday or absorbed.birthday,
        lots=lots,
        debts={b: d for b, d in debts.items() if d},
        counters=counters,
        coupons=tuple(sorted((*survivor.coupons, *absorbed.coupons), key=lambda c: (c.issued_at, c.id))),
        caps=caps,
        earnings={**absorbed.earnings, **survivor.earnings},
        rewards=rewards,
        last_event_at=max(last) if last else None,
        goals={
            g: _goal(survivor.goals.get(g, GoalState()), absorbed.goals.get(g, GoalState()))
            for g in sorted(set(survivor.goals) | set(absorbed.goals))
        },
        segment=survivor.segment,  # the survivor's stored segment until the next computation
        segment_on=survivor.segment_on,
        referral=survivor.referral or absorbed.referral,  # who invited the survivor wins: one referrer a member
    )
