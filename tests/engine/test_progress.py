"""What a member still needs: tiers, the tier review, rewards and coupons, in numbers and words."""

from __future__ import annotations

from datetime import datetime

from perkflow.engine.progress import money, progress

from .helpers import Member, program

CLUB = """
id: club
name: Club
timezone: Asia/Shanghai
balances:
  points: {label: {en: Points, zh-CN: 积分}, pending: {duration: 7d}}
  growth: {label: {en: Growth, zh-CN: 成长值}, spendable: false, expiry: {kind: rolling, after: 12mo}}
tiers:
  metric: {balance: growth}
  levels:
    - {id: member, name: {en: Member, zh-CN: 普通会员}, threshold: 0}
    - {id: silver, name: {en: Silver, zh-CN: 银卡}, threshold: 500, retain: 400}
    - {id: gold, name: {en: Gold, zh-CN: 金卡}, threshold: 2000}
  downgrade: {kind: review, every: 12mo}
rules:
  - id: earn
    on: purchase
    then:
      - award: {balance: points, amount: "event.amount / 100"}
      - award: {balance: growth, amount: "event.amount / 100"}
  - id: welcome
    on: signup
    then: [{issue_coupon: {coupon: thirty-off}}, {issue_coupon: {coupon: any-order}}]
coupons:
  thirty-off: {name: {en: ¥10 off ¥50, zh-CN: 满50减10}, benefit: {kind: amount_off, amount: 1000}, min_spend: 5000, validity: {days: 30}}
  any-order: {name: {en: ¥2 off, zh-CN: 2元券}, benefit: {kind: amount_off, amount: 200}, validity: {days: 30}}
rewards:
  mug:
    name: {en: A mug, zh-CN: 马克杯}
    cost: {balance: points, amount: 500}
    grants: [{tag: mug_owner}]
    per_member: 1
  tote:
    name: {en: A tote bag, zh-CN: 帆布袋}
    cost: {balance: points, amount: 300}
    grants: [{tag: tote_owner}]
    stock: 10
"""


def _by(needs, kind):
    return {n.id: n for n in needs if n.kind == kind}


def test_each_tier_above_says_how_much_more_of_its_metric_in_english_and_chinese():
    m = Member(program(CLUB))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=38_000)  # 380 growth
    tiers = _by(progress(m.program, m.state, datetime.fromisoformat("2026-03-02T10:00:00+08:00")), "tier")
    assert list(tiers) == ["silver", "gold"]
    silver = tiers["silver"]
    assert (silver.unit, silver.have, silver.need, silver.lacking, silver.met) == ("growth", 380, 500, 120, False)
    assert silver.text == {"en": "120 more growth to Silver", "zh-CN": "再获得 120 成长值即可升级为银卡"}
    assert tiers["gold"].text["en"] == "1,620 more growth to Gold"


def test_the_current_tier_shows_what_keeps_it_at_the_next_review():
    m = Member(program(CLUB))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=60_000)  # silver
    at = datetime.fromisoformat("2027-02-20T10:00:00+08:00")  # the growth is still there
    [keep] = _by(progress(m.program, m.state, at), "tier_keep").values()
    assert (keep.id, keep.have, keep.need, keep.met) == ("silver", 600, 400, True)
    assert keep.until == m.state.tier_review_at
    assert keep.text["en"] == "enough growth to keep Silver at the review on 2027-03-01"
    after_expiry = datetime.fromisoformat("2027-03-02T10:00:00+08:00")  # the growth lot expired at midnight
    [keep] = _by(progress(m.program, m.state, after_expiry), "tier_keep").values()
    assert (keep.have, keep.lacking, keep.met) == (0, 400, False)
    assert keep.text["zh-CN"] == "2027-03-01 前再获得 400 成长值即可保级银卡"


def test_a_reward_says_what_it_costs_and_pending_points_do_not_count():
    m = Member(program(CLUB))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=40_000)  # 400 points, pending 7 days
    pending = _by(progress(m.program, m.state, datetime.fromisoformat("2026-03-02T10:00:00+08:00")), "reward")
    assert (pending["tote"].have, pending["tote"].lacking) == (0, 300)
    assert pending["mug"].text == {
        "en": "A mug is available when you have 500 points: 500 more",
        "zh-CN": "马克杯需要 500 积分，还差 500",
    }
    later = _by(progress(m.program, m.state, datetime.fromisoformat("2026-03-09T10:00:00+08:00")), "reward")
    assert (later["tote"].met, later["mug"].lacking) == (True, 100)
    assert later["tote"].text["en"] == "A tote bag is available now for 300 points"


def test_a_reward_out_of_stock_or_redeemed_to_its_limit_says_so():
    m = Member(program(CLUB))
    m.event("purchase", "2026-03-01T10:00:00+08:00", amount=100_000)
    m.event("reward_redemption", "2026-03-09T10:00:00+08:00", reward="mug")
    at = datetime.fromisoformat("2026-03-10T10:00:00+08:00")
    rewards = _by(progress(m.program, m.state, at, budgets={"reward:tote": 10}), "reward")
    assert (rewards["mug"].reason, rewards["mug"].met) == ("limit_reached", False)
    assert (rewards["tote"].reason, rewards["tote"].met) == ("out_of_stock", False)
    assert rewards["tote"].text == {"en": "A tote bag is out of stock", "zh-CN": "帆布袋已兑完"}


def test_a_coupon_says_how_much_more_to_spend_on_an_order():
    m = Member(program(CLUB))
    m.event("signup", "2026-03-01T10:00:00+08:00")
    at = datetime.fromisoformat("2026-03-02T10:00:00+08:00")
    coupons = {n.name["en"]: n for n in progress(m.program, m.state, at, order_amount=2_000) if n.kind == "coupon"}
    short = coupons["¥10 off ¥50"]
    assert (short.have, short.need, short.lacking) == (2_000, 5_000, 3_000)
    assert short.text == {"en": "spend ¥30 more to use ¥10 off ¥50", "zh-CN": "再消费 ¥30 即可使用满50减10"}
    assert coupons["¥2 off"].met and coupons["¥2 off"].text["en"] == "¥2 off can be used on any order"
    no_order = [n for n in progress(m.program, m.state, at) if n.kind == "coupon"]
    assert no_order[0].text["en"] == "¥10 off ¥50 can be used on an order of ¥50 or more"
    expired = datetime.fromisoformat("2026-04-01T00:00:00+08:00")
    assert [n for n in progress(m.program, m.state, expired) if n.kind == "coupon"] == []


def test_money_is_written_in_the_currencys_units():
    assert (money(3000, "CNY"), money(3050, "CNY"), money(123456, "USD"), money(500, "JPY"), money(99, "CHF")) == (
        "¥30", "¥30.50", "$1,234.56", "¥500", "CHF 0.99",
    )
