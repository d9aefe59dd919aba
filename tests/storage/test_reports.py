"""The reports match figures computed independently from the example stream: the coffee events are
replayed by the pure engine (engine.simulate) and the expected numbers are summed here from its
decisions; the same events are posted through the service into SQLite and PostgreSQL, and each
report is read back from the database."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from perkflow.engine import Decision, compile, simulate
from perkflow.rules.load import loads
from perkflow.service.core import Service, open_service
from perkflow.storage.reports import Filters, run

from ..databases import BACKENDS, Clock, fresh_url, publish

ROOT = Path(__file__).resolve().parents[2]
COFFEE = ROOT / "examples" / "coffee"
TZ = ZoneInfo("Asia/Shanghai")
AS_OF = datetime(2026, 7, 15, 12, tzinfo=TZ)
PERIOD = Filters(start=date(2026, 1, 1), end=date(2026, 7, 15))


def _month(instant: datetime) -> str:
    return instant.astimezone(TZ).strftime("%Y-%m")


class Expected:
    """The coffee stream replayed in memory; every decision kept with the instant it happened."""

    def __init__(self) -> None:
        loaded = loads((COFFEE / "scheme.yaml").read_text(), "scheme.yaml")
        assert loaded.scheme is not None
        self.scheme = loaded.scheme
        self.raws = [json.loads(line) for line in (COFFEE / "events.jsonl").read_text().splitlines()]
        self.at: dict[str, datetime] = {}
        self.decisions: list[Decision] = []
        real = simulate.evaluate

        def timed(program: Any, state: Any, event: Any, *args: Any, **kw: Any) -> Decision:
            self.at[event.id] = event.occurred_at
            return real(program, state, event, *args, **kw)

        simulate.evaluate = timed  # the real function, with each event's instant noted
        try:
            self.replay = simulate.Replay(compile(self.scheme), keep=self.decisions.append)
            for raw in self.raws:
                self.replay.feed(raw)
            self.replay.finish(AS_OF)
        finally:
            simulate.evaluate = real

    @property
    def applied(self) -> set[str]:
        return {d.event_id for d in self.decisions}

    def effects(self) -> Iterator[tuple[datetime, Decision, Any]]:
        for d in self.decisions:
            for e in d.effects:
                yield self.at[d.event_id], d, e


@pytest.fixture(scope="module")
def expected() -> Expected:
    return Expected()


@pytest.fixture(scope="module", params=BACKENDS)
def coffee(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp(request.param)
    clock = Clock("2025-12-31T00:00:00+00:00")
    svc = open_service(fresh_url(request.param, tmp), tmp / "data", clock=clock)
    publish(svc, str(COFFEE / "scheme.yaml"))
    clock.now = AS_OF.astimezone(UTC)
    for raw in (json.loads(line) for line in (COFFEE / "events.jsonl").read_text().splitlines()):
        svc.events.post(raw)
    for external_id in sorted({json.loads(line)["member_id"] for line in (COFFEE / "events.jsonl").read_text().splitlines()}):
        svc.events.apply_due(external_id, AS_OF)  # what the scheduler does: expiries due by the as-of instant
    yield svc
    svc.engine.dispose()


def report(svc: Service, name: str, filters: Filters = PERIOD) -> Any:
    program = svc.versions.active()
    assert program is not None
    with svc.engine.connect() as conn:
        return run(name, conn, program.scheme, AS_OF, filters)


def test_flows_per_month_and_balance_match_the_replay(coffee: Service, expected: Expected):
    kinds = {"earn": ("issued", 1), "spend": ("redeemed", -1), "expire": ("expired", -1), "clawback": ("clawed_back", -1), "adjust": ("adjusted", 1)}
    want: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    by_rule: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for at, _, e in expected.effects():
        if e.balance is not None and at <= AS_OF:
            column, sign = kinds[e.kind]
            want[(_month(at), e.balance)][column] += e.amount * sign
            by_rule[(e.rule or "", e.balance)][column] += e.amount * sign
    got = report(coffee, "flows")
    rows = {(r["bucket"], r["balance"]): {k: r[k] for k in ("issued", "redeemed", "expired", "clawed_back", "adjusted")} for r in got.table("by_period").rows}
    assert rows == {k: {c: v[c] for c in ("issued", "redeemed", "expired", "clawed_back", "adjusted")} for k, v in want.items()}
    rule_rows = {(r["rule"], r["balance"]): r["issued"] for r in got.table("by_rule").rows}
    assert rule_rows == {k: v["issued"] for k, v in by_rule.items()}
    assert sum(v["issued"] for k, v in want.items() if k[1] == "points") > 0


def test_flows_filtered_by_store_and_channel_keep_to_them(coffee: Service, expected: Expected):
    home = {m: s.home_store for m, s in expected.replay.members.items()}
    channel = {raw["id"]: raw["channel"] for raw in expected.raws}
    issued_store = sum(e.amount for _, d, e in expected.effects() if e.kind == "earn" and e.balance == "points" and home[d.member_id] == "sh-jingan")
    issued_app = sum(e.amount for _, d, e in expected.effects() if e.kind == "earn" and e.balance == "points" and channel.get(d.event_id) == "app")
    by_store = report(coffee, "flows", Filters(start=PERIOD.start, end=PERIOD.end, stores=frozenset({"sh-jingan"})))
    by_channel = report(coffee, "flows", Filters(start=PERIOD.start, end=PERIOD.end, channel="app"))
    assert sum(r["issued"] for r in by_store.table("by_period").rows if r["balance"] == "points") == issued_store
    assert sum(r["issued"] for r in by_channel.table("by_period").rows if r["balance"] == "points") == issued_app
    assert by_store.filters["stores"] == ["sh-jingan"] and by_channel.filters["channel"] == "app"


def test_liability_is_what_members_hold_and_what_expires_soon(coffee: Service, expected: Expected):
    got = {r["balance"]: r for r in report(coffee, "liability").table("liability").rows}
    for balance in ("points", "growth"):
        lots = [lot for s in expected.replay.members.values() for lot in s.lots.get(balance, ())]
        debt = sum(s.debts.get(balance, 0) for s in expected.replay.members.values())
        assert got[balance]["outstanding"] == sum(lot.amount for lot in lots) - debt
        holding = sum(1 for s in expected.replay.members.values() if sum(lot.amount for lot in s.lots.get(balance, ())) > 0)
        assert got[balance]["members"] == holding > 0
        for days in (30, 60, 90):
            soon = sum(lot.amount for lot in lots if lot.expires_at and AS_OF < lot.expires_at <= AS_OF + timedelta(days=days))
            assert got[balance][f"expiring_{days}"] == soon
    assert got["points"]["value"] == got["points"]["outstanding"]  # value: 1 fen a point
    assert got["growth"]["value"] is None  # no value declared


def test_tiers_now_at_month_ends_and_their_movements(coffee: Service, expected: Expected):
    got = report(coffee, "tiers")
    now = next(r for r in got.table("distribution").rows if r["month_end"] == "now")
    counts = Counter(s.tier for s in expected.replay.members.values())
    assert {k: v for k, v in now.items() if k != "month_end"} == {lv: counts.get(lv, 0) for lv in ("member", "silver", "gold")}
    changes = sorted((at, d.member_id, e) for at, d, e in expected.effects() if e.kind == "tier_changed")
    joined = {m: s.joined_at for m, s in expected.replay.members.items()}
    for row in got.table("distribution").rows[1:]:
        year, month = map(int, row["month_end"].split("-"))
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=TZ)
        tier = {m: "member" for m, j in joined.items() if j < end}
        for at, member, e in changes:
            if at < end:
                tier[member] = e.tier
        assert {k: v for k, v in row.items() if k != "month_end"} == {lv: Counter(tier.values()).get(lv, 0) for lv in ("member", "silver", "gold")}
    rank = {"member": 0, "silver": 1, "gold": 2}
    moves: dict[str, Counter[str]] = defaultdict(Counter)
    for at, _, e in changes:
        if e.previous_tier is not None:
            moves[_month(at)]["upgrades" if rank[e.tier] > rank[e.previous_tier] else "downgrades"] += 1
    assert {r["month"]: (r["upgrades"], r["downgrades"]) for r in got.table("movements").rows} == {
        m: (c["upgrades"], c["downgrades"]) for m, c in moves.items()
    }
    assert any(r["upgrades"] for r in got.table("movements").rows)


def test_coupons_per_policy(coffee: Service, expected: Expected):
    issued, redeemed = Counter[str](), Counter[str]()
    for _, _, e in expected.effects():
        if e.kind == "coupon_issued":
            issued[e.policy] += 1
        elif e.kind == "coupon_redeemed":
            redeemed[e.policy] += 1
    coupons = [c for s in expected.replay.members.values() for c in s.coupons]
    got = {r["policy"]: r for r in report(coffee, "coupons").table("coupons").rows}
    for policy, p in expected.scheme.coupons.items():
        row = got[policy]
        assert (row["issued"], row["redeemed"]) == (issued[policy], redeemed[policy])
        lapsed = [c for c in coupons if c.policy == policy and c.valid_until <= AS_OF and c.redeemed_at is None and not c.voided]
        assert row["expired"] == len(lapsed)
        if issued[policy]:
            done = sum(1 for c in coupons if c.policy == policy and c.redeemed_at is not None)
            assert row["redemption_rate"] == round(done / issued[policy], 4)
        face = p.benefit.amount if p.benefit.kind == "amount_off" else getattr(p.benefit, "value", None)
        assert row["face_value"] == (None if face is None else face * redeemed[policy])
    assert sum(issued.values()) > 0


def test_rewards_redemptions_per_item(coffee: Service, expected: Expected):
    counts: Counter[str] = Counter()
    for d in expected.decisions:
        if d.event_type == "reward_redemption":
            counts[next(e.reward for e in d.effects if e.kind == "reward_granted")] += 1
    got = {r["reward"]: r for r in report(coffee, "rewards").table("rewards").rows}
    for reward_id, item in expected.scheme.rewards.items():
        assert got[reward_id]["redemptions"] == counts[reward_id]
        assert got[reward_id]["cost"] == counts[reward_id] * item.cost.amount
    assert sum(counts.values()) > 0


def _u(campaign: str, member: str) -> float:
    return int(hashlib.sha256(f"{campaign}:{member}".encode()).hexdigest()[:16], 16) / 2**64


def test_campaign_groups_follow_the_holdout_draw(coffee: Service, expected: Expected):
    start, end = datetime(2026, 1, 1, tzinfo=TZ), datetime(2026, 7, 1, tzinfo=TZ)
    reached: dict[str, str] = {}
    spend: Counter[str] = Counter()
    for raw in expected.raws:
        at = datetime.fromisoformat(raw["occurred_at"])
        if raw["type"] == "purchase" and start <= at < end and raw["attributes"]["amount"] > 0:
            u = _u("double-weekend", raw["member_id"])
            group = "holdout" if u < 0.1 else "treatment" if u < 0.1 + 0.2 * 0.9 else None
            if group:
                reached[raw["member_id"]] = group
    for member, state in expected.replay.members.items():
        if member in reached:
            for event_id, earning in state.earnings.items():
                if earning.event_type == "purchase" and start <= expected.at[event_id] < end:
                    spend[member] += earning.amount - earning.refunded
    got = {r["group"]: r for r in report(coffee, "campaigns").table("groups").rows}
    for group in ("treatment", "holdout"):
        members = [m for m, g in reached.items() if g == group]
        assert got[group]["members"] == len(members)
        assert got[group]["spend"] == sum(spend[m] for m in members)
    assert got["holdout"]["points_cost"] == 0
    lift = report(coffee, "campaigns").table("lift").rows[0]
    assert lift["verdict"] in ("significant", "not significant")


def test_retention_cohorts_and_lifetime_value(coffee: Service, expected: Expected):
    joined = {m: _month(s.joined_at) for m, s in expected.replay.members.items()}
    active: dict[tuple[str, str], set[str]] = defaultdict(set)
    for raw in expected.raws:
        if raw["type"] == "purchase" and raw["id"] in expected.applied:
            active[(joined[raw["member_id"]], _month(datetime.fromisoformat(raw["occurred_at"])))].add(raw["member_id"])
    value: Counter[str] = Counter()
    for member, state in expected.replay.members.items():
        value[joined[member]] += sum(e.amount - e.refunded for e in state.earnings.values() if e.event_type == "purchase")
    sizes = Counter(joined.values())
    months = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06", "2026-07"]
    for row in report(coffee, "retention").table("cohorts").rows:
        cohort = row["cohort"]
        assert row["members"] == sizes.get(cohort, 0)
        if sizes.get(cohort):
            assert row["ltv"] == round(value[cohort] / sizes[cohort], 2)
            i = months.index(cohort)
            for k in range(len(months) - i):
                assert row[f"m{k}"] == round(len(active[(cohort, months[i + k])]) / sizes[cohort], 4)


def test_rfm_segments_cover_every_buyer_and_churn_risk_is_the_members_own(coffee: Service, expected: Expected):
    times: dict[str, list[datetime]] = defaultdict(list)
    for raw in expected.raws:
        if raw["type"] == "purchase" and raw["id"] in expected.applied:
            times[raw["member_id"]].append(datetime.fromisoformat(raw["occurred_at"]))
    got = report(coffee, "rfm", Filters(start=PERIOD.start, end=PERIOD.end, limit=1000))
    assert sum(r["members"] for r in got.table("segments").rows) == len(times)
    rows = {r["member"]: r for r in got.table("members").rows}
    assert set(rows) == set(times)
    for member, stamps in times.items():
        last, first, n = max(stamps), min(stamps), len(stamps)
        row = rows[member]
        assert row["purchases"] == n
        assert row["recency_days"] == round((AS_OF - last).total_seconds() / 86400, 1)
        if n >= 2 and last > first:
            risk = (AS_OF - last).total_seconds() * (n - 1) / (last - first).total_seconds()
            assert row["churn_risk"] == round(risk, 2)
            assert (row["segment"] == "at_risk") == (risk >= 2)
        else:
            assert row["churn_risk"] is None
