"""The examples, replayed and checked against their published terms.

Each `examples/<business>/` is replayed and must end in its expected.json, and its events.jsonl must
be what its generate.py writes. expected.json is written by the engine (examples/update_expected.py),
so it is only trusted because the tests below also recompute the key figures from events.jsonl in
plain Python, from the terms each README publishes, without the engine, and compare them with the
replay: growth and points per member, tiers, the campaign's holdout and rollout, wallet principal
and bonus, year-end expiry, streak rewards, achievements and their badges, welcome coupons within budget,
referral caps, debts, and
the refusals of a sold-out reward.
"""

from __future__ import annotations

import hashlib
import json
import runpy
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from perkflow.engine import compile, replay
from perkflow.engine.progress import progress
from perkflow.rules import load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAMES = sorted(p.parent.name for p in EXAMPLES.glob("*/scheme.yaml"))
SHANGHAI = ZoneInfo("Asia/Shanghai")


@cache
def events(name: str) -> tuple[dict[str, Any], ...]:
    with (EXAMPLES / name / "events.jsonl").open(encoding="utf-8") as lines:
        return tuple(json.loads(line) for line in lines if line.strip())


@cache
def report(name: str) -> dict[str, Any]:
    loaded = load(EXAMPLES / name / "scheme.yaml")
    assert loaded.scheme is not None, [e.render() for e in loaded.errors]
    run = replay(compile(loaded.scheme), events(name))
    result: dict[str, Any] = json.loads(json.dumps(run.report(), ensure_ascii=False))
    return result


def local(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["occurred_at"]).astimezone(SHANGHAI)


def attrs(event: dict[str, Any]) -> dict[str, Any]:
    return event.get("attributes", {})


def balance(name: str, member: str, which: str) -> int:
    return int(report(name)["members"][member]["balances"].get(which, 0))


def rule_counts(name: str, rule: str) -> dict[str, int]:
    return dict(report(name)["rules"].get(rule, {}))


def clawback(units: int, amount: int, refunded_before: int, refunded_now: int) -> int:
    """The published refund rule: each award is taken back in proportion to the money refunded,
    rounded down on the running total, so a full refund takes back exactly what was earned."""
    return units * (refunded_before + refunded_now) // amount - units * refunded_before // amount


def differences(expected: Any, actual: Any, path: str = "") -> Iterator[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual), key=str):
            here = f"{path}.{key}" if path else str(key)
            if key not in actual:
                yield f"{here}: missing (expected {json.dumps(expected[key], ensure_ascii=False)[:120]})"
            elif key not in expected:
                yield f"{here}: unexpected {json.dumps(actual[key], ensure_ascii=False)[:120]}"
            else:
                yield from differences(expected[key], actual[key], here)
    elif isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            yield from differences(e, a, f"{path}[{i}]")
    elif expected != actual:
        want, got = (json.dumps(x, ensure_ascii=False)[:200] for x in (expected, actual))
        yield f"{path}: expected {want}, got {got}"


# --- every example ---------------------------------------------------------------------------------


def test_there_are_the_three_examples():
    assert NAMES == ["coffee", "salon", "shop"]


@pytest.mark.parametrize("name", NAMES)
def test_the_example_has_its_files_and_a_readme_in_english_and_chinese(name: str):
    folder = EXAMPLES / name
    for file in ("scheme.yaml", "events.jsonl", "expected.json", "generate.py", "README.md"):
        assert (folder / file).is_file(), f"examples/{name}/{file} is missing"
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "## English" in readme and "## 中文" in readme


@pytest.mark.parametrize("name", NAMES)
def test_the_scheme_loads_without_errors_or_lint_warnings(name: str):
    loaded = load(EXAMPLES / name / "scheme.yaml")
    assert [e.render() for e in loaded.errors] == []
    assert [w.render() for w in loaded.warnings] == []


@pytest.mark.parametrize("name", NAMES)
def test_the_replay_ends_in_the_expected_state(name: str):
    expected = json.loads((EXAMPLES / name / "expected.json").read_text(encoding="utf-8"))
    actual = report(name)
    if actual != expected:
        found = list(differences(expected, actual))
        shown = "\n  ".join(found[:40]) + (f"\n  ... and {len(found) - 40} more" if len(found) > 40 else "")
        pytest.fail(
            f"examples/{name}: the replay differs from expected.json in {len(found)} places:\n  {shown}\n"
            "If the change is intended, run examples/update_expected.py and review the diff."
        )


@pytest.mark.parametrize("name", NAMES)
def test_the_stream_is_what_its_generator_writes(name: str, tmp_path: Path):
    out = tmp_path / "events.jsonl"
    runpy.run_path(str(EXAMPLES / name / "generate.py"))["write"](out)
    assert out.read_bytes() == (EXAMPLES / name / "events.jsonl").read_bytes(), (
        f"examples/{name}/events.jsonl is not what generate.py writes now: run it and review the diff"
    )


@pytest.mark.parametrize("name", NAMES)
def test_the_stream_is_hundreds_of_events_over_months_in_time_order_with_unique_ids(name: str):
    stream = events(name)
    assert 400 <= len(stream) <= 1500
    assert len({e["id"] for e in stream}) == len(stream)
    times = [local(e) for e in stream]
    assert times == sorted(times)
    assert times[-1] - times[0] > timedelta(days=140)


def test_update_expected_finds_every_example_up_to_date(capsys: pytest.CaptureFixture[str]):
    tool = runpy.run_path(str(EXAMPLES / "update_expected.py"))
    assert tool["main"](["--check"]) == 0
    assert capsys.readouterr().out.count("up to date") == len(NAMES)


# --- coffee: Bean Club ------------------------------------------------------------------------------

# The published terms: tier, growth to reach it, points per ¥10 paid.
COFFEE_TIERS = [("member", 0, 10), ("silver", 500, 12), ("gold", 2000, 15)]
COFFEE_REWARDS = {"americano": 1500, "ten-off": 1000}
WEEKEND = ("double-weekend", Fraction(1, 10), Fraction(2, 10))  # campaign id, holdout, rollout
WEEKEND_END = datetime(2026, 7, 1, tzinfo=SHANGHAI)


def campaign_group(campaign: str, member: str, holdout: Fraction, rollout: Fraction) -> str:
    """SETTLED.md: u = int(sha256(f"{campaign_id}:{member_id}").hexdigest()[:16], 16) / 2**64."""
    u = Fraction(int(hashlib.sha256(f"{campaign}:{member}".encode()).hexdigest()[:16], 16), 2**64)
    if u < holdout:
        return "holdout"
    return "rollout" if u < holdout + rollout * (1 - holdout) else "outside"


