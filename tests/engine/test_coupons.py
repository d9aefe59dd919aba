"""Coupons are checked, ordered and priced by one pure function, `validate_coupons`; a purchase
and a `coupon_redemption` event redeem exactly what it says, or are refused with its reason."""

from __future__ import annotations

from datetime import datetime

from perkflow.engine.coupons import validate_coupons

from .helpers import Member, program

SCHEME = """
perkflow: 1
id: coupons
name: Coupons
balances:
  points: {}
rules:
  - id: welcome
    on: signup
    then:
      - issue_coupon: {coupon: five-off, count: 2}
      - issue_coupon: {coupon: ten-percent}
      - issue_coupon: {coupon: solo}
      - issue_coupon: {coupon: latte}
coupons:
  five-off: {name: 5 off, benefit: {kind: amount_off, amount: 500}, min_spend: 2000, validity: {days: 30}}
  ten-percent: {name: 10%, benefit: {kind: percent_off, percent: 10, max_off: 300}, validity: {days: 30}}
  solo: {name: alone, benefit: {kind: amount_off, amount: 100}, validity: {days: 30}, stacking: {with_others: false}}
  latte: {name: latte, benefit: {kind: free_item, sku: LATTE, value: 1800}, validity: {days: 30}}
"""
AT = datetime.fromisoformat("2026-03-02T10:00:00+08:00")
FIVE_A, FIVE_B, TEN, SOLO, LATTE = "s1#c1", "s1#c2", "s1#c3", "s1#c4", "s1#c5"


def _member() -> Member:
    m = Member(program(SCHEME))
    m.event("signup", "2026-03-01T10:00:00+08:00", event_id="s1")
    return m


def test_amount_off_applies_before_free_items_and_those_before_percent_off():
    m = _member()
    checks = validate_coupons(m.program, m.state, 5000, [TEN, LATTE, FIVE_A], AT)
    assert [(c.coupon, c.applies, c.order, c.discount) for c in checks] == [
        (TEN, True, 3, 270),  # 10% of what is left after 500 and 1800 off: 2700
        (LATTE, True, 2, 1800),
        (FIVE_A, True, 1, 500),
    ]


def test_percent_off_is_capped_by_its_max_off():
    m = _member()
    [check] = validate_coupons(m.program, m.state, 10_000, [TEN], AT)
    assert check.discount == 300


def test_each_refused_coupon_says_why_and_the_others_still_apply():
    m = _member()
    checks = validate_coupons(m.program, m.state, 1500, [TEN, "nope", TEN, FIVE_A, SOLO, FIVE_B], AT)
    assert [(c.coupon, c.code) for c in checks] == [
        (TEN, None),
        ("nope", "unknown_coupon"),
        (TEN, "coupon_twice"),
        (FIVE_A, "coupon_min_spend"),
        (SOLO, "coupon_not_stackable"),
        (FIVE_B, "coupon_min_spend"),
    ]
    assert checks[0].applies and checks[0].discount == 150


def test_a_policy_caps_how_many_of_it_one_order_takes():
    m = _member()
    checks = validate_coupons(m.program, m.state, 5000, [FIVE_A, FIVE_B], AT)
    assert [(c.applies, c.code) for c in checks] == [(True, None), (False, "coupon_not_stackable")]
    assert "at most 1 'five-off'" in checks[1].message


def test_a_coupon_that_stacks_with_nothing_refuses_those_after_it():
    m = _member()
    checks = validate_coupons(m.program, m.state, 5000, [SOLO, TEN], AT)
    assert [(c.applies, c.code) for c in checks] == [(True, None), (False, "coupon_not_stackable")]
    assert f"coupon '{SOLO}' cannot be used with another coupon" in checks[1].message


def test_validity_is_checked_at_the_time_given():
    m = _member()
    [late] = validate_coupons(
        m.program, m.state, 5000, [FIVE_A], datetime.fromisoformat("2026-04-01T00:00:00+08:00")
    )
    assert (late.applies, late.code, late.message) == (
        False,
        "coupon_not_usable",
        f"coupon '{FIVE_A}' is not valid at this time",
    )


def test_a_purchase_is_refused_naming_the_first_coupon_that_does_not_apply():
    m = _member()
    refused = m.event("purchase", "2026-03-02T10:00:00+08:00", amount=1500, coupons=[TEN, FIVE_A])
    assert refused.rejection is not None
    assert (refused.rejection.code, refused.rejection.pointer) == (
        "coupon_min_spend",
        "/attributes/coupons/1",
    )
    assert all(c.redeemed_at is None for c in m.state.coupons)


def test_a_purchase_redeems_with_the_discounts_validation_gives():
    m = _member()
    promised = validate_coupons(m.program, m.state, 5000, [TEN, FIVE_A], AT)
    used = m.event(
        "purchase", "2026-03-02T10:00:00+08:00", amount=4050, order_amount=5000, coupons=[TEN, FIVE_A]
    )
    redeemed = [(e.coupon, e.discount) for e in used.effects if e.kind == "coupon_redeemed"]
    assert redeemed == [(c.coupon, c.discount) for c in sorted(promised, key=lambda c: c.order or 0)]
    assert {c.id: c.redeemed_by for c in m.state.coupons if c.redeemed_at} == {TEN: "e2", FIVE_A: "e2"}


def test_a_coupon_redemption_event_uses_one_coupon_outside_a_purchase():
    m = _member()
    decision = m.event("coupon_redemption", "2026-03-02T10:00:00+08:00", coupon=LATTE)
    assert [(e.kind, e.coupon, e.discount) for e in decision.effects] == [("coupon_redeemed", LATTE, 1800)]
    again = m.event("coupon_redemption", "2026-03-02T11:00:00+08:00", coupon=LATTE)
    assert again.rejection is not None and (again.rejection.code, again.rejection.pointer) == (
        "coupon_not_usable",
        "/attributes/coupon",
    )
    short = m.event("coupon_redemption", "2026-03-02T11:00:00+08:00", coupon=FIVE_A, order_amount=1000)
    assert short.rejection is not None and short.rejection.code == "coupon_min_spend"
