"""A scheme compiled for evaluation: expressions compiled, rules indexed, windows resolved.

Built once per scheme version. The index means an event only meets the rules that can match
it: its event type, and its store when a rule is scoped to stores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from perkflow.rules.builtins import PAYING_ATTRIBUTES, event_types
from perkflow.rules.canonical import content_hash
from perkflow.rules.check import compile_all
from perkflow.rules.expr import Expr, Functions, functions_for
from perkflow.rules.load import Loc
from perkflow.rules.models import (
    Achievement,
    Action,
    AddTag,
    Award,
    Balance,
    Campaign,
    Counter,
    Deduct,
    EventType,
    GrantReward,
    IssueCoupon,
    Limits,
    Notify,
    RemoveTag,
    Rule,
    Scheme,
    SetTier,
    TierLevel,
)

from .calendar import duration_delta, window_days

_SCALE = Decimal(2**64)


@dataclass(frozen=True, slots=True)
class CompiledAction:
    kind: str  # award, deduct, issue_coupon, grant_reward, set_tier, tag, untag, notify
    action: Action
    amount: Expr | None = None
    balance: str | None = None
    part: str | None = None
    rounding: str = "floor"
    target: str | None = None  # coupon policy, reward, tier, tag or template id
    count: int = 1
    channel: str = ""
    code: bool = False  # issue_coupon: hand each coupon out with a code


@dataclass(frozen=True, slots=True)
class CompiledCampaign:
    id: str
    campaign: Campaign
    start: datetime
    end: datetime
    names: Mapping[str, Any]  # campaign.* values for expressions
    audience_when: Expr | None
    audience_tags: frozenset[str] | None
    audience_segments: frozenset[str] | None  # RFM segments (rules.models.Segment)
    # The member's u (SETTLED.md) scaled to 2**64: below holdout_cut is the holdout, from there up to
    # rollout_cut is the rollout. Integer cuts keep the comparison exact.
    holdout_cut: int
    rollout_cut: int
    budget_balance: str | None
    budget_limit: int


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    rule: Rule
    order: int
    when: Expr | None
    actions: tuple[CompiledAction, ...]
    caps: tuple[tuple[int, str], ...]
    channels: frozenset[str] | None
    campaign: CompiledCampaign | None
    group: str | None = None  # its evaluation group, when that group's policy is not `all`


@dataclass(frozen=True, slots=True)
class CompiledCounter:
    name: str
    counter: Counter
    when: Expr | None
    of: Expr | None
    window: int  # days; 0 for lifetime


@dataclass(frozen=True, slots=True)
class CompiledGoal:
    id: str
    achievement: Achievement
    when: Expr | None
    of: Expr | None
    actions: tuple[CompiledAction, ...]


class Program:
    """Everything `evaluate` needs from a scheme, prepared once."""

    def __init__(self, scheme: Scheme, exprs: Mapping[Loc, Expr] | None = None) -> None:
        if exprs is None:
            exprs, problems = compile_all(scheme)
            if problems:
                raise ValueError(f"the scheme has expression errors: {problems[:3]}; load it with rules.load first")
        self.scheme = scheme
        self.version = content_hash(scheme)
        self.tz = ZoneInfo(scheme.timezone)
        self.functions: Functions = functions_for(scheme.timezone)
        self.event_types: dict[str, EventType] = event_types(scheme)
        self.balances: dict[str, Balance] = dict(scheme.balances)
        self.reminding: tuple[str, ...] = tuple(sorted(name for name, b in scheme.balances.items() if b.remind_before is not None))
        self.late_event_limit = duration_delta(scheme.late_event_limit)
        # Balances whose awards may be cut (an earning cap or a maximum), looked up on each award.
        self.limited: dict[str, Limits] = {
            name: b.limits for name, b in scheme.balances.items() if b.limits.earn_cap is not None or b.limits.max_balance is not None
        }
        # campaign id -> (liability cap, value of one unit) for campaigns that cap their liability
        self.liability: dict[str, tuple[int, Decimal]] = {}
        for campaign in scheme.campaigns:
            budget = campaign.budget
            if budget is not None and budget.liability is not None:
                value = scheme.balances[budget.balance].value
                assert value is not None  # the scheme's validator requires it
                self.liability[campaign.id] = (budget.liability, value)
        self.pending_balances: tuple[str, ...] = tuple(name for name, b in scheme.balances.items() if b.pending is not None)
        # event type -> the balances whose pending lots it activates (order_completed)
        self.activated_by: dict[str, frozenset[str]] = {}
        for name, b in scheme.balances.items():
            if b.pending is not None and b.pending.until_event is not None:
                self.activated_by[b.pending.until_event] = self.activated_by.get(b.pending.until_event, frozenset()) | {name}
        # What one unit of a balance is worth to a member, for groups that compare value: its
        # declared `value`, else 1 on a money balance (minor units); the loader requires one of them.
        self.unit_worth: dict[str, Decimal] = {
            name: b.value if b.value is not None else Decimal(1 if b.unit == "money" else 0) for name, b in scheme.balances.items()
        }
        self.group_policy: dict[str, str] = {gid: g.policy for gid, g in scheme.groups.items()}
        # purchase attribute -> the balance it pays from: points_paid (unit count), stored_value_paid (unit money)
        self.payers: dict[str, str] = {
            PAYING_ATTRIBUTES[b.unit]: name for name, b in scheme.balances.items() if b.order_payment is not None
        }
        self.levels: tuple[TierLevel, ...] = tuple(scheme.tiers.levels) if scheme.tiers else ()
        self.rank: dict[str, int] = {level.id: i for i, level in enumerate(self.levels)}
        self.thresholds: tuple[int, ...] = tuple(level.threshold for level in self.levels)  # strictly rising
        self.tier_names: dict[str, dict[str, Any]] = {
            level.id: {"id": level.id, "rank": i, **level.benefits} for i, level in enumerate(self.levels)
        }
        self.metric_expr = exprs.get(("tiers", "metric", "expr"))
        self.on_reach = {
            level.id: tuple(_action(a, (("tiers", "levels", i, "on_reach", j)), exprs, scheme) for j, a in enumerate(level.on_reach))
            for i, level in enumerate(self.levels)
        }
        self.reward_grants = {
            rid: tuple(_action(a, ("rewards", rid, "grants", j), exprs, scheme) for j, a in enumerate(reward.grants))
            for rid, reward in scheme.rewards.items()
        }
        self.counters: dict[str, tuple[CompiledCounter, ...]] = {}
        self.counter_by_name: dict[str, CompiledCounter] = {}
        self.windowed: tuple[tuple[str, int], ...] = tuple(
            (name, window_days(c.window)) for name, c in scheme.counters.items() if c.window is not None
        )
        for name, counter in scheme.counters.items():
            compiled = CompiledCounter(
                name,
                counter,
                exprs.get(("counters", name, "when")),
                exprs.get(("counters", name, "of")),
                window_days(counter.window) if counter.window else 0,
            )
            self.counter_by_name[name] = compiled
            for event_type in counter.on:
                self.counters.setdefault(event_type, ())
                self.counters[event_type] += (compiled,)

        # event type -> the achievements it moves, in the order the scheme declares them
        self.goals: dict[str, tuple[CompiledGoal, ...]] = {}
        self.goal_by_id: dict[str, CompiledGoal] = {}
        for goal_id, achievement in scheme.achievements.items():
            loc = ("achievements", goal_id)
            goal = CompiledGoal(
                goal_id,
                achievement,
                exprs.get((*loc, "when")),
                exprs.get((*loc, "of")),
                tuple(_action(a, (*loc, "then", j), exprs, scheme) for j, a in enumerate(achievement.then)),
            )
            self.goal_by_id[goal_id] = goal
            for event_type in achievement.on:
                self.goals[event_type] = self.goals.get(event_type, ()) + (goal,)

        referrals = scheme.referrals
        self.referral_qualify: Expr | None = exprs.get(("referrals", "qualify")) if referrals else None
        self.referee_then: tuple[CompiledAction, ...] = (
            tuple(_action(a, ("referrals", "referee_then", j), exprs, scheme) for j, a in enumerate(referrals.referee_then)) if referrals else ()
        )

        rules: list[tuple[CompiledRule, frozenset[str] | None]] = []
        order = 0
        compiled_campaigns: list[CompiledCampaign] = []
        for i, rule in enumerate(scheme.rules):
            rules.append(self._rule(rule, ("rules", i), order, None, exprs))
            order += 1
        for c, campaign in enumerate(scheme.campaigns):
            compiled_campaign = self._campaign(campaign, c, exprs)
            compiled_campaigns.append(compiled_campaign)
            for i, rule in enumerate(campaign.rules):
                rules.append(self._rule(rule, ("campaigns", c, "rules", i), order, compiled_campaign, exprs))
                order += 1
        rules = [r for r in rules if r[0].rule.enabled]
        rules.sort(key=lambda r: (-r[0].rule.priority, r[0].order))
        by_type: dict[str, list[CompiledRule]] = {}
        by_store: dict[tuple[str, str], list[CompiledRule]] = {}
        stores_of: dict[str, set[str]] = {}
        for compiled, stores in rules:
            if stores is not None:
                stores_of.setdefault(compiled.rule.on, set()).update(stores)
        for compiled, stores in rules:
            event_type = compiled.rule.on
            if stores is None:
                by_type.setdefault(event_type, []).append(compiled)
                for store in stores_of.get(event_type, ()):
                    by_store.setdefault((event_type, store), []).append(compiled)
            else:
                for store in stores:
                    by_store.setdefault((event_type, store), []).append(compiled)
        # Candidates keep the global priority order because `rules` was sorted before indexing.
        self.by_type: dict[str, tuple[CompiledRule, ...]] = {k: tuple(v) for k, v in by_type.items()}
        self.by_store: dict[tuple[str, str], tuple[CompiledRule, ...]] = {k: tuple(v) for k, v in by_store.items()}
        # campaign_start / campaign_end are produced only while a rule or a counter listens to them
        # (a campaign's ends are not an event of every member otherwise): (instant, type, campaign)
        listened = {k for k in ("campaign_start", "campaign_end") if k in self.by_type or k in self.counters}
        self.campaign_instants: tuple[tuple[datetime, str, str], ...] = tuple(sorted(
            (instant, kind, cc.id)
            for cc in compiled_campaigns
            for instant, kind in ((cc.start, "campaign_start"), (cc.end, "campaign_end"))
            if kind in listened
        ))
        # the service reads a member's stored segment only for a scheme whose audiences name one
        self.uses_segments = any(cc.audience_segments is not None for cc in compiled_campaigns)
        self.reads_balances: dict[str, bool] = {}
        for event_type in self.event_types:
            names = {n for r in self.candidates_all(event_type) for n in _names(r)}
            names.update(n for g in self.goals.get(event_type, ()) for n in _goal_names(g))
            self.reads_balances[event_type] = any(n.startswith("member.") and n[7:] in self.balances for n in names) or bool(
                self.metric_expr
            )

    def candidates(self, event_type: str, store: str) -> tuple[CompiledRule, ...]:
        found = self.by_store.get((event_type, store))
        return found if found is not None else self.by_type.get(event_type, ())

    def candidates_all(self, event_type: str) -> list[CompiledRule]:
        seen: dict[str, CompiledRule] = {r.id: r for r in self.by_type.get(event_type, ())}
        for (kind, _), rules in self.by_store.items():
            if kind == event_type:
                seen.update({r.id: r for r in rules})
        return list(seen.values())

    def _rule(
        self, rule: Rule, loc: Loc, order: int, campaign: CompiledCampaign | None, exprs: Mapping[Loc, Expr]
    ) -> tuple[CompiledRule, frozenset[str] | None]:
        actions = tuple(_action(a, (*loc, "then", j), exprs, self.scheme) for j, a in enumerate(rule.then))
        scope = rule.scope
        stores = frozenset(scope.stores) if scope is not None and scope.stores is not None else None
        channels = frozenset(scope.channels) if scope is not None and scope.channels is not None else None
        group = rule.group if rule.group is not None else campaign.campaign.group if campaign is not None else None
        compiled = CompiledRule(
            rule.id,
            rule,
            order,
            exprs.get((*loc, "when")),
            actions,
            tuple((cap.limit, cap.per) for cap in rule.caps),
            channels,
            campaign,
            # a group whose policy is `all` lets every rule fire: its rules run as if ungrouped
            group if group is not None and self.scheme.groups[group].policy != "all" else None,
        )
        return compiled, stores

    def _campaign(self, campaign: Campaign, c: int, exprs: Mapping[Loc, Expr]) -> CompiledCampaign:
        start = campaign.start.replace(tzinfo=self.tz)
        end = campaign.end.replace(tzinfo=self.tz)
        audience = campaign.audience
        return CompiledCampaign(
            campaign.id,
            campaign,
            start,
            end,
            {"id": campaign.id, "start": int(start.timestamp()), "end": int(end.timestamp())},
            exprs.get(("campaigns", c, "audience", "when")),
            frozenset(audience.tags) if audience is not None and audience.tags else None,
            frozenset(audience.segments) if audience is not None and audience.segments else None,
            int(campaign.holdout * _SCALE),
            int((campaign.holdout + campaign.rollout * (1 - campaign.holdout)) * _SCALE),
            campaign.budget.balance if campaign.budget else None,
            campaign.budget.limit if campaign.budget else 0,
        )

    def lowest_tier(self) -> str | None:
        return self.levels[0].id if self.levels else None


def _names(rule: CompiledRule) -> list[str]:
    names = list(rule.when.names) if rule.when else []
    for action in rule.actions:
        if action.amount is not None:
            names.extend(action.amount.names)
    return names


def _goal_names(goal: CompiledGoal) -> list[str]:
    names = [n for expr in (goal.when, goal.of) if expr is not None for n in expr.names]
    return names + [n for action in goal.actions if action.amount is not None for n in action.amount.names]


def _action(action: Action, loc: Loc, exprs: Mapping[Loc, Expr], scheme: Scheme) -> CompiledAction:
    if isinstance(action, Award):
        spec = action.award
        rounding = spec.rounding or scheme.balances[spec.balance].rounding
        return CompiledAction("award", action, exprs[(*loc, "award", "amount")], spec.balance, spec.part, rounding)
    if isinstance(action, Deduct):
        spec2 = action.deduct
        rounding = spec2.rounding or scheme.balances[spec2.balance].rounding
        return CompiledAction("deduct", action, exprs[(*loc, "deduct", "amount")], spec2.balance, None, rounding)
    if isinstance(action, IssueCoupon):
        spec3 = action.issue_coupon
        return CompiledAction("issue_coupon", action, target=spec3.coupon, count=spec3.count, code=spec3.code)
    if isinstance(action, GrantReward):
        return CompiledAction("grant_reward", action, target=action.grant_reward.reward)
    if isinstance(action, SetTier):
        return CompiledAction("set_tier", action, target=action.set_tier.tier)
    if isinstance(action, AddTag):
        return CompiledAction("tag", action, target=action.tag)
    if isinstance(action, RemoveTag):
        return CompiledAction("untag", action, target=action.untag)
    assert isinstance(action, Notify)
    return CompiledAction("notify", action, target=action.notify.template, channel=action.notify.channel)


def compile(scheme: Scheme, exprs: Mapping[Loc, Expr] | None = None) -> Program:
    """Prepare a loaded scheme for evaluation."""
    return Program(scheme, exprs)
