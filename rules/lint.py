"""What a loyalty expert would catch in review: valid schemes that probably do not mean what
they say. Findings are warnings (`SchemeError` with severity "warning"), located like errors."""

from __future__ import annotations

import ast
from collections.abc import Callable
from decimal import Decimal

from .errors import SchemeError, format_path
from .load import Loc, SourceMap
from .models import Award, Campaign, Rule, Scheme

Warn = Callable[[Loc, str, str], None]


def lint(scheme: Scheme, source: SourceMap | None = None, filename: str = "<scheme>") -> list[SchemeError]:
    source = source or SourceMap()
    found: list[SchemeError] = []

    def warn(loc: Loc, code: str, message: str) -> None:
        file, line, column = source.locate(loc)
        found.append(SchemeError(code, message, file or filename, line, column, format_path(loc), "warning"))

    rules = _rules(scheme)
    _shadowed(rules, warn)
    _unreachable_tiers(scheme, rules, warn)
    _unbounded_awards(rules, warn)
    _overlapping_campaigns(scheme, warn)
    _coupons_below_value(scheme, warn)
    return sorted(found, key=lambda e: (e.file, e.line, e.column))


def _rules(scheme: Scheme) -> list[tuple[Loc, Rule, Campaign | None]]:
    out: list[tuple[Loc, Rule, Campaign | None]] = [(("rules", i), r, None) for i, r in enumerate(scheme.rules)]
    for c, campaign in enumerate(scheme.campaigns):
        out += [(("campaigns", c, "rules", i), r, campaign) for i, r in enumerate(campaign.rules)]
    return out


def _always(rule: Rule, campaign: Campaign | None) -> bool:
    """The rule fires for every event of its type: no condition, scope, cap or campaign."""
    trivially_true = rule.when is None or rule.when.strip() == "True"
    return trivially_true and rule.scope is None and not rule.caps and campaign is None and rule.enabled


def _shadowed(rules: list[tuple[Loc, Rule, Campaign | None]], warn: Warn) -> None:
    order = sorted(range(len(rules)), key=lambda i: -rules[i][1].priority)  # stable: ties keep file order
    for position, i in enumerate(order):
        loc, rule, campaign = rules[i]
        if not rule.exclusive or not rule.enabled:
            continue
        for j in order[position + 1 :]:
            other_loc, other, _ = rules[j]
            if other.on != rule.on or not other.enabled:
                continue
            same_condition = other.when is not None and other.when == rule.when and other.scope == rule.scope
            if (_always(rule, campaign) or same_condition) and not (campaign is not None and not same_condition):
                warn(
                    other_loc,
                    "shadowed_rule",
                    f"rule '{other.id}' is never tried: the exclusive rule '{rule.id}' ({format_path(loc)}) "
                    "comes first and fires for every such event",
                )


def _awarded_balances(scheme: Scheme) -> set[str]:
    balances = set()
    for _, rule, _ in _rules(scheme):
        balances |= {a.award.balance for a in rule.then if isinstance(a, Award)}
    for reward in scheme.rewards.values():
        balances |= {a.award.balance for a in reward.grants if isinstance(a, Award)}
    for achievement in scheme.achievements.values():
        balances |= {a.award.balance for a in achievement.then if isinstance(a, Award)}
    if scheme.tiers:
        for level in scheme.tiers.levels:
            balances |= {a.award.balance for a in level.on_reach if isinstance(a, Award)}
    return balances


def _unreachable_tiers(scheme: Scheme, rules: list[tuple[Loc, Rule, Campaign | None]], warn: Warn) -> None:
    if scheme.tiers is None:
        return
    metric = scheme.tiers.metric
    if metric.balance is None or metric.balance in _awarded_balances(scheme):
        return
    set_by_rule = {a.set_tier.tier for _, r, _ in rules for a in r.then if hasattr(a, "set_tier")}
    for t, level in enumerate(scheme.tiers.levels):
        if level.threshold > 0 and level.id not in set_by_rule:
            warn(
                ("tiers", "levels", t),
                "unreachable_tier",
                f"nobody can reach tier '{level.id}': no rule, reward or achievement awards '{metric.balance}', its metric",
            )


def _literal_multiplier(expression: str) -> Decimal | None:
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        return None
    biggest: Decimal | None = None
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and isinstance(side.value, int | float) and not isinstance(side.value, bool):
                    value = Decimal(str(side.value))
                    if value > 1 and (biggest is None or value > biggest):
                        biggest = value
    return biggest


def _unbounded_awards(rules: list[tuple[Loc, Rule, Campaign | None]], warn: Warn) -> None:
    for loc, rule, campaign in rules:
        if rule.caps:
            continue
        for a, action in enumerate(rule.then):
            if not isinstance(action, Award):
                continue
            budgeted = campaign is not None and campaign.budget is not None and campaign.budget.balance == action.award.balance
            factor = _literal_multiplier(action.award.amount)
            if factor is not None and not budgeted:
                warn(
                    (*loc, "then", a, "award", "amount"),
                    "unbounded_award",
                    f"rule '{rule.id}' multiplies an award by {factor} with no cap and no campaign budget: "
                    "the liability has no upper bound",
                )


def _overlapping_campaigns(scheme: Scheme, warn: Warn) -> None:
    campaigns = scheme.campaigns
    for i, first in enumerate(campaigns):
        for j in range(i + 1, len(campaigns)):
            second = campaigns[j]
            if first.start >= second.end or second.start >= first.end:
                continue
            shared = {r.on for r in first.rules} & {r.on for r in second.rules}
            decided = any(r.exclusive for r in first.rules + second.rules if r.on in shared)
            if shared and not decided:
                warn(
                    ("campaigns", j),
                    "overlapping_campaigns",
                    f"campaigns '{first.id}' and '{second.id}' overlap in time and both act on "
                    f"{', '.join(sorted(shared))} events; make one exclusive or set priorities to decide how they stack",
                )


def _coupons_below_value(scheme: Scheme, warn: Warn) -> None:
    for policy_id, policy in scheme.coupons.items():
        benefit = policy.benefit
        value = benefit.amount if benefit.kind == "amount_off" else benefit.value if benefit.kind == "free_item" else None
        if value is not None and policy.min_spend < value:
            warn(
                ("coupons", policy_id, "min_spend"),
                "coupon_below_value",
                f"coupon '{policy_id}' is worth {value} but needs an order of only {policy.min_spend}: "
                "an order can be paid entirely by it",
            )

