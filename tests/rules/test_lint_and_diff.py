"""Lint finds what a reviewer would; diff says what changed, by id, old -> new."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from perkflow.rules import diff, load, loads, render

BASE = """\
id: lint
name: Lint
balances:
  points: {}
  growth: {spendable: false}
tiers:
  metric: {balance: growth}
  levels:
    - {id: member, name: Member, threshold: 0}
    - {id: gold, name: Gold, threshold: 1000}
rules:
  - id: earn
    on: purchase
    then:
      - award: {balance: points, amount: "event.amount / 100"}
      - award: {balance: growth, amount: "event.amount / 100"}
coupons:
  five-off:
    name: Five off
    benefit: {kind: amount_off, amount: 500}
    min_spend: 2000
    validity: {days: 30}
"""


def warnings(text: str) -> list[tuple[str, str, int]]:
    loaded = loads(text, "lint.yaml")
    assert loaded.errors == [], [e.render() for e in loaded.errors]
    return [(w.code, w.path, w.line) for w in loaded.warnings]


def test_a_clean_scheme_has_no_warnings():
    assert warnings(BASE) == []


def test_a_rule_behind_an_unconditional_exclusive_rule_is_shadowed():
    text = BASE.replace("  - id: earn\n", "  - id: flat\n    on: purchase\n    priority: 5\n    exclusive: true\n    then: [{tag: buyer}]\n  - id: earn\n")
    assert warnings(text) == [("shadowed_rule", "rules[1]", 17)]


def test_a_tier_whose_metric_nothing_awards_is_unreachable():
    text = BASE.replace("      - award: {balance: growth, amount: \"event.amount / 100\"}\n", "")
    assert warnings(text) == [("unreachable_tier", "tiers.levels[1]", 10)]


def test_a_tier_whose_metric_only_an_achievement_awards_is_reachable():
    text = BASE.replace("      - award: {balance: growth, amount: \"event.amount / 100\"}\n", "") + (
        "achievements:\n  regular:\n    name: Regular\n    on: [purchase]\n    measure: count\n"
        "    period: month\n    target: 3\n    repeat: per_period\n"
        "    then: [{award: {balance: growth, amount: \"300\"}}]\n"
    )
    assert warnings(text) == []


def test_a_multiplied_award_without_cap_or_budget_is_unbounded():
    text = BASE.replace('amount: "event.amount / 100"}\n      - award: {balance: growth', 'amount: "event.amount / 100 * 3"}\n      - award: {balance: growth')
    [(code, path, _)] = warnings(text)
    assert (code, path) == ("unbounded_award", "rules[0].then[0].award.amount")
    capped = text.replace("    on: purchase\n    then:", "    on: purchase\n    caps: [{limit: 1, per: day}]\n    then:")
    assert warnings(capped) == []


def test_overlapping_campaigns_on_the_same_event_need_a_stacking_decision():
    campaign = """\
  - id: {id}
    name: {id}
    start: 2026-06-01T00:00:00
    end: 2026-07-01T00:00:00
    rules:
      - id: {id}-bonus
        on: purchase
        then: [{{award: {{balance: points, amount: "10"}}}}]
"""
    text = BASE + "campaigns:\n" + campaign.format(id="summer") + campaign.format(id="june")
    assert [w[0] for w in warnings(text)] == ["overlapping_campaigns"]
    decided = text.replace("      - id: june-bonus\n", "      - id: june-bonus\n        exclusive: true\n        priority: 9\n")
    assert warnings(decided) == []


def test_a_coupon_worth_more_than_its_minimum_spend_is_flagged():
    text = BASE.replace("min_spend: 2000", "min_spend: 300")
    assert warnings(text) == [("coupon_below_value", "coupons.five-off.min_spend", 21)]


def test_the_diff_of_a_scheme_with_itself_is_empty():
    scheme = load("examples/coffee/scheme.yaml").scheme
    assert scheme is not None
    assert diff(scheme, scheme) == []
    assert render([]) == "no differences\n"


def test_the_diff_names_what_was_added_removed_and_changed_with_old_and_new_values():
    old = loads(BASE, "old.yaml").scheme
    new_text = (
        BASE.replace('"event.amount / 100"}\n      - award: {balance: growth', '"event.amount / 50"}\n      - award: {balance: growth')
        .replace("threshold: 1000", "threshold: 800")
        .replace("  five-off:\n", "  ten-off:\n")
    )
    new = loads(new_text, "new.yaml").scheme
    assert old is not None and new is not None
    changes = {(c.kind, c.section, c.id): [(f.path, f.old, f.new) for f in c.fields] for c in diff(old, new)}
    assert changes == {
        ("removed", "coupons", "five-off"): [],
        ("added", "coupons", "ten-off"): [],
        ("changed", "rules", "earn"): [("then[0].award.amount", "event.amount / 100", "event.amount / 50")],
        ("changed", "tiers.levels", "gold"): [("threshold", 1000, 800)],
    }
    text = render(diff(old, new))
    assert '~ earn\n      then[0].award.amount: "event.amount / 100" -> "event.amount / 50"' in text


def test_the_diff_names_each_achievement_added_or_changed():
    salon = load("examples/salon/scheme.yaml").scheme
    assert salon is not None and salon.achievements
    fewer = salon.model_copy(update={"achievements": {"checkin-week": salon.achievements["checkin-week"]}})
    goal = salon.achievements["checkin-week"].model_copy(update={"target": 10})
    changed = salon.model_copy(update={"achievements": {**salon.achievements, "checkin-week": goal}})
    assert [(c.kind, c.section, c.id) for c in diff(fewer, salon)] == [("added", "achievements", "regular-month")]
    [change] = diff(salon, changed)
    assert (change.section, change.id, [(f.path, f.old, f.new) for f in change.fields]) == ("achievements", "checkin-week", [("target", 7, 10)])


@settings(max_examples=40, deadline=None)
@given(st.permutations(["id: perm", "name: Perm", "timezone: Asia/Shanghai", "balances: {points: {}}"]))
def test_key_order_never_changes_the_diff_or_the_hash(lines: list[str]):
    from perkflow.rules import content_hash

    reference = loads("id: perm\nname: Perm\ntimezone: Asia/Shanghai\nbalances: {points: {}}\n", "a.yaml").scheme
    shuffled = loads("\n".join(lines) + "\n", "b.yaml").scheme
    assert reference is not None and shuffled is not None
    assert diff(reference, shuffled) == []
    assert content_hash(reference) == content_hash(shuffled)
