"""A campaign's lift is recovered: members are drawn into treatment and holdout by the service, a
known effect on spend is given to one campaign's treatment, and the report's 95% interval holds it;
a second campaign over the same members, whose groups have nothing to do with spend, is reported
as not significant."""

from __future__ import annotations

import hashlib
import random
import statistics

from perkflow.service.core import Service
from perkflow.storage.reports import Filters, run

from ..databases import Clock, publish

EFFECT = 1500  # fen more per member in the treatment of `effect`
SCHEME = """
perkflow: 1
id: lift
name: Lift
timezone: Asia/Shanghai
balances:
  points: {}
campaigns:
  - id: effect
    name: Effect
    start: 2026-03-01T00:00:00
    end: 2026-04-01T00:00:00
    holdout: 0.5
    rules:
      - {id: effect-earn, on: purchase, then: [{award: {balance: points, amount: "event.amount / 100"}}]}
  - id: placebo
    name: Placebo
    start: 2026-03-01T00:00:00
    end: 2026-04-01T00:00:00
    holdout: 0.5
    rules:
      - {id: placebo-earn, on: purchase, then: [{award: {balance: points, amount: "1"}}]}
"""


def _in_treatment(campaign: str, member: str) -> bool:
    return int(hashlib.sha256(f"{campaign}:{member}".encode()).hexdigest()[:16], 16) / 2**64 >= 0.5


def test_a_known_effect_is_inside_the_interval_and_no_effect_is_not_significant(service: Service, clock: Clock):
    clock.set("2026-01-01T00:00:00+00:00")
    publish(service, SCHEME)
    clock.set("2026-04-15T00:00:00+00:00")
    rng = random.Random(20261123)
    spend: dict[str, int] = {}
    for n in range(200):
        member = f"m{n:03d}"
        base = {"member_id": member, "store": "S1", "channel": "pos"}
        assert service.events.post({**base, "id": f"su-{n}", "type": "signup", "occurred_at": "2026-02-10T10:00:00+08:00"}).status == 201  # type: ignore[union-attr]
        spend[member] = max(100, round(rng.gauss(10000, 2500))) + (EFFECT if _in_treatment("effect", member) else 0)
        purchase = {**base, "id": f"pos-{n}", "type": "purchase", "occurred_at": f"2026-03-{n % 28 + 1:02d}T12:00:00+08:00", "attributes": {"amount": spend[member]}}
        assert service.events.post(purchase).status == 201  # type: ignore[union-attr]
    program = service.versions.active()
    assert program is not None
    with service.engine.connect() as conn:
        report = run("campaigns", conn, program.scheme, clock.now, Filters())
    lift = {row["campaign"]: row for row in report.table("lift").rows}
    groups = {(row["campaign"], row["group"]): row for row in report.table("groups").rows}

    treated = [s for m, s in spend.items() if _in_treatment("effect", m)]
    held = [s for m, s in spend.items() if not _in_treatment("effect", m)]
    assert groups[("effect", "treatment")]["members"] == len(treated) and groups[("effect", "holdout")]["members"] == len(held)
    assert lift["effect"]["lift"] == round(statistics.mean(treated) - statistics.mean(held), 2)
    assert lift["effect"]["low"] < EFFECT < lift["effect"]["high"]
    assert lift["effect"]["verdict"] == "significant" and lift["effect"]["low"] > 0
    assert lift["placebo"]["low"] < 0 < lift["placebo"]["high"]
    assert lift["placebo"]["verdict"] == "not significant"
    assert groups[("effect", "holdout")]["points_cost"] == 0
    assert groups[("effect", "treatment")]["points_cost"] == sum(s // 100 for s in treated)
    assert any("Welch" in note for note in report.notes)
