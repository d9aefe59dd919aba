"""Achievements through the database: the service stores each member's progress with the
decision, so replaying examples/salon's events through it ends where the in-memory replay ends."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update

from perkflow.engine import compile
from perkflow.engine.simulate import Replay, member_view
from perkflow.rules import load
from perkflow.service.core import Service
from perkflow.service.events import Applied
from perkflow.service.problems import Problem
from perkflow.service.replay_check import verify
from perkflow.storage import tables as t

from ..databases import Clock, publish

SALON = Path(__file__).resolve().parents[2] / "examples" / "salon"
# A client with the seven-day badge and several months as a regular, one with the badge only, and
# one whose third visit of a month (which earned the 200 points) was refunded.
MEMBERS = ("ls-20003", "ls-20011", "ls-20036")


def _events() -> list[dict]:
    with (SALON / "events.jsonl").open(encoding="utf-8") as lines:
        return [e for e in map(json.loads, lines) if e["member_id"] in MEMBERS]


def test_the_salon_s_achievements_end_in_the_same_state_through_the_database_as_in_memory(service: Service, clock: Clock):
    clock.set("2026-04-01T00:00:00+08:00")
    publish(service, str(SALON / "scheme.yaml"))
    events = _events()
    run = Replay(compile(load(SALON / "scheme.yaml").scheme))
    for event in events:
        posted = service.events.post(event)
        assert isinstance(posted, Applied), posted
        run.feed(event)
    assert run.rejections == []
    at = datetime.fromisoformat("2026-04-01T00:00:00+08:00")
    for member in MEMBERS:
        stored = service.members.get(member)
        assert not isinstance(stored, Problem)
        expected = member_view(run.program, run.members[member], at)
        for key in ("achievements", "tags", "lots", "coupons", "counters", "tier"):
            assert stored[key] == expected[key], (member, key)
    badges = {m: service.members.get(m)["achievements"]["checkin-week"].get("first_completed_at") for m in MEMBERS}  # type: ignore[index]
    assert badges == {"ls-20003": "2025-10-29T17:14:00+08:00", "ls-20011": "2026-01-15T13:38:00+08:00", "ls-20036": None}


def test_replay_verify_finds_the_stored_achievements_equal_to_a_replay_and_names_one_altered(service: Service, clock: Clock):
    clock.set("2026-04-01T00:00:00+08:00")
    publish(service, str(SALON / "scheme.yaml"))
    for event in _events():
        assert isinstance(service.events.post(event), Applied)
    assert verify(service.engine, service.versions).clean
    with service.engine.begin() as conn:
        row = conn.execute(select(t.members.c.id, t.members.c.goals).where(t.members.c.external_id == "ls-20011")).one()
        altered = {**row.goals, "checkin-week": {**row.goals["checkin-week"], "completions": 2}}
        conn.execute(update(t.members).where(t.members.c.id == row.id).values(goals=altered))
    [mismatch] = verify(service.engine, service.versions).mismatches
    assert mismatch.member_id == "ls-20011"
    assert mismatch.differences == ("achievement checkin-week: database 2 completions, progress 3; replay 1 completions, progress 3",)
