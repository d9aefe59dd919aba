"""Referrals through the database: a referee's qualifying first purchase and the referrer's event
are applied in one transaction, so posting examples/shop's referral story ends where the in-memory
replay (`perkflow simulate`) ends, and a retry rewards nobody twice."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from perkflow.engine import compile
from perkflow.engine.simulate import Replay, member_view
from perkflow.rules import load
from perkflow.service.core import Service
from perkflow.service.events import Applied
from perkflow.service.problems import Problem
from perkflow.service.replay_check import verify
from perkflow.storage import tables as t

from ..databases import Clock, publish

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
# the advocate and her five friends of March (two over her monthly cap), and the two signups whose
# codes are refused (their own; a code no member has)
ADVOCATE = "nv-30004"
FRIENDS = tuple(f"nv-{30041 + n}" for n in range(5))
MEMBERS = (ADVOCATE, *FRIENDS, "nv-30069", "nv-30070")
END = "2026-07-01T00:00:00+08:00"


def _events() -> list[dict]:
    with (SHOP / "events.jsonl").open(encoding="utf-8") as lines:
        return [e for e in map(json.loads, lines) if e["member_id"] in MEMBERS]


def test_the_shop_s_referrals_end_in_the_same_state_through_the_database_as_in_memory(service: Service, clock: Clock):
    clock.set(END)
    publish(service, str(SHOP / "scheme.yaml"))
    run = Replay(compile(load(SHOP / "scheme.yaml").scheme))
    for event in _events():
        posted = service.events.post(event)
        run.feed(event)
        assert isinstance(posted, Applied) == (event["id"] not in {r["event_id"] for r in run.rejections}), (event, posted)
    run.finish(clock())
    for member in MEMBERS:
        stored = service.members.get(member)
        assert not isinstance(stored, Problem)
        expected = member_view(run.program, run.members[member], clock())
        for key in ("referral", "lots", "coupons", "tags"):
            assert stored[key] == expected[key], (member, key)
        assert stored["balances"]["points"] == expected["balances"].get("points", 0), member
    assert [service.members.get(f)["referral"]["status"] for f in FRIENDS] == ["rewarded"] * 5  # type: ignore[index]
    with service.engine.connect() as conn:
        made = conn.execute(select(t.events.c.id, t.events.c.source, t.events.c.decision).where(t.events.c.type == "referral_completed")).all()
    assert sorted((r.id, r.source) for r in made) == [(f"referral:{f}", "referral") for f in FRIENDS]
    fired = sorted(r.id for r in made if r.decision["trace"][0]["outcome"] == "fired")
    assert len(fired) == 3  # three friends a month
    assert service.members.get(ADVOCATE)["balances"]["points"] == run.members[ADVOCATE].balance("points")  # type: ignore[index]
    assert verify(service.engine, service.versions).clean


def test_a_retried_first_purchase_rewards_the_referrer_once(service: Service, clock: Clock):
    clock.set(END)
    publish(service, str(SHOP / "scheme.yaml"))
    events = [e for e in _events() if e["member_id"] in (ADVOCATE, FRIENDS[0])]
    for event in events:
        assert isinstance(service.events.post(event), Applied)
    before = service.members.get(ADVOCATE)
    first = next(e for e in events if e["type"] == "purchase" and e["member_id"] == FRIENDS[0])
    again = service.events.post(first)
    assert isinstance(again, Applied) and again.status == 200
    assert service.members.get(ADVOCATE) == before
