"""Coupons are checked, ordered and priced by one pure function, `validate_coupons`; a purchase
and a `coupon_redemption` event redeem exactly what it says, or are refused with its reason.
Stacking (which coupons share an order, in what order they apply) never depends on the order the
coupons are listed in."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

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


def test_a_coupon_that_stacks_with_nothing_is_refused_when_one_saving_more_applies():
    m = _member()
    checks = validate_coupons(m.program, m.state, 5000, [SOLO, TEN], AT)
    assert [(c.coupon, c.applies, c.code) for c in checks] == [
        (SOLO, False, "coupon_not_stackable"),  # 100 off, against 300 for the ten percent
        (TEN, True, None),
    ]
    assert checks[0].message == f"coupon '{SOLO}' cannot be used with another coupon, and '{TEN}' applies"
    alone = validate_coupons(m.program, m.state, 5000, [SOLO], AT)
    assert [(c.applies, c.discount) for c in alone] == [(True, 100)]


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


STACKING = """
perkflow: 1
id: stacking
name: Stacking
balances:
  points: {}
rules:
  - id: welcome
    on: signup
    then:
      - issue_coupon: {coupon: thirty-off}
      - issue_coupon: {coupon: twenty-percent}
      - issue_coupon: {coupon: member-day}
      - issue_coupon: {coupon: no-percent}
      - issue_coupon: {coupon: fifteen-percent-first}
      - issue_coupon: {coupon: five-off, count: 3}
coupons:
  thirty-off: {name: 30 off, benefit: {kind: amount_off, amount: 3000}, validity: {days: 30}}
  twenty-percent: {name: 20%, benefit: {kind: percent_off, percent: 20}, validity: {days: 30}}
  member-day: {name: member day, benefit: {kind: amount_off, amount: 800}, validity: {days: 30}, stacking: {with_others: false}}
  no-percent:
    name: 10 off, not with a percentage
    benefit: {kind: amount_off, amount: 1000}
    validity: {days: 30}
    stacking: {not_with_kinds: [percent_off]}
  fifteen-percent-first:
    name: 15% off the whole order
    benefit: {kind: percent_off, percent: 15}
    validity: {days: 30}
    stacking: {apply_order: -1}
  five-off: {name: 5 off, benefit: {kind: amount_off, amount: 500}, validity: {days: 30}, stacking: {max_per_order: 2}}
"""
THIRTY, TWENTY_PCT, MEMBER_DAY, NO_PCT, FIFTEEN_FIRST = "s1#c1", "s1#c2", "s1#c3", "s1#c4", "s1#c5"
FIVES = ("s1#c6", "s1#c7", "s1#c8")


def _stacker() -> Member:
    m = Member(program(STACKING))
    m.event("signup", "2026-03-01T10:00:00+08:00", event_id="s1")
    return m


def _answer(checks: list) -> dict[str, tuple]:
    return {c.coupon: (c.applies, c.order, c.discount, c.code, c.message) for c in checks}


def test_a_coupon_that_excludes_a_kind_never_shares_an_order_with_it_in_either_direction():
    m = _stacker()
    checks = validate_coupons(m.program, m.state, 20_000, [NO_PCT, TWENTY_PCT], AT)
    # 20% of 20000 saves 4000, more than 1000 off: the percentage stays, the amount off goes
    assert [(c.coupon, c.applies, c.code) for c in checks] == [
        (NO_PCT, False, "coupon_kind_excluded"),
        (TWENTY_PCT, True, None),
    ]
    assert checks[0].message == f"coupon '{NO_PCT}' (amount_off) may not share an order with coupon '{TWENTY_PCT}' (percent_off)"
    small = validate_coupons(m.program, m.state, 4000, [TWENTY_PCT, NO_PCT], AT)
    assert [(c.coupon, c.applies, c.code) for c in small] == [
        (TWENTY_PCT, False, "coupon_kind_excluded"),  # 800 off, less than 1000
        (NO_PCT, True, None),
    ]


def test_percent_off_applies_to_what_earlier_coupons_left_unless_its_apply_order_comes_first():
    m = _stacker()
    checks = validate_coupons(m.program, m.state, 20_000, [TWENTY_PCT, THIRTY, FIFTEEN_FIRST], AT)
    assert {c.coupon: (c.order, c.discount) for c in checks} == {
        FIFTEEN_FIRST: (1, 3000),  # apply_order -1: 15% of the whole 20000
        THIRTY: (2, 3000),  # then amount off
        TWENTY_PCT: (3, 2800),  # then 20% of the 14000 left
    }


def test_at_most_max_per_order_of_a_policy_apply_and_the_lowest_ids_win():
    m = _stacker()
    checks = validate_coupons(m.program, m.state, 5000, [FIVES[2], FIVES[1], FIVES[0]], AT)
    assert _answer(checks)[FIVES[2]][3] == "coupon_not_stackable"
    assert [c.coupon for c in sorted(checks, key=lambda c: c.order or 9) if c.applies] == [FIVES[0], FIVES[1]]


def test_a_coupon_that_stacks_with_nothing_applies_alone_when_it_saves_most():
    m = _stacker()
    checks = validate_coupons(m.program, m.state, 3000, [FIVES[0], MEMBER_DAY], AT)
    # 800 against 500: the member-day coupon wins and refuses the rest
    assert _answer(checks) == {
        MEMBER_DAY: (True, 1, 800, None, ""),
        FIVES[0]: (False, None, 0, "coupon_not_stackable", f"coupon '{FIVES[0]}': coupon '{MEMBER_DAY}' cannot be used with another coupon"),
    }


ALL_COUPONS = [THIRTY, TWENTY_PCT, MEMBER_DAY, NO_PCT, FIFTEEN_FIRST, *FIVES, "nope"]
STACKER = _stacker()


@given(
    chosen=st.lists(st.sampled_from(ALL_COUPONS), min_size=1, max_size=len(ALL_COUPONS), unique=True).flatmap(
        lambda ids: st.tuples(st.just(ids), st.permutations(ids))
    ),
    order_amount=st.integers(0, 40_000),
)
def test_stacking_gives_the_same_answer_in_any_order_of_the_coupons(chosen: tuple[list[str], list[str]], order_amount: int):
    listed, shuffled = chosen
    first = validate_coupons(STACKER.program, STACKER.state, order_amount, listed, AT)
    second = validate_coupons(STACKER.program, STACKER.state, order_amount, shuffled, AT)
    assert _answer(first) == _answer(second)
    applied = [c for c in first if c.applies]
    assert sum(c.discount for c in applied) <= order_amount
    assert sorted(c.order for c in applied) == list(range(1, len(applied) + 1))
