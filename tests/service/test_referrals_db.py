"""Referrals through the database: a referee's qualifying first purchase and the referrer's event
are applied in one transaction, so posting examples/shop's referral story ends where the in-memory
replay (`perkflow simulate`) ends, and a retry rewards nobody twice."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
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

from ..databases import EXAMPLE_SOURCES, Clock, publish

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
        posted = service.events.post(event, source=EXAMPLE_SOURCES.get(event["type"], "api"))
        run.feed(event)
        assert isinstance(posted, Applied) == (event["id"] not in {r["event_id"] for r in run.rejections}), (event, posted)
    run.finish(clock())
    # what falls due by the end (growth that expires at midnight on 1 July) the scheduler applies
    # in the service, as finish() does in memory
    service.scheduler.tick()
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
    # without her other friends' rewards the advocate cannot afford every voucher she asks for:
    # the service refuses what the in-memory replay of the same events refuses
    run = Replay(compile(load(SHOP / "scheme.yaml").scheme))
    for event in events:
        posted = service.events.post(event, source=EXAMPLE_SOURCES.get(event["type"], "api"))
        run.feed(event)
        assert isinstance(posted, Applied) == (event["id"] not in {r["event_id"] for r in run.rejections}), (event, posted)
    before = service.members.get(ADVOCATE)
    first = next(e for e in events if e["type"] == "purchase" and e["member_id"] == FRIENDS[0])
    again = service.events.post(first)
    assert isinstance(again, Applied) and again.status == 200
    assert service.members.get(ADVOCATE) == before


INVITE = """
perkflow: 1
id: invite
name: Invite
balances:
  points: {}
event_types:
  friend_joined:
    attributes:
      referee: {type: str}
      first_order_amount: {type: money}
referrals:
  reward_event: friend_joined
  referee_then: [{award: {balance: points, amount: "100"}}]
rules:
  - id: earn
    on: purchase
    then: [{award: {balance: points, amount: "event.amount / 100"}}]
  - id: friend-bonus
    on: friend_joined
    then: [{award: {balance: points, amount: "500"}}]
"""


def test_friends_first_purchases_at_once_and_the_referrer_s_own_each_add_up_exactly(service: Service, clock: Clock):
    clock.set(END)
    publish(service, INVITE)
    friends = [f"f{n}" for n in range(6)]
    at = "2026-06-01T10:00:00+08:00"
    assert isinstance(service.events.post({"id": "s-ann", "type": "signup", "member_id": "ann", "occurred_at": at}), Applied)
    for friend in friends:
        signup = {"id": f"s-{friend}", "type": "signup", "member_id": friend, "occurred_at": at, "attributes": {"referral_code": "ann"}}
        assert isinstance(service.events.post(signup), Applied)
    later = "2026-06-02T10:00:00+08:00"
    posts = [
        {"id": f"p-{m}", "type": "purchase", "member_id": m, "occurred_at": later, "attributes": {"amount": 1000}}
        for m in [*friends, "ann", "ann"]
    ]
    posts[-1]["id"] = "p-ann-2"
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(service.events.post, posts))
    assert all(isinstance(r, Applied) and r.status == 201 for r in results), results
    assert service.members.get("ann")["balances"]["points"] == 6 * 500 + 2 * 10  # type: ignore[index]
    assert [service.members.get(f)["balances"]["points"] for f in friends] == [10 + 100] * 6  # type: ignore[index]
    assert verify(service.engine, service.versions).clean
