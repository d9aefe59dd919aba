"""Achievements (成就): declared goals measured per period, completed for a dated badge and a reward."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from perkflow.engine.calendar import period_key
from perkflow.engine.merge import merge_states
from perkflow.engine.progress import progress
from perkflow.engine.simulate import member_view
from perkflow.rules import loads

from .helpers import Member, outcomes, program

GOALS = """
id: goals
name: Goals
timezone: Asia/Shanghai
balances:
  points: {}
event_types:
  purchase:
    attributes:
      category: {type: str, required: false}
coupons:
  thanks:
    name: Thanks
    benefit: {kind: amount_off, amount: 1000}
    validity: {days: 30}
    budget: 1
achievements:
  week:
    name: {en: Seven-day badge, zh-CN: 七日签到徽章}
    on: [checkin]
    measure: streak
    target: 7
    badge: week_streak
    then: [{award: {balance: points, amount: "70"}}]
  regular:
    name: {en: Regular of the month, zh-CN: 月度常客}
    on: [purchase]
    measure: count
    period: month
    target: 3
    repeat: per_period
    then: [{award: {balance: points, amount: "200"}}]
  beauty:
    name: Beauty lover
    on: [purchase]
    measure: sum
    when: event.category == "beauty"
    of: event.amount
    period: quarter
    target: 50000
    badge: beauty_lover
    then: [{issue_coupon: {coupon: thanks}}]