class CoffeeMember:
    def __init__(self) -> None:
        self.points = self.growth = self.rank = self.upgrades = 0
        self.earned: dict[str, tuple[int, list[tuple[str, int]]]] = {}  # purchase id -> (amount, awards)
        self.refunded: Counter[str] = Counter()
        self.visits: list[date] = []
        self.latte_hits = 0
        self.birthday_months: set[tuple[int, int]] = set()


@cache
def coffee_model() -> dict[str, Any]:
    """Bean Club's published terms, applied to events.jsonl in plain Python."""
    members: dict[str, CoffeeMember] = defaultdict(CoffeeMember)
    used: set[str] = set()
    refused: list[str] = []
    totals: Counter[str] = Counter()
    weekend: Counter[str] = Counter()
    bonus_rule: Counter[str] = Counter()
    for event in events("coffee"):
        m = members[event["member_id"]]
        a = attrs(event)
        kind = event["type"]
        if kind == "signup":
            m.points += 100
            totals["points_issued"] += 100
        elif kind == "purchase":
            if used & set(a.get("coupons", [])):
                refused.append(event["id"])  # a coupon already used refuses the whole order
                continue
            used |= set(a.get("coupons", []))
            amount = a["amount"]
            per_ten = COFFEE_TIERS[m.rank][2]  # earned at the tier held before the purchase
            base = amount * per_ten // 1000 if amount > 0 else 0
            awards = [("points", base), ("growth", amount // 100 if amount > 0 else 0)]
            at_weekend = local(event).isoweekday() >= 6
            group = campaign_group(WEEKEND[0], event["member_id"], WEEKEND[1], WEEKEND[2])
            in_campaign = local(event) < WEEKEND_END
            # the weekend-bonus group (best): the double points, or Silver's and Gold's half point
            # per yuan, whichever is worth more (a point is worth 1 fen); on a tie the tier bonus,
            # the first in file order
            double = amount * per_ten // 1000 if in_campaign and group == "rollout" and at_weekend else None
            bonus = amount // 200 if m.rank >= 1 and at_weekend else None
            if bonus is not None and (double is None or bonus >= double):
                awards.append(("points", bonus))
                bonus_rule["fired"] += 1
                if double is not None:
                    weekend["skipped:group_lost"] += 1
            elif double is not None:
                awards.append(("points", double))
                weekend["fired"] += 1
                if bonus is not None:
                    bonus_rule["skipped:group_lost"] += 1
            if not (m.rank >= 1 and at_weekend):
                bonus_rule["skipped:when_false"] += 1
            if not in_campaign:
                weekend["skipped:outside_window"] += 1
            elif group != "rollout":
                weekend["skipped:in_holdout" if group == "holdout" else "skipped:not_in_rollout"] += 1
            elif not at_weekend:
                weekend["skipped:when_false"] += 1
            for which, units in awards:
                setattr(m, which, getattr(m, which) + units)
                totals[f"{which}_issued"] += units
            m.earned[event["id"]] = (amount, awards)
            reached = max(i for i, (_, threshold, _) in enumerate(COFFEE_TIERS) if m.growth >= threshold)
            if reached > m.rank:  # tiers only go down at a yearly review, after this stream
                m.rank, m.upgrades = reached, m.upgrades + 1
            today = local(event).date()
            m.visits.append(today)
            if sum(1 for d in m.visits if d > today - timedelta(days=30)) == 5:
                m.latte_hits += 1
        elif kind == "refund":
            original = a["original_event_id"]
            amount, awards = m.earned[original]
            for which, units in awards:
                take = min(clawback(units, amount, m.refunded[original], a["amount"]), getattr(m, which))
                setattr(m, which, getattr(m, which) - take)
                totals[f"{which}_clawed_back"] += take
            m.refunded[original] += a["amount"]
        elif kind == "reward_redemption":
            cost = COFFEE_REWARDS[a["reward"]]
            assert m.points >= cost
            m.points -= cost
            totals["points_redeemed"] += cost
        elif kind == "birthday":
            day = local(event).date()
            m.birthday_months.add((day.year, day.month))
    return {"members": members, "refused": refused, "totals": totals, "weekend": weekend, "bonus": bonus_rule}


def test_growth_is_one_per_yuan_less_refunds():
    model = coffee_model()
    for member, m in model["members"].items():
        assert balance("coffee", member, "growth") == m.growth, member
    growth = report("coffee")["totals"]["balances"]["growth"]
    assert growth["issued"] == model["totals"]["growth_issued"]
    assert growth["clawed_back"] == model["totals"]["growth_clawed_back"] > 0


def test_points_are_earned_at_the_tier_held_before_each_purchase_and_doubled_at_weekends_in_the_rollout():
    model = coffee_model()
    for member, m in model["members"].items():
        assert balance("coffee", member, "points") == m.points, member
    points = report("coffee")["totals"]["balances"]["points"]
    assert points["issued"] == model["totals"]["points_issued"]
    assert points["redeemed"] == model["totals"]["points_redeemed"] > 0
    assert points["clawed_back"] == model["totals"]["points_clawed_back"] > 0


def test_tiers_follow_the_highest_growth_reached_and_each_upgrade_gives_a_coupon():
    model = coffee_model()
    tiers = Counter(COFFEE_TIERS[m.rank][0] for m in model["members"].values())
    assert report("coffee")["totals"]["tiers"] == dict(sorted(tiers.items()))
    assert set(tiers) == {"member", "silver", "gold"}
    for member, m in model["members"].items():
        assert report("coffee")["members"][member]["tier"] == COFFEE_TIERS[m.rank][0]
    upgrades = sum(m.upgrades for m in model["members"].values())
    assert report("coffee")["totals"]["coupons"]["upgrade-5"]["issued"] == upgrades


def test_the_weekend_campaign_holds_out_a_tenth_and_reaches_a_fifth_of_the_rest_by_the_settled_hash():
    groups = Counter(campaign_group(WEEKEND[0], m, WEEKEND[1], WEEKEND[2]) for m in coffee_model()["members"])
    assert groups["holdout"] > 0 and groups["rollout"] > 0 and groups["outside"] > groups["rollout"]
    assert rule_counts("coffee", "weekend-double") == dict(sorted(coffee_model()["weekend"].items()))


def test_at_weekends_silver_and_gold_get_the_tier_bonus_or_the_double_points_whichever_is_worth_more():
    model = coffee_model()
    assert rule_counts("coffee", "weekend-tier-bonus") == dict(sorted(model["bonus"].items()))
    assert model["bonus"]["fired"] > 0 and model["bonus"]["skipped:group_lost"] > 0


def test_a_member_gets_one_birthday_treat_even_when_two_systems_send_the_birthday():
    model = coffee_model()
    treats = sum(len(m.birthday_months) for m in model["members"].values())
    birthdays = sum(1 for e in events("coffee") if e["type"] == "birthday")
    assert report("coffee")["totals"]["coupons"]["birthday-20"]["issued"] == treats
    assert rule_counts("coffee", "birthday-treat") == {
        "fired": treats,
        "skipped:cap_reached": birthdays - treats,
    }
    assert birthdays - treats == 1


def test_the_fifth_visit_in_30_days_earns_a_free_latte_up_to_twelve_a_member():
    model = coffee_model()
    expected = {member: min(m.latte_hits, 12) for member, m in model["members"].items()}
    for member, count in expected.items():
        coupons = report("coffee")["members"][member]["coupons"]
        assert sum(1 for c in coupons if c["policy"] == "latte-free") == count, member
    assert report("coffee")["totals"]["coupons"]["latte-free"]["issued"] == sum(expected.values())


def test_an_order_with_a_coupon_already_used_is_refused_and_every_other_coupon_is_redeemed_once():
    model = coffee_model()
    assert [r["event_id"] for r in report("coffee")["rejections"]] == model["refused"]
    assert [r["code"] for r in report("coffee")["rejections"]] == ["coupon_not_usable"]
    refused = set(model["refused"])
    used = [
        c
        for e in events("coffee")
        if e["type"] == "purchase" and e["id"] not in refused
        for c in attrs(e).get("coupons", [])
    ]
    redeemed = sum(p.get("redeemed", 0) for p in report("coffee")["totals"]["coupons"].values())
    assert redeemed == len(used) == len(set(used))


# --- salon: Lotus Salon ----------------------------------------------------------------------------

SALON_REWARDS = {"hand-spa": 2000, "ten-percent": 600}
NEW_YEAR = datetime(2026, 1, 1, tzinfo=SHANGHAI)
SPRING = (datetime(2026, 3, 1, tzinfo=SHANGHAI), datetime(2026, 4, 1, tzinfo=SHANGHAI))  # spring care month
SPRING_POINTS, SPRING_LIABILITY = 200, 4000  # 200 points at 1 fen each, ¥40 of them in all
SPRING_COUPON, SPRING_PER_SALON, SPRING_MONEY = 5000, 15, 125000  # ¥50 coupons: 15 a salon, ¥1,250 in all


class SalonMember:
    def __init__(self) -> None:
        self.principal = self.bonus = 0
        self.points: dict[int, int] = defaultdict(int)  # by the year the points were earned in
        self.expired = 0
        self.earned: dict[
            str, tuple[int, list[tuple[str, int, int]]]
        ] = {}  # id -> (amount, [(what, units, year)])
        self.refunded: Counter[str] = Counter()
        self.paid: dict[str, list[tuple[str, int]]] = {}  # purchase id -> [(points / principal / bonus, units)]
        self.bonus_months: Counter[str] = Counter()
        self.checkin_days: set[date] = set()
        self.last_checkin: date | None = None
        self.streak = 0
        self.streak_fired: Counter[str] = Counter()  # per day and per month
        self.paid_visits: Counter[str] = Counter()  # per month, for the regular of the month
        self.regular_months: list[str] = []  # months in which the third paid visit earned 200 points
        self.regular_since: datetime | None = None  # the first of them: the date of the badge
        self.week_badge_at: datetime | None = None  # the first seven-day streak

    def expire(self, at: datetime) -> None:
        if at >= NEW_YEAR and self.points[2025]:
            self.expired += self.points.pop(2025)

    def take_points(self, units: int, first_year: int | None = None) -> int:
        """Soonest expiry first (last year's points before this year's); a refund starts with the
        year its purchase earned in."""
        years = sorted(self.points, key=lambda y: (y != first_year, y))
        taken = 0
        for year in years:
            n = min(units - taken, self.points[year])
            self.points[year] -= n
            taken += n
        return taken


def wallet_draw(paid: int, principal: int, bonus: int) -> tuple[int, int]:
    """Salon terms: a payment takes principal and bonus 5 : 1 (bonus rounded down); when one part
    runs short the other pays the rest."""
    shares = {"principal": paid - paid // 6, "bonus": paid // 6}
    holdings = {"principal": principal, "bonus": bonus}
    short = 0
    for part in ("principal", "bonus"):
        if shares[part] > holdings[part]:
            short += shares[part] - holdings[part]
            shares[part] = holdings[part]
    for part in ("principal", "bonus"):
        extra = min(short, holdings[part] - shares[part])
        shares[part] += extra
        short -= extra
    assert short == 0, "the stream never pays more from the wallet than it holds"
    return shares["principal"], shares["bonus"]


@cache
def salon_model() -> dict[str, Any]:
    """Lotus Salon's published terms, applied to events.jsonl in plain Python."""
    members: dict[str, SalonMember] = defaultdict(SalonMember)
    totals: Counter[str] = Counter()
    rules: dict[str, Counter[str]] = defaultdict(Counter)
    spring_coupons: Counter[str] = Counter()  # per salon
    for event in events("salon"):
        m = members[event["member_id"]]
        a = attrs(event)
        at = local(event)
        m.expire(at)
        kind = event["type"]
        if kind == "signup":
            m.points[at.year] += 100
        elif kind == "topup":
            awards = [("principal", a["amount"], 0)]
            month = f"{at:%Y-%m}"
            if m.bonus_months[month] >= 2:
                rules["topup-bonus"]["skipped:cap_reached"] += 1
            elif a["amount"] >= 10000:
                awards.append(("bonus", a["amount"] // 10000 * 2000, 0))
                m.bonus_months[month] += 1
                rules["topup-bonus"]["fired"] += 1
            for part, units, _ in awards:
                setattr(m, part, getattr(m, part) + units)
                totals[f"{part}_issued"] += units
            m.earned[event["id"]] = (a["amount"], awards)
        elif kind == "purchase":
            # 100 points pay ¥1 of a bill, up to half of it; the wallet pays what it holds.
            points_paid = a.get("points_paid", 0)
            assert points_paid * 2 <= a["amount"] + points_paid and points_paid <= sum(m.points.values())
            m.take_points(points_paid)
            totals["points_spent"] += points_paid
            paid = a.get("stored_value_paid", 0)
            principal = bonus = 0
            if paid:
                principal, bonus = wallet_draw(paid, m.principal, m.bonus)
                m.principal -= principal
                m.bonus -= bonus
                totals["principal_spent"] += principal
                totals["bonus_spent"] += bonus
            points = a["amount"] // 100
            m.points[at.year] += points
            m.earned[event["id"]] = (a["amount"], [("points", points, at.year)])
            # Spring care month: a bill of ¥200 or more earns 200 points while the campaign's points
            # stay within ¥40 of value, and a ¥50 coupon while its salon has handed out fewer than
            # 15 and the face value stays within ¥1,250; each budget stops its own rule.
            for rule in ("spring-points", "spring-coupon"):
                if not SPRING[0] <= at < SPRING[1]:
                    rules[rule]["skipped:outside_window"] += 1
                elif a["amount"] < 20000:
                    rules[rule]["skipped:when_false"] += 1
                elif rule == "spring-points" and totals["spring_points"] + SPRING_POINTS <= SPRING_LIABILITY:
                    rules[rule]["fired"] += 1
                    totals["spring_points"] += SPRING_POINTS
                    m.points[at.year] += SPRING_POINTS
                    m.earned[event["id"]][1].append(("points", SPRING_POINTS, at.year))
                elif rule == "spring-coupon" and spring_coupons[event["store"]] < SPRING_PER_SALON and (
                    spring_coupons.total() + 1
                ) * SPRING_COUPON <= SPRING_MONEY:
                    rules[rule]["fired"] += 1
                    spring_coupons[event["store"]] += 1
                else:
                    rules[rule]["skipped:budget_exhausted"] += 1
            m.paid[event["id"]] = [("points", points_paid), ("principal", principal), ("bonus", bonus)]
            # Regular of the month: the third paid visit of a calendar month earns 200 points, once
            # a month. They are part of what the visit earned: refunding it takes them back in
            # proportion, while the completion and the badge stay.
            if a["amount"] > 0:
                month = f"{at:%Y-%m}"
                m.paid_visits[month] += 1
                if m.paid_visits[month] == 3:
                    m.points[at.year] += 200
                    m.earned[event["id"]][1].append(("points", 200, at.year))
                    m.regular_months.append(month)
                    m.regular_since = m.regular_since or at
        elif kind == "refund":
            original = a["original_event_id"]
            amount, awards = m.earned[original]
            for what, units, year in awards:
                claw = clawback(units, amount, m.refunded[original], a["amount"])
                if what == "points":
                    totals["points_clawed_back"] += m.take_points(claw, first_year=year)
                else:
                    take = min(claw, getattr(m, what))
                    setattr(m, what, getattr(m, what) - take)
                    totals[f"{what}_clawed_back"] += take
            # What the purchase paid with comes back in the same proportion, part to part; points
            # come back as a lot of the refund's year.
            for what, units in m.paid.get(original, []):
                back = clawback(units, amount, m.refunded[original], a["amount"])
                if what == "points":
                    m.points[at.year] += back
                    totals["points_spent"] -= back
                else:
                    setattr(m, what, getattr(m, what) + back)
                    totals[f"{what}_spent"] -= back
                totals[f"{what}_given_back"] += back
            m.refunded[original] += a["amount"]
        elif kind == "checkin":
            today = at.date()
            if today not in m.checkin_days:
                m.points[at.year] += 5
                m.checkin_days.add(today)
                rules["daily-checkin"]["fired"] += 1
            else:
                rules["daily-checkin"]["skipped:cap_reached"] += 1
            if m.last_checkin != today:
                m.streak = m.streak + 1 if m.last_checkin == today - timedelta(days=1) else 1
                m.last_checkin = today
                if m.streak == 7 and m.week_badge_at is None:
                    m.week_badge_at = at  # the seven-day badge (and its coupon) comes once
            # The caps (once a day, twice a month) are checked before the streak condition.
            if m.streak_fired[today.isoformat()] >= 1 or m.streak_fired[f"{at:%Y-%m}"] >= 2:
                rules["streak-7"]["skipped:cap_reached"] += 1
            elif m.streak == 7:
                m.points[at.year] += 100
                m.streak_fired[today.isoformat()] += 1
                m.streak_fired[f"{at:%Y-%m}"] += 1
                rules["streak-7"]["fired"] += 1
            else:
                rules["streak-7"]["skipped:when_false"] += 1
        elif kind == "reward_redemption":
            cost = SALON_REWARDS[a["reward"]]
            assert sum(m.points.values()) >= cost
            m.take_points(cost)
            totals["points_spent"] += cost
    for m in members.values():
        m.expire(NEW_YEAR)  # the replay ends in March: every member's 2025 points have expired
    return {"members": members, "totals": totals, "rules": rules, "spring_coupons": spring_coupons}


def wallet_part(member: str, part: str) -> int:
    lots = report("salon")["members"][member]["lots"].get("wallet", [])
    return sum(lot["amount"] for lot in lots if lot["part"] == part)


def test_wallet_principal_is_top_ups_less_principal_spent_and_refunded():
    model = salon_model()
    for member, m in model["members"].items():
        assert wallet_part(member, "principal") == m.principal, member
    wallet = report("salon")["totals"]["balances"]["wallet"]
    t = model["totals"]
    assert wallet["issued"] == t["principal_issued"] + t["bonus_issued"]
    assert wallet["redeemed"] == t["principal_spent"] + t["bonus_spent"]
    assert wallet["clawed_back"] == t["principal_clawed_back"] + t["bonus_clawed_back"]


def test_bonus_is_twenty_yuan_per_full_hundred_on_two_top_ups_a_month_and_spent_one_to_five_with_principal():
    model = salon_model()
    for member, m in model["members"].items():
        assert wallet_part(member, "bonus") == m.bonus, member
    assert rule_counts("salon", "topup-bonus") == dict(sorted(model["rules"]["topup-bonus"].items()))
    assert model["rules"]["topup-bonus"]["skipped:cap_reached"] > 0
    # Each payment takes at most a sixth in bonus (rounded down); bonus is the part that runs out first.
    assert 0 < model["totals"]["bonus_spent"] <= model["totals"]["principal_spent"] // 5


def test_refunding_a_top_up_takes_back_its_principal_and_bonus_in_proportion():
    # ls-20005 has her second top-up refunded in full the next day; ls-20008 gets the principal
    # she has not spent back and leaves: the bonus goes back in the same proportion, and what
    # rounding left of it (a few fen) stays in her wallet.
    model = salon_model()
    assert model["totals"]["principal_clawed_back"] > 0 and model["totals"]["bonus_clawed_back"] > 0
    assert wallet_part("ls-20008", "principal") == 0
    assert 0 <= wallet_part("ls-20008", "bonus") < 10


def test_a_bill_paid_with_points_and_the_wallet_gets_them_back_part_to_part_when_a_service_is_refunded():
    # ls-20041 pays ¥516 with 600 points (¥6), ¥450 from the wallet and the rest in cash; the ¥128
    # manicure is refunded: 128/510 of each part paid comes back, rounded down.
    model = salon_model()
    t = model["totals"]
    assert (t["points_given_back"], t["principal_given_back"], t["bonus_given_back"]) == (
        600 * 12800 // 51000, 37500 * 12800 // 51000, 7500 * 12800 // 51000,
    ) == (150, 9411, 1882)
    m = model["members"]["ls-20041"]
    assert (wallet_part("ls-20041", "principal"), wallet_part("ls-20041", "bonus")) == (m.principal, m.bonus)
    assert balance("salon", "ls-20041", "points") == sum(m.points.values())
    points = report("salon")["totals"]["balances"]["points"]
    assert points["redeemed"] == t["points_spent"]  # rewards and bills, less what refunds gave back


def test_the_spring_month_stops_its_points_at_the_liability_cap_and_its_coupons_at_a_salons_budget_then_the_money_budget():
    model = salon_model()
    for rule in ("spring-points", "spring-coupon"):
        assert rule_counts("salon", rule) == dict(model["rules"][rule]), rule
    assert model["totals"]["spring_points"] == SPRING_LIABILITY  # the cap is reached: 20 awards
    # one salon hands out its 15; the money budget (25 coupons) stops the other short of 15
    assert sorted(model["spring_coupons"].values()) == [10, 15]
    assert report("salon")["totals"]["coupons"]["spring-50"]["issued"] == 25 == SPRING_MONEY // SPRING_COUPON


def test_points_earned_in_2025_expire_on_new_years_day():
    model = salon_model()
    for member, m in model["members"].items():
        assert balance("salon", member, "points") == sum(m.points.values()), member
        lots = report("salon")["members"][member]["lots"].get("points", [])
        assert all(lot["expires_at"] == "2027-01-01T00:00:00+08:00" for lot in lots)
    points = report("salon")["totals"]["balances"]["points"]
    assert points["expired"] == sum(m.expired for m in model["members"].values()) > 0
    assert points["clawed_back"] == model["totals"]["points_clawed_back"] > 0


def test_a_daily_check_in_earns_five_points_once_a_day_and_a_seven_day_streak_100_at_most_twice_a_month():
    model = salon_model()
    assert rule_counts("salon", "daily-checkin") == dict(sorted(model["rules"]["daily-checkin"].items()))
    assert rule_counts("salon", "streak-7") == dict(sorted(model["rules"]["streak-7"].items()))
    hunter = model["members"]["ls-20003"]
    assert hunter.streak_fired["2026-01"] == 2  # four streaks of seven days in January, two rewarded


def test_three_paid_visits_in_a_month_earn_200_points_once_a_month_and_the_regular_badge_keeps_its_first_date():
    model = salon_model()
    view = report("salon")["members"]
    for member, m in model["members"].items():
        regular = view[member]["achievements"]["regular-month"]
        assert regular["completions"] == len(m.regular_months), member
        assert regular.get("first_completed_at") == (m.regular_since.isoformat() if m.regular_since else None), member
        assert ("regular" in view[member]["tags"]) == bool(m.regular_months), member
    months = [len(m.regular_months) for m in model["members"].values()]
    assert max(months) >= 2  # some clients are regulars in more than one month
    assert rule_counts("salon", "achievement:regular-month") == {"fired": sum(months)}


def test_the_seven_day_badge_comes_once_with_a_ten_percent_coupon_on_the_seventh_day_in_a_row():
    model = salon_model()
    view = report("salon")["members"]
    badges = {member: m.week_badge_at for member, m in model["members"].items() if m.week_badge_at is not None}
    assert len(badges) >= 3
    for member, m in model["members"].items():
        week = view[member]["achievements"]["checkin-week"]
        assert week["completions"] == (1 if m.week_badge_at else 0), member
        assert week.get("first_completed_at") == (m.week_badge_at.isoformat() if m.week_badge_at else None), member
        assert ("seven_day_streak" in view[member]["tags"]) == (member in badges), member
    coupons_from_checkins = sum(
        1
        for member in badges
        for c in view[member]["coupons"]
        if c["policy"] == "ten-percent" and c["id"].split("#")[0] in {e["id"] for e in events("salon") if e["type"] == "checkin"}
    )
    assert coupons_from_checkins == len(badges)
    # ls-20003 kept checking in after her badge: her further streaks earned points, not another badge
    assert model["members"]["ls-20003"].streak_fired["2026-01"] == 2


# --- shop: Nova Shop ---------------------------------------------------------------------------------

SHOP_REWARDS = {"limited-50": (2000, 5), "voucher-10": (800, None)}  # cost, stock
SHOP_REWARD_COUPONS = {"limited-50": "voucher-50", "voucher-10": "voucher-10"}
SHOP_COUPONS = {"welcome-30": 3000, "voucher-50": 5000, "voucher-10": 1000}  # amount off
SHOP_PER_ORDER = {"voucher-10": 2}  # else one of a kind per order; the welcome coupon goes alone
WELCOME_BUDGET = 40
DAILY_CAP, MOST_HELD, LEAST_SPENT = 10_000, 30_000, 100  # points earned a day, held, spent at once
PAY_SHARE, PAY_MOST = Fraction(1, 5), 5_000  # points pay a fifth of an order, 5,000 at most


@cache
def shop_model() -> dict[str, Any]:
    """Nova Shop's published terms, applied to events.jsonl in plain Python."""
    points: Counter[str] = Counter()
    lowest: Counter[str] = Counter()
    earned: dict[str, tuple[int, int]] = {}
    refunded: Counter[str] = Counter()
    welcomed: list[str] = []
    referrals: Counter[tuple[str, str]] = Counter()  # friends rewarded per (referrer, local month)
    invited: dict[str, dict[str, str]] = {}  # referee -> {referred_by, status}
    refused_codes: Counter[str] = Counter()
    seen: set[str] = set()
    rules: dict[str, Counter[str]] = defaultdict(Counter)
    granted: Counter[str] = Counter()
    refusals: list[tuple[str, str]] = []
    earned_on: Counter[tuple[str, date]] = Counter()
    cut: Counter[str] = Counter()
    posters_by: Counter[str] = Counter()  # poster-20 coupons per member (at most 1)
    posters_on: Counter[date] = Counter()  # and per local day (at most 3)
    policy_of: dict[str, str] = {}  # coupon id (`<event id>#c1`) -> its policy
    redeemed: Counter[str] = Counter()

    def award(member: str, day: date, units: int) -> int:
        fits = min(units, max(DAILY_CAP - earned_on[(member, day)], 0), max(MOST_HELD - points[member], 0))
        if fits < units:
            cut[member] += units - fits
        earned_on[(member, day)] += fits
        points[member] += fits
        return fits

    for event in events("shop"):
        member, a, kind = event["member_id"], attrs(event), event["type"]
        if kind == "signup":
            if len(welcomed) < WELCOME_BUDGET:
                welcomed.append(member)
                policy_of[f"{event['id']}#c1"] = "welcome-30"
            code = a.get("referral_code")
            if code == member:
                refused_codes["self_referral"] += 1
            elif code is not None and code not in seen:
                refused_codes["unknown_code"] += 1
            elif code is not None and invited.get(code, {}).get("referred_by") == member:
                refused_codes["referral_loop"] += 1
            elif code is not None and (member in seen or member in invited):
                refused_codes["referee_known"] += 1
            elif code is not None:
                invited[member] = {"referred_by": code, "status": "pending"}
        elif kind == "purchase":
            listed = [policy_of[c] for c in a.get("coupons", [])]
            kinds = Counter(listed)
            if ("welcome-30" in kinds and len(listed) > 1) or any(n > SHOP_PER_ORDER.get(p, 1) for p, n in kinds.items()):
                refusals.append((event["id"], "coupon_not_stackable"))
                continue
            # amount off only: each takes its amount off what is left
            assert not listed or a["amount"] == max(a.get("order_amount", a["amount"]) - sum(SHOP_COUPONS[p] for p in listed), 0), event["id"]
            redeemed.update(listed)
            paid = a.get("points_paid", 0)
            if paid:
                order = a.get("order_amount") or a["amount"] + paid
                if paid < LEAST_SPENT:
                    refusals.append((event["id"], "below_min_redemption"))
                    continue
                if paid > PAY_MOST or paid > PAY_SHARE * order:
                    refusals.append((event["id"], "order_payment_limit"))
                    continue
                points[member] -= paid
            day = local(event).date()
            units = award(member, day, a["amount"] // 100)
            friend = invited.get(member)
            if friend is not None and friend["status"] == "pending":
                # The first order decides: of ¥99 or more, 200 points for the friend (part of what
                # the order earned, so a return takes them back in proportion) and a referral event
                # for the referrer, capped at three friends a local month.
                friend["status"] = "rewarded" if a["amount"] >= 9900 else "unqualified"
                if friend["status"] == "rewarded":
                    units += award(member, day, 200)
                    referrer, month = friend["referred_by"], local(event).strftime("%Y-%m")
                    if referrals[(referrer, month)] >= 3:
                        rules["referral-bonus"]["skipped:cap_reached"] += 1
                    else:
                        referrals[(referrer, month)] += 1
                        award(referrer, day, 500)
                        rules["referral-bonus"]["fired"] += 1
                    lowest[referrer] = min(lowest[referrer], points[referrer])
            earned[event["id"]] = (a["amount"], units)
        elif kind == "refund":
            amount, units = earned[a["original_event_id"]]
            points[member] -= clawback(units, amount, refunded[a["original_event_id"]], a["amount"])
            refunded[a["original_event_id"]] += a["amount"]
        elif kind == "code_claim":
            day = local(event).date()
            if posters_by[member] >= 1:  # the member's cap is checked before the day's budget
                refusals.append((event["id"], "member_cap_reached"))
            elif posters_on[day] >= 3:
                refusals.append((event["id"], "budget_exhausted"))
            else:
                posters_by[member] += 1
                posters_on[day] += 1
        elif kind == "reward_redemption":
            cost, stock = SHOP_REWARDS[a["reward"]]
            if stock is not None and granted[a["reward"]] >= stock:
                refusals.append((event["id"], "out_of_stock"))
            elif points[member] < cost:
                refusals.append((event["id"], "insufficient_balance"))
            else:
                points[member] -= cost
                granted[a["reward"]] += 1
                policy_of[f"{event['id']}#c1"] = SHOP_REWARD_COUPONS[a["reward"]]
        lowest[member] = min(lowest[member], points[member])
        seen.add(member)
    signups = sum(1 for e in events("shop") if e["type"] == "signup")
    return {
        "points": points,
        "lowest": lowest,
        "welcomed": welcomed,
        "signups": signups,
        "rules": rules,
        "granted": granted,
        "refusals": refusals,
        "cut": cut,
        "posters": posters_on,
        "redeemed": redeemed,
        "invited": invited,
        "refused_codes": refused_codes,
    }


def test_coupons_stack_two_ten_yuan_vouchers_at_most_and_an_order_with_three_is_refused():
    model = shop_model()
    coupons = report("shop")["totals"]["coupons"]
    assert {p: c.get("redeemed", 0) for p, c in coupons.items() if c.get("redeemed")} == dict(model["redeemed"])
    stacked = [r for r in model["refusals"] if r[1] == "coupon_not_stackable"]
    assert stacked == [("web-000085", "coupon_not_stackable")]
    again = next(e for e in events("shop") if e["id"] == "web-000086")
    assert len(attrs(again)["coupons"]) == 2


def test_the_welcome_coupon_goes_to_the_first_40_signups_and_no_more():
    model = shop_model()
    assert model["signups"] > WELCOME_BUDGET
    coupons = report("shop")["totals"]["coupons"]["welcome-30"]
    assert coupons["issued"] == min(model["signups"], WELCOME_BUDGET) == len(model["welcomed"])
    assert rule_counts("shop", "welcome-coupon") == {
        "fired": WELCOME_BUDGET,
        "skipped:budget_exhausted": model["signups"] - WELCOME_BUDGET,
    }
    holders = sorted(
        m
        for m, state in report("shop")["members"].items()
        if any(c["policy"] == "welcome-30" for c in state["coupons"])
    )
    assert holders == sorted(model["welcomed"])


def test_points_are_one_per_yuan_and_a_refund_takes_them_back_even_when_spent():
    model = shop_model()
    for member, state in report("shop")["members"].items():
        assert state["balances"].get("points", 0) == model["points"][member], member
        owed = -model["points"][member]
        assert state.get("debts", {}) == ({"points": owed} if owed > 0 else {}), member
    assert any(lowest < 0 for lowest in model["lowest"].values())


def test_a_member_who_spent_the_points_of_a_returned_tv_owes_them_until_later_orders_pay_them_off():
    model = shop_model()
    debtor = report("shop")["members"]["nv-30007"]
    assert model["lowest"]["nv-30007"] < 0 <= model["points"]["nv-30007"]
    assert "debts" not in debtor
    lots = debtor["lots"]["points"]
    assert sum(lot["amount"] for lot in lots) == model["points"]["nv-30007"]
    # The debt is paid off first: no lot from before the refund survives it.
    refund = next(e for e in events("shop") if e["type"] == "refund" and e["member_id"] == "nv-30007")
    assert all(
        datetime.fromisoformat(lot["earned_at"]) > datetime.fromisoformat(refund["occurred_at"])
        for lot in lots
    )


def test_a_friend_s_first_order_of_99_yuan_pays_500_points_for_at_most_three_friends_a_month():
    model = shop_model()
    assert rule_counts("shop", "referral-bonus") == dict(sorted(model["rules"]["referral-bonus"].items()))
    # nv-30004's five friends in March: two over the cap (and one more referrer's fourth friend)
    assert model["rules"]["referral-bonus"]["skipped:cap_reached"] == 3
    assert sum(1 for e in events("shop") if e["type"] == "referral_completed") == 0  # Perkflow makes them


def test_a_friend_signs_up_with_a_referral_code_and_the_first_order_decides_for_both_sides():
    model = shop_model()
    view = report("shop")["members"]
    for member, state in view.items():
        friend = model["invited"].get(member)
        expected = {"code": member, **(friend or {})}
        assert state["referral"] == expected, member
    statuses = Counter(f["status"] for f in model["invited"].values())
    assert statuses["rewarded"] > 0 and statuses["unqualified"] > 0
    assert rule_counts("shop", "referral:purchase") == {
        "fired": statuses["rewarded"], "skipped:when_false": statuses["unqualified"],
    }
    # the signups with their own code and with a code no member has: refused, the signups applied
    assert model["refused_codes"] == {"self_referral": 1, "unknown_code": 1}
    assert rule_counts("shop", "referral:signup") == {
        "fired": len(model["invited"]), **{f"skipped:{k}": v for k, v in sorted(model["refused_codes"].items())},
    }


def test_the_limited_voucher_sells_out_after_five_and_later_requests_are_refused():
    model = shop_model()
    assert report("shop")["totals"]["rewards"] == dict(sorted(model["granted"].items()))
    assert model["granted"]["limited-50"] == 5
    refusals = [(r["event_id"], r["code"]) for r in report("shop")["rejections"]]
    assert refusals == model["refusals"]
    attempts = sum(
        1 for e in events("shop") if e["type"] == "reward_redemption" and attrs(e)["reward"] == "limited-50"
    )
    short = sum(1 for _, code in refusals if code == "insufficient_balance")
    assert sum(1 for _, code in refusals if code == "out_of_stock") == attempts - 5 - short > 0


def test_the_daily_cap_and_the_maximum_cut_a_companys_points_and_points_pay_within_the_order_limits():
    model = shop_model()
    assert model["cut"] == {"nv-30063": 16_495 - 10_000 + 399 + 16_495 - 10_000 + 13_196 - 10_000 + 399}
    company = report("shop")["members"]["nv-30063"]
    assert company["balances"]["points"] == model["points"]["nv-30063"] == 30_000 - 5_000 + 349 - 1_180 + 47
    counts = rule_counts("shop", "order-points")
    assert (counts["clipped:earn_cap"], counts["clipped:max_balance"]) == (4, 1)
    refused = {code for _, code in model["refusals"]}
    assert {"order_payment_limit", "below_min_redemption"} <= refused


def test_poster_codes_are_claimed_three_a_day_and_one_per_member():
    model = shop_model()
    assert dict(model["posters"]) == {date(2026, 6, 10): 3, date(2026, 6, 11): 1}
    assert report("shop")["totals"]["coupons"]["poster-20"]["issued"] == sum(model["posters"].values())
    codes = [r["code"] for r in report("shop")["rejections"] if r["event_id"].startswith("app-")][-2:]
    assert codes == ["budget_exhausted", "member_cap_reached"]


SHOP_TIERS = [("member", 0, 0), ("silver", 1000, 600), ("gold", 3000, 2000)]  # id, threshold, retain
PENDING_DAYS, GROWTH_MONTHS, TERM_MONTHS = 14, 3, 3


def months_later(day: date, months: int) -> date:
    """The same day `months` later, clamped to the end of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = (date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month + 1, min(day.day, last))


def shanghai_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)


@cache
def shop_growth_model() -> dict[str, Any]:
    """Nova Shop's growth and tiers, from the terms in its README, in plain Python: 1 growth per
    yuan paid, pending until the member confirms receipt or for 14 days, expiring 3 months after
    the day earned, clawed back in proportion by returns; tiers reached on any event, held for a
    3-month term of whole days, kept at its end by the retain figure or moved to the highest tier
    whose retain the growth meets. Staff overrides (人工调级) hold the tier: a floor at least at its
    tier, a fixed one exactly; at the end a tier given is reviewed by its retain figure, and an
    upgrade the override held back applies then."""
    refused = {r["event_id"] for r in report("shop")["rejections"]}
    # member -> purchase id -> [units left, available at (None: active), expires at]
    lots: dict[str, dict[str, list[Any]]] = defaultdict(dict)
    tier: dict[str, int] = {}
    review_at: dict[str, datetime | None] = {}
    reviews: list[tuple[str, str]] = []
    paid: dict[str, int] = {}
    refunded: Counter[str] = Counter()
    # member -> (kind, tier given, until, tier held when it was set)
    override: dict[str, tuple[str, int, datetime | None, int]] = {}

    def held(member: str, target: int) -> int:
        if member not in override:
            return target
        kind, given, _, _ = override[member]
        return given if kind == "fixed" or target < given else target

    def move(member: str, target: int, at: datetime) -> None:
        target = held(member, target)
        if target != tier[member]:
            tier[member], review_at[member] = target, term_end(at) if target else None

    def end_override(member: str, at: datetime) -> None:
        _, _, _, before = override.pop(member)
        growth = active(member)
        if tier[member] != before:
            keep = tier[member]
            while keep > 0 and growth < SHOP_TIERS[keep][2]:
                keep -= 1
            move(member, keep, at)
        move(member, max(tier[member], max(i for i, (_, threshold, _) in enumerate(SHOP_TIERS) if growth >= threshold)), at)

    def active(member: str) -> int:
        return sum(units for units, available, _ in lots[member].values() if available is None)

    def term_end(at: datetime) -> datetime:
        return shanghai_midnight(months_later(at.astimezone(SHANGHAI).date(), TERM_MONTHS))

    def advance(member: str, until: datetime) -> None:
        while True:
            due: list[tuple[datetime, int, str]] = []
            for pid, (_units, available, expires) in lots[member].items():
                if available is not None and available <= until:
                    due.append((available, 0, pid))
                if expires <= until:
                    due.append((expires, 1, pid))
            ends = override[member][2] if member in override else None
            if ends is not None and ends <= until:
                due.append((ends, 2, ""))
            review = review_at.get(member)
            if review is not None and review <= until:
                due.append((review, 3, ""))
            if not due:
                return
            at = min(d[0] for d in due)
            for _, step, pid in sorted(d for d in due if d[0] == at):
                if step == 0:
                    lots[member][pid][1] = None
                elif step == 1:
                    del lots[member][pid]
                elif step == 2:
                    end_override(member, at)
                else:
                    growth, current = active(member), tier[member]
                    kept = current if growth >= SHOP_TIERS[current][2] else max(i for i, (_, _, retain) in enumerate(SHOP_TIERS) if growth >= retain)
                    kept = held(member, kept)
                    if kept == current:
                        reviews.append((member, "kept"))
                        review_at[member] = term_end(at)
                    else:
                        tier[member] = kept
                        review_at[member] = term_end(at) if kept else None
                        reviews.append((member, "downgraded"))

    last = max(datetime.fromisoformat(e["occurred_at"]) for e in events("shop"))
    clawed_back = 0
    for event in events("shop"):
        member, a, kind, at = event["member_id"], attrs(event), event["type"], datetime.fromisoformat(event["occurred_at"])
        if event["id"] in refused:
            continue
        tier.setdefault(member, 0)
        advance(member, at)
        if kind == "purchase":
            day = at.astimezone(SHANGHAI).date()
            lots[member][event["id"]] = [a["amount"] // 100, at + timedelta(days=PENDING_DAYS), shanghai_midnight(months_later(day, GROWTH_MONTHS) + timedelta(days=1))]
            paid[event["id"]] = a["amount"]
        elif kind == "order_completed" and a["original_event_id"] in lots[member]:
            lots[member][a["original_event_id"]][1] = None
        elif kind == "tier_override":
            until = datetime.fromisoformat(a["until"]) if "until" in a else None
            override[member] = (a["kind"], [t for t, _, _ in SHOP_TIERS].index(a["tier"]), until, tier[member])
            move(member, tier[member], at)
        elif kind == "tier_override_end":
            end_override(member, at)
        elif kind == "refund":
            original = a["original_event_id"]
            units = paid[original] // 100
            taken = clawback(units, paid[original], refunded[original], a["amount"])
            lots[member][original][0] -= taken
            clawed_back += taken
            refunded[original] += a["amount"]
        growth = active(member)
        reached = max(i for i, (_, threshold, _) in enumerate(SHOP_TIERS) if growth >= threshold)
        if reached > tier[member]:
            move(member, reached, at)
    for member in tier:
        advance(member, last)
    return {
        "growth": {m: sum(units for units, _, _ in held.values()) for m, held in lots.items()},
        "pending": {m: sum(units for units, available, _ in held.values() if available is not None) for m, held in lots.items()},
        "tier": {m: SHOP_TIERS[i][0] for m, i in tier.items()},
        "review_at": review_at,
        "reviews": reviews,
        "clawed_back": clawed_back,
    }


def test_growth_counts_once_an_order_is_received_or_after_14_days_and_expires_after_3_months():
    model = shop_growth_model()
    members = report("shop")["members"]
    for member, state in members.items():
        assert state["balances"].get("growth", 0) == model["growth"].get(member, 0), member
        pending = sum(lot["amount"] for lot in state["lots"].get("growth", ()) if "available_at" in lot or "pending_until" in lot)
        assert pending == model["pending"].get(member, 0), member
    assert sum(model["pending"].values()) > 0  # orders of the last fortnight that are not yet received
    totals = report("shop")["totals"]["balances"]["growth"]
    assert totals["expired"] > 0 and totals["clawed_back"] == model["clawed_back"] > 0


def test_tiers_hold_for_a_3_month_term_and_the_review_at_its_end_keeps_or_lowers_them():
    model = shop_growth_model()
    members = report("shop")["members"]
    for member, state in members.items():
        assert state["tier"] == model["tier"][member], member
        review = model["review_at"].get(member)
        assert state.get("tier_review_at") == (review.isoformat() if review else None), member
    assert sorted(kind for _, kind in model["reviews"]) == ["downgraded", "kept", "kept"]
    assert rule_counts("shop", "tier_review") == {"fired": len(model["reviews"])}
    assert report("shop")["totals"]["tiers"] == dict(sorted(Counter(model["tier"].values()).items()))


def test_the_welcome_coupon_is_handed_out_with_a_hello_code():
    codes = [c["code"] for state in report("shop")["members"].values() for c in state["coupons"] if c["policy"] == "welcome-30"]
    assert len(codes) == WELCOME_BUDGET == len(set(codes))
    assert all(c.startswith("HELLO") and len(c) == 11 and not set(c[5:]) & set("01OIL") for c in codes)


def test_support_gives_a_silver_floor_that_ends_by_itself_and_holds_a_member_at_member_until_released():
    members = report("shop")["members"]
    # nv-30059: Silver from 12 April for two lost parcels; at 00:00 on 1 June the floor ends and
    # Silver, given, not earned, is reviewed: 401 growth is short of the 600 that keeps it
    assert (members["nv-30059"]["tier"], members["nv-30059"]["tier_since"]) == ("member", "2026-06-01T00:00:00+08:00")
    # nv-30044: Gold, held at Member from 20 May (fixed, no end); orders meanwhile are held back, and
    # when staff end the hold on 25 June the member is Gold again at once, with a new 3-month term
    held = members["nv-30044"]
    assert (held["tier"], held["tier_since"], held["tier_review_at"]) == ("gold", "2026-06-25T16:00:00+08:00", "2026-09-25T00:00:00+08:00")
    assert "tier_override" not in held
    assert rule_counts("shop", "tier_override") == {"fired": 4}  # two set, two ended
    assert rule_counts("shop", "tier")["skipped:tier_override"] > 0


def test_each_member_is_told_what_they_still_need_for_the_next_tier_and_each_reward():
    """Item 11 on the shop's members at the end of the stream: the growth still lacking for each tier
    above theirs (pending growth does not count), what keeps their tier at its review, and the points
    each reward costs, all from the published terms and the model above, not from the engine."""
    growth, points = shop_growth_model(), shop_model()
    loaded = load(EXAMPLES / "shop" / "scheme.yaml")
    assert loaded.scheme is not None
    run = replay(compile(loaded.scheme), events("shop"))
    at = datetime.fromisoformat(report("shop")["as_of"])
    rank = [t for t, _, _ in SHOP_TIERS]
    for member, state in run.members.items():
        needs = {(n.kind, n.id): n for n in progress(run.program, state, at, budgets=run.budgets)}
        active = growth["growth"].get(member, 0) - growth["pending"].get(member, 0)
        tier = growth["tier"][member]
        above = [(t, threshold) for t, threshold, _ in SHOP_TIERS[rank.index(tier) + 1:]]
        assert sorted(i for k, i in needs if k == "tier") == sorted(t for t, _ in above), member
        for level, threshold in above:
            need = needs[("tier", level)]
            assert (need.have, need.need, need.met) == (active, threshold, active >= threshold), (member, level)
        if tier != "member" and growth["review_at"].get(member) is not None:
            keep = needs[("tier_keep", tier)]
            assert (keep.have, keep.need) == (active, dict((t, r) for t, _, r in SHOP_TIERS)[tier]), member
        for reward, (cost, stock) in SHOP_REWARDS.items():
            need = needs[("reward", reward)]
            sold_out = stock is not None and points["granted"][reward] >= stock
            assert (need.need, need.have) == (cost, points["points"][member]), (member, reward)
            assert need.reason == ("out_of_stock" if sold_out else ""), (member, reward)
            assert need.met == (not sold_out and points["points"][member] >= cost), (member, reward)
    assert points["granted"]["limited-50"] == 5  # the limited voucher sold out: every member is told so
    assert 0 < sum(1 for m in run.members if points["points"][m] >= 800) < len(run.members)  # some can afford a voucher, some not
    nv_30004 = {(n.kind, n.id): n.text for n in progress(run.program, run.members["nv-30004"], at, budgets=run.budgets)}
    assert nv_30004[("tier", "gold")] == {"en": "668 more growth to Gold", "zh-CN": "再获得 668 成长值即可升级为金卡"}
