"""Checks beyond the models: references between parts, names, and every expression.

`compile_all` walks every expression of a scheme once, with the names its place allows, and is
used both here (to report errors at load) and by the engine (to get the compiled expressions).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .builtins import (
    BUILTIN_EVENT_TYPES,
    ENVELOPE_FIELDS,
    MEMBER_FIELDS,
    PERSONAL_FIELDS,
    REFERRAL_ATTRIBUTES,
    event_types,
)
from .errors import SchemeError, format_path
from .expr import Expr, Type, compile_expr, functions_for
from .load import Loc, SourceMap
from .models import (
    Action,
    Award,
    Campaign,
    Deduct,
    GrantReward,
    IssueCoupon,
    Notify,
    Referrals,
    Rule,
    Scheme,
    SetTier,
)

_ATTRIBUTE_TYPES = {
    "int": Type.NUMBER,
    "money": Type.NUMBER,
    "decimal": Type.NUMBER,
    "str": Type.STR,
    "bool": Type.BOOL,
    "instant": Type.INSTANT,
    "str_list": Type.STR_LIST,
    "items": Type.ITEMS,
}


def _value_type(value: Any) -> Type:
    if isinstance(value, bool):
        return Type.BOOL
    if isinstance(value, str):
        return Type.STR
    return Type.NUMBER


def base_env(scheme: Scheme) -> dict[str, Type]:
    """The names every expression may read: member.*, tier.*, counters.* and now."""
    env: dict[str, Type] = {
        "now": Type.INSTANT,
        "member.tier": Type.STR,
        "member.tier_rank": Type.NUMBER,
        "member.tags": Type.STR_LIST,
        "member.joined_at": Type.INSTANT,
        "member.home_store": Type.STR,
        "member.birthday_month": Type.NUMBER,
        "member.birthday_day": Type.NUMBER,
        "tier.id": Type.STR,
        "tier.rank": Type.NUMBER,
    }
    for balance in scheme.balances:
        env[f"member.{balance}"] = Type.NUMBER
    if scheme.tiers is not None:
        for name, value in scheme.tiers.levels[0].benefits.items():
            env[f"tier.{name}"] = _value_type(value)
    for counter in scheme.counters:
        env[f"counters.{counter}"] = Type.NUMBER
    return env


def event_env(scheme: Scheme, event_type: str) -> dict[str, Type]:
    env = {
        "event.type": Type.STR,
        "event.store": Type.STR,
        "event.channel": Type.STR,
        "event.occurred_at": Type.INSTANT,
    }
    declared = event_types(scheme).get(event_type)
    if declared is not None:
        for name, attribute in declared.attributes.items():
            env[f"event.{name}"] = _ATTRIBUTE_TYPES[attribute.type]
    return env


CAMPAIGN_ENV = {"campaign.id": Type.STR, "campaign.start": Type.INSTANT, "campaign.end": Type.INSTANT}


def _action_amounts(actions: list[Action], loc: Loc) -> Iterator[tuple[Loc, str]]:
    for i, action in enumerate(actions):
        if isinstance(action, Award):
            yield (*loc, i, "award", "amount"), action.award.amount
        elif isinstance(action, Deduct):
            yield (*loc, i, "deduct", "amount"), action.deduct.amount


def _expressions(scheme: Scheme) -> Iterator[tuple[Loc, str, dict[str, Type], Type]]:
    """Every expression of the scheme: where it is, its text, the names it may read, what it yields."""
    base = base_env(scheme)
    known_types = event_types(scheme)

    def rule_expressions(rule: Rule, loc: Loc, extra: Mapping[str, Type]) -> Iterator[tuple[Loc, str, dict[str, Type], Type]]:
        env = {**base, **extra, **event_env(scheme, rule.on)}
        if rule.when is not None:
            yield (*loc, "when"), rule.when, env, Type.BOOL
        for where, text in _action_amounts(rule.then, (*loc, "then")):
            yield where, text, env, Type.NUMBER

    for i, rule in enumerate(scheme.rules):
        yield from rule_expressions(rule, ("rules", i), {})
    for c, campaign in enumerate(scheme.campaigns):
        if campaign.audience is not None and campaign.audience.when is not None:
            yield ("campaigns", c, "audience", "when"), campaign.audience.when, {**base, **CAMPAIGN_ENV}, Type.BOOL
        for i, rule in enumerate(campaign.rules):
            yield from rule_expressions(rule, ("campaigns", c, "rules", i), CAMPAIGN_ENV)
    for name, counter in scheme.counters.items():
        # A counter is moved before the rules of its event run, so it cannot read counters.
        counter_base = {k: v for k, v in base.items() if not k.startswith("counters.")}
        for event_type in counter.on:
            if event_type not in known_types:
                continue
            env = {**counter_base, **event_env(scheme, event_type)}
            if counter.when is not None:
                yield ("counters", name, "when"), counter.when, env, Type.BOOL
            if counter.of is not None:
                yield ("counters", name, "of"), counter.of, env, Type.NUMBER
    for achievement_id, achievement in scheme.achievements.items():
        # A goal moves after the event's counters and rules, so it reads what a rule reads.
        for event_type in achievement.on:
            if event_type not in known_types:
                continue
            env = {**base, **event_env(scheme, event_type)}
            if achievement.when is not None:
                yield ("achievements", achievement_id, "when"), achievement.when, env, Type.BOOL
            if achievement.of is not None:
                yield ("achievements", achievement_id, "of"), achievement.of, env, Type.NUMBER
            yield from ((w, x, env, Type.NUMBER) for w, x in _action_amounts(achievement.then, ("achievements", achievement_id, "then")))
    if scheme.referrals is not None:
        # Read on the referee's first purchase, after its rules, like an achievement's.
        env = {**base, **event_env(scheme, "purchase")}
        if scheme.referrals.qualify is not None:
            yield ("referrals", "qualify"), scheme.referrals.qualify, env, Type.BOOL
        yield from ((w, x, env, Type.NUMBER) for w, x in _action_amounts(scheme.referrals.referee_then, ("referrals", "referee_then")))
    if scheme.tiers is not None:
        metric_env = {k: v for k, v in base.items() if not k.startswith(("tier.", "member.tier"))}
        if scheme.tiers.metric.expr is not None:
            yield ("tiers", "metric", "expr"), scheme.tiers.metric.expr, metric_env, Type.NUMBER
        for t, level in enumerate(scheme.tiers.levels):
            yield from ((w, x, base, Type.NUMBER) for w, x in _action_amounts(level.on_reach, ("tiers", "levels", t, "on_reach")))
    for reward_id, reward in scheme.rewards.items():
        yield from ((w, x, base, Type.NUMBER) for w, x in _action_amounts(reward.grants, ("rewards", reward_id, "grants")))


def compile_all(scheme: Scheme) -> tuple[dict[Loc, Expr], list[tuple[Loc, str, int, str]]]:
    """Compile every expression once. Returns the compiled ones by place and the errors as
    (place, code, column inside the expression, message)."""
    functions = functions_for(scheme.timezone)
    compiled: dict[Loc, Expr] = {}
    problems: list[tuple[Loc, str, int, str]] = []
    for loc, text, env, expect in _expressions(scheme):
        expr, errors = compile_expr(text, env, functions, expect=expect)
        if expr is not None and loc not in compiled:
            compiled[loc] = expr
        for error in errors:
            problems.append((loc, error.code, error.column, error.message))
    return compiled, problems


class _Reporter:
    def __init__(self, source: SourceMap, filename: str) -> None:
        self.source, self.filename = source, filename
        self.errors: list[SchemeError] = []

    def at(self, loc: Loc, code: str, message: str, *, column_offset: int | None = None, key: bool = False) -> None:
        if column_offset is not None and loc in self.source.text_start:
            file, line, column = self.source.text_start[loc]
            column += column_offset - 1
        else:
            file, line, column = self.source.locate(loc, prefer_key=key)
        self.errors.append(SchemeError(code, message, file or self.filename, line, column, format_path(loc)))


def check_scheme(scheme: Scheme, source: SourceMap, filename: str) -> tuple[list[SchemeError], list[SchemeError]]:
    """Errors (the scheme cannot be used) and warnings (lint, see rules.lint)."""
    report = _Reporter(source, filename)
    _check_names(scheme, report)
    _check_references(scheme, report)
    _, problems = compile_all(scheme)
    for loc, code, column, message in problems:
        report.at(loc, code, message, column_offset=column)
    from .lint import lint

    warnings = lint(scheme, source, filename) if not report.errors else []
    return report.errors, warnings


def _check_names(scheme: Scheme, report: _Reporter) -> None:
    for balance in scheme.balances:
        if balance in MEMBER_FIELDS:
            report.at(("balances", balance), "name_taken", f"a balance cannot be named '{balance}': member.{balance} is already a member field", key=True)
        elif balance in PERSONAL_FIELDS:
            report.at(("balances", balance), "personal_data", f"a balance cannot be named '{balance}': member.{balance} would read as personal data", key=True)
    for name, declared in scheme.event_types.items():
        if name in ENVELOPE_FIELDS:
            report.at(("event_types", name), "name_taken", f"'{name}' is a field of every event and cannot name an event type", key=True)
        for attribute in declared.attributes:
            if attribute in ENVELOPE_FIELDS:
                report.at(
                    ("event_types", name, "attributes", attribute),
                    "name_taken",
                    f"'{attribute}' is a field of every event (event.{attribute}) and cannot be an attribute",
                    key=True,
                )
            elif attribute in PERSONAL_FIELDS:
                report.at(
                    ("event_types", name, "attributes", attribute),
                    "personal_data",
                    f"an event attribute cannot be named '{attribute}': events never carry personal data"
                    " (members' phone, email, name and birthday are kept on the member, encrypted)",
                    key=True,
                )
    seen: dict[str, Loc] = {}
    for loc, rule in _all_rules(scheme):
        if rule.id in seen:
            report.at((*loc, "id"), "duplicate_id", f"rule id '{rule.id}' is already used at {format_path(seen[rule.id])}")
        else:
            seen[rule.id] = loc
    campaign_ids: set[str] = set()
    for c, campaign in enumerate(scheme.campaigns):
        if campaign.id in campaign_ids:
            report.at(("campaigns", c, "id"), "duplicate_id", f"campaign id '{campaign.id}' is already used")
        campaign_ids.add(campaign.id)


def _all_rules(scheme: Scheme) -> Iterator[tuple[Loc, Rule]]:
    for i, rule in enumerate(scheme.rules):
        yield ("rules", i), rule
    for c, campaign in enumerate(scheme.campaigns):
        for i, rule in enumerate(campaign.rules):
            yield ("campaigns", c, "rules", i), rule


def _suggest(name: str, options: Iterator[str] | list[str]) -> str:
    import difflib

    options = list(options)
    close = difflib.get_close_matches(name, options, n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (known: {', '.join(options)})" if options else " (none is declared)"


def _check_referrals(scheme: Scheme, referrals: Referrals, report: _Reporter) -> None:
    """The referrer's event is the scheme's own type, and declares only what Perkflow sends with it."""
    loc = ("referrals", "reward_event")
    declared = scheme.event_types.get(referrals.reward_event)
    if declared is None or referrals.reward_event in BUILTIN_EVENT_TYPES:
        report.at(loc, "unknown_event_type", f"declare '{referrals.reward_event}' under event_types: the referrer's event is a type of the scheme's own")
    else:
        for name, attribute in declared.attributes.items():
            if REFERRAL_ATTRIBUTES.get(name) != attribute.type:
                report.at(
                    ("event_types", referrals.reward_event, "attributes", name), "referral_attribute",
                    f"the referrer's event carries only {', '.join(f'{k} ({v})' for k, v in REFERRAL_ATTRIBUTES.items())}",
                )
    _check_actions(scheme, referrals.referee_then, ("referrals", "referee_then"), report)


def _check_actions(scheme: Scheme, actions: list[Action], loc: Loc, report: _Reporter) -> None:
    for i, action in enumerate(actions):
        here = (*loc, i)
        if isinstance(action, Award | Deduct):
            spec = action.award if isinstance(action, Award) else action.deduct
            kind = "award" if isinstance(action, Award) else "deduct"
            balance = scheme.balances.get(spec.balance)
            if balance is None:
                report.at((*here, kind, "balance"), "unknown_balance", f"no balance '{spec.balance}'" + _suggest(spec.balance, list(scheme.balances)))
                continue
            if isinstance(action, Award):
                if balance.parts is not None and action.award.part not in balance.parts:
                    report.at((*here, kind), "missing_part", f"balance '{spec.balance}' has parts {balance.parts}: say which part the award goes to")
                if balance.parts is None and action.award.part is not None:
                    report.at((*here, kind, "part"), "unknown_part", f"balance '{spec.balance}' has no parts")
            elif not balance.spendable:
                report.at((*here, kind, "balance"), "not_spendable", f"balance '{spec.balance}' is not spendable")
        elif isinstance(action, IssueCoupon) and action.issue_coupon.coupon not in scheme.coupons:
            name = action.issue_coupon.coupon
            report.at((*here, "issue_coupon", "coupon"), "unknown_coupon", f"no coupon policy '{name}'" + _suggest(name, list(scheme.coupons)))
        elif isinstance(action, IssueCoupon) and action.issue_coupon.code and scheme.coupons[action.issue_coupon.coupon].codes is None:
            name = action.issue_coupon.coupon
            report.at((*here, "issue_coupon", "code"), "policy_without_codes", f"coupon policy '{name}' declares no codes to hand out")
        elif isinstance(action, GrantReward) and action.grant_reward.reward not in scheme.rewards:
            name = action.grant_reward.reward
            report.at((*here, "grant_reward", "reward"), "unknown_reward", f"no reward '{name}'" + _suggest(name, list(scheme.rewards)))
        elif isinstance(action, SetTier):
            tiers = [level.id for level in scheme.tiers.levels] if scheme.tiers else []
            if action.set_tier.tier not in tiers:
                report.at((*here, "set_tier", "tier"), "unknown_tier", f"no tier '{action.set_tier.tier}'" + _suggest(action.set_tier.tier, tiers))
        elif isinstance(action, Notify) and action.notify.template not in scheme.templates:
            name = action.notify.template
            report.at((*here, "notify", "template"), "unknown_template", f"no template '{name}'" + _suggest(name, list(scheme.templates)))


def _check_references(scheme: Scheme, report: _Reporter) -> None:
    known_types = event_types(scheme)
    for loc, rule in _all_rules(scheme):
        if rule.on not in known_types:
            report.at((*loc, "on"), "unknown_event_type", f"no event type '{rule.on}'" + _suggest(rule.on, list(known_types)))
        _check_actions(scheme, rule.then, (*loc, "then"), report)
    for name, counter in scheme.counters.items():
        for i, event_type in enumerate(counter.on):
            if event_type not in known_types:
                report.at(("counters", name, "on", i), "unknown_event_type", f"no event type '{event_type}'" + _suggest(event_type, list(known_types)))
    if scheme.tiers is not None:
        metric = scheme.tiers.metric
        if metric.balance is not None and metric.balance not in scheme.balances:
            report.at(("tiers", "metric", "balance"), "unknown_balance", f"no balance '{metric.balance}'" + _suggest(metric.balance, list(scheme.balances)))
        if metric.counter is not None and metric.counter not in scheme.counters:
            report.at(("tiers", "metric", "counter"), "unknown_counter", f"no counter '{metric.counter}'" + _suggest(metric.counter, list(scheme.counters)))
        for t, level in enumerate(scheme.tiers.levels):
            _check_actions(scheme, level.on_reach, ("tiers", "levels", t, "on_reach"), report)
    for reward_id, reward in scheme.rewards.items():
        balance = scheme.balances.get(reward.cost.balance)
        if balance is None:
            report.at(("rewards", reward_id, "cost", "balance"), "unknown_balance", f"no balance '{reward.cost.balance}'" + _suggest(reward.cost.balance, list(scheme.balances)))
        elif not balance.spendable:
            report.at(("rewards", reward_id, "cost", "balance"), "not_spendable", f"balance '{reward.cost.balance}' is not spendable")
        _check_actions(scheme, reward.grants, ("rewards", reward_id, "grants"), report)
    for achievement_id, achievement in scheme.achievements.items():
        for i, event_type in enumerate(achievement.on):
            if event_type not in known_types:
                report.at(("achievements", achievement_id, "on", i), "unknown_event_type", f"no event type '{event_type}'" + _suggest(event_type, list(known_types)))
        _check_actions(scheme, achievement.then, ("achievements", achievement_id, "then"), report)
    _check_groups(scheme, report)
    if scheme.referrals is not None:
        _check_referrals(scheme, scheme.referrals, report)
    for c, campaign in enumerate(scheme.campaigns):
        if campaign.budget is not None and campaign.budget.balance not in scheme.balances:
            report.at(("campaigns", c, "budget", "balance"), "unknown_balance", f"no balance '{campaign.budget.balance}'" + _suggest(campaign.budget.balance, list(scheme.balances)))


def rule_group(rule: Rule, campaign: Campaign | None) -> str | None:
    """The group a rule competes in: its own, else its campaign's."""
    return rule.group if rule.group is not None else campaign.group if campaign is not None else None