"""
P = program(GOALS)


def day(n: int, hour: int = 10) -> str:
    """A local time on day n of January 2026 (n may run past 31 into February and on)."""
    return (datetime.fromisoformat("2026-01-01T00:00:00+08:00") + timedelta(days=n - 1, hours=hour)).isoformat()


def test_seven_check_in_days_in_a_row_give_the_badge_with_its_date_and_the_reward_once():
    m = Member(P)
    for n in range(1, 7):
        m.event("checkin", day(n))
    assert m.state.goals["week"].progress == 6 and "week_streak" not in m.state.tags
    seventh = m.event("checkin", day(7))
    assert outcomes(seventh)["achievement:week"] == "fired"
    assert [e.kind for e in seventh.effects] == ["achieved", "tagged", "earn"]
    assert m.balance("points") == 70 and "week_streak" in m.state.tags
    view = member_view(P, m.state, datetime.fromisoformat(day(7)))["achievements"]["week"]
    assert view == {"progress": 0, "target": 7, "completions": 1, "first_completed_at": "2026-01-07T10:00:00+08:00", "badge": "week_streak"}
    for n in range(8, 20):  # another full streak: a once goal never completes again
        assert "achievement:week" not in outcomes(m.event("checkin", day(n)))
    assert m.balance("points") == 70 and m.state.goals["week"].completions == 1


def test_a_second_check_in_the_same_day_does_not_move_a_streak_and_a_missed_day_starts_it_again():
    m = Member(P)
    for n in (1, 2, 2, 3, 5, 6):
        m.event("checkin", day(n, hour=9 + n % 3))
    assert m.state.goals["week"].progress == 2  # days 5 and 6; day 4 was missed


def test_the_third_purchase_of_a_calendar_month_completes_the_goal_once_that_month_and_again_the_next():
    m = Member(P)
    for n in (1, 5, 9, 20, 31):  # five purchases in January: the third completes it
        m.event("purchase", day(n), amount=1000)
    assert m.balance("points") == 200 and m.state.goals["regular"].completed_in == "2026-01"
    m.event("purchase", day(32), amount=1000)  # 1 February: progress counts afresh
    assert member_view(P, m.state, datetime.fromisoformat(day(32)))["achievements"]["regular"]["progress"] == 1
    m.event("purchase", day(33), amount=1000)
    third = m.event("purchase", day(34), amount=1000)
    assert outcomes(third)["achievement:regular"] == "fired" and m.balance("points") == 400
    assert m.state.goals["regular"].completions == 2


def test_a_month_begins_at_local_midnight_in_the_scheme_timezone():
    m = Member(P)
    m.event("purchase", "2026-01-31T10:00:00+08:00", amount=1000)
    m.event("purchase", "2026-01-31T23:59:59+08:00", amount=1000)
    # 16:00 UTC on 31 January is already 1 February in Shanghai: a new month, progress 1
    m.event("purchase", "2026-01-31T16:00:00+00:00", amount=1000)
    assert m.state.goals["regular"].period == "2026-02" and m.state.goals["regular"].progress == 1
    assert m.balance("points") == 0


def test_a_sum_goal_counts_only_what_its_condition_selects_within_a_quarter():
    m = Member(P)
    m.event("purchase", "2026-03-20T10:00:00+08:00", amount=40_000, category="beauty")
    m.event("purchase", "2026-03-25T10:00:00+08:00", amount=90_000, category="food")
    m.event("purchase", "2026-04-01T10:00:00+08:00", amount=20_000, category="beauty")  # Q2: starts again
    assert m.state.goals["beauty"].period == "2026-Q2" and m.state.goals["beauty"].progress == 20_000
    done = m.event("purchase", "2026-05-01T10:00:00+08:00", amount=30_000, category="beauty")
    assert outcomes(done)["achievement:beauty"] == "fired"
    assert [c.policy for c in m.state.coupons] == ["thanks"] and "beauty_lover" in m.state.tags


def test_a_completion_whose_reward_is_out_of_budget_stands_and_the_trace_says_why():
    other = Member(P, "m0")
    other.event("purchase", "2026-02-01T10:00:00+08:00", amount=50_000, category="beauty")
    m = Member(P)
    m.budgets = dict(other.budgets)  # the coupon's budget of 1 is spent
    done = m.event("purchase", "2026-02-02T10:00:00+08:00", amount=50_000, category="beauty")
    line = next(t for t in done.trace if t.rule == "achievement:beauty")
    assert (line.outcome, line.reason) == ("skipped", "budget_exhausted")
    assert "completed (50000 of 50000 this quarter)" in line.detail
    assert m.state.coupons == () and "beauty_lover" in m.state.tags and m.state.goals["beauty"].completions == 1


def test_a_refused_event_moves_no_goal():
    m = Member(P)
    refused = m.event("refund", day(2), original_event_id="nothing", amount=100)
    assert refused.rejection is not None and m.state.goals == {}


def test_progress_says_what_is_left_in_english_and_chinese():
    m = Member(P)
    for n in range(1, 6):
        m.event("checkin", day(n))
    m.event("purchase", day(5), amount=1000)
    needs = {n.id: n for n in progress(P, m.state, datetime.fromisoformat(day(5, hour=20))) if n.kind == "achievement"}
    assert needs["week"].text == {"en": "2 more days in a row for Seven-day badge", "zh-CN": "再连续 2 天即可获得七日签到徽章"}
    assert needs["regular"].text == {"en": "2 more events this month for Regular of the month", "zh-CN": "本月再完成 2 次即可获得月度常客"}
    assert (needs["beauty"].have, needs["beauty"].need, needs["beauty"].met) == (0, 50_000, False)
    # a streak not continued yesterday or today counts as nothing
    later = {n.id: n for n in progress(P, m.state, datetime.fromisoformat(day(8)))}
    assert later["week"].have == 0


def test_period_keys_name_months_quarters_and_years():
    assert [period_key(date(2026, 11, 23), p) for p in ("month", "quarter", "year", "lifetime")] == ["2026-11", "2026-Q4", "2026", ""]


def test_a_goal_must_be_consistent_or_the_scheme_does_not_load():
    base = "id: x\nname: x\nbalances: {points: {}}\nachievements:\n  g: {name: G, on: [purchase], %s}\n"
    cases = {
        "measure: sum, target: 1, badge: b": "a sum goal needs 'of'",
        "measure: count, target: 1, repeat: per_period, badge: b": "repeat: per_period needs a 'period'",
        "measure: streak, target: 7, period: month, badge: b": "a streak counts consecutive days",
        "measure: count, target: 2": "give the goal a 'badge'",
        "measure: count, target: 2, badge: b, when: event.amonut > 1": "unknown name 'event.amonut'",
    }
    for fields, message in cases.items():
        loaded = loads(base % fields, "x.yaml")
        assert any(message in e.message for e in loaded.errors), (fields, [e.message for e in loaded.errors])


@given(st.lists(st.tuples(st.integers(0, 120), st.sampled_from(["checkin", "purchase"])), min_size=1, max_size=40))
def test_a_goal_completes_at_most_once_per_period_and_a_once_goal_at_most_once_in_all(steps: list[tuple[int, str]]):
    m = Member(P)
    completed: list[tuple[str, str]] = []
    for offset, kind in sorted(steps):
        at = day(1 + offset, hour=10)
        decision = m.event(kind, at, amount=30_000, category="beauty") if kind == "purchase" else m.event(kind, at)
        local = datetime.fromisoformat(at).date()
        completed += [(e.rule or "", period_key(local, "month")) for e in decision.effects if e.kind == "achieved"]
    assert sum(1 for rule, _ in completed if rule == "achievement:week") <= 1
    assert sum(1 for rule, _ in completed if rule == "achievement:beauty") <= 1
    monthly = [month for rule, month in completed if rule == "achievement:regular"]
    assert len(monthly) == len(set(monthly))
    weeks = sum(1 for rule, _ in completed if rule == "achievement:week")
    assert m.balance("points") == 70 * weeks + 200 * len(monthly)


def test_merging_keeps_the_more_completions_and_the_earlier_badge():
    early, late = Member(P, "a"), Member(P, "b")
    for n in range(1, 8):
        early.event("checkin", day(n))
    for n in range(10, 17):
        late.event("checkin", day(n))
    late.event("checkin", day(17))
    merged = merge_states(P, late.state, early.state)
    week = merged.goals["week"]
    assert (week.completions, week.earned_at) == (1, datetime.fromisoformat(day(7)))
    assert week.last_day == late.state.goals["week"].last_day and week.progress == 1


def test_a_goal_may_read_a_balance_even_when_no_rule_of_its_event_does():
    prog = program("""
    id: rich
    name: Rich
    balances: {points: {}}
    rules:
      - {id: earn, on: purchase, then: [{award: {balance: points, amount: "event.amount"}}]}
    achievements:
      rich:
        name: Rich
        on: [checkin]
        measure: count
        when: member.points >= 100
        target: 1
        badge: rich
    """)
    m = Member(prog)
    m.event("checkin", day(1))
    m.event("purchase", day(2), amount=100)
    done = m.event("checkin", day(3))
    assert outcomes(done) == {"achievement:rich": "fired"} and "rich" in m.state.tags