def _valued_balances(scheme: Scheme, actions: list[Action]) -> Iterator[tuple[int, str, str]]:
    """(action index, field, balance) of each balance whose units a rule's value counts."""
    for i, action in enumerate(actions):
        if isinstance(action, Award):
            yield i, "award", action.award.balance
        elif isinstance(action, Deduct):
            yield i, "deduct", action.deduct.balance
        elif isinstance(action, GrantReward) and action.grant_reward.reward in scheme.rewards:
            yield i, "grant_reward", scheme.rewards[action.grant_reward.reward].cost.balance


def _check_groups(scheme: Scheme, report: _Reporter) -> None:
    """A group named must be declared; a group that compares value needs every balance its rules
    move to say what a unit is worth (a money balance is worth its minor units)."""
    campaigns = {("campaigns", c): campaign for c, campaign in enumerate(scheme.campaigns)}
    for c, campaign in enumerate(scheme.campaigns):
        if campaign.group is not None and campaign.group not in scheme.groups:
            report.at(("campaigns", c, "group"), "unknown_group", f"no group '{campaign.group}'" + _suggest(campaign.group, list(scheme.groups)))
    for loc, rule in _all_rules(scheme):
        campaign = campaigns.get(loc[:2]) if loc[0] == "campaigns" else None
        if rule.group is not None and rule.group not in scheme.groups:
            report.at((*loc, "group"), "unknown_group", f"no group '{rule.group}'" + _suggest(rule.group, list(scheme.groups)))
            continue
        group_id = rule_group(rule, campaign)
        group = scheme.groups.get(group_id) if group_id is not None else None
        if group is None or group.policy not in ("best", "lowest_cost"):
            continue
        for i, kind, name in _valued_balances(scheme, rule.then):
            balance = scheme.balances.get(name)
            if balance is not None and balance.value is None and balance.unit != "money":
                report.at(
                    (*loc, "then", i, kind),
                    "group_needs_value",
                    f"rule '{rule.id}' competes in group '{group_id}' ({group.policy}), which compares value: "
                    f"balance '{name}' needs a 'value' (what one unit is worth)",
                )
