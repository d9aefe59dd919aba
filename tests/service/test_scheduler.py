"""The scheduler (issue 6): `tick` over a year of the coffee example applies exactly what the pure
engine's replay applies (expiries, reminders, birthdays, inactivity, tier reviews), on the same
instants and with the same effects; a second run and two concurrent runs apply nothing twice."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from perkflow.engine import Decision, Replay, compile
from perkflow.rules import loads
from perkflow.rules.builtins import SYSTEM_EVENT_TYPES
from perkflow.service.background import Background
from perkflow.service.core import Service, open_service
from perkflow.storage import tables as t

from ..databases import Clock, publish

REPO = Path(__file__).resolve().parents[2]
COFFEE = (REPO / "examples" / "coffee" / "scheme.yaml").read_text(encoding="utf-8")
SCHEME = (
    COFFEE.replace(
        "    expiry: {kind: rolling, after: 12mo}\n    value: 1",
        "    expiry: {kind: rolling, after: 12mo}\n    remind_before: 7d\n    value: 1",
    )
    + """
inactivity: {after: 60d}
templates:
  expiring: {text: {en: "{amount} points expire on {expires_at}", zh-CN: "您有{amount}积分将于{expires_at}过期"}}
  over: {text: {en: "Double weekends are over"}}
"""
).replace(
    "rules:\n  - id: base-earn",
    """rules:
  - id: expiry-reminder
    on: points_expiring
    then:
      - notify: {template: expiring}
  - id: campaign-over
    on: campaign_end
    then:
      - notify: {template: over}
  - id: win-back
    on: inactivity
    then:
      - award: {balance: points, amount: "20"}
  - id: base-earn""",
)
BIRTHDAYS = {  # 29 Feb, the end of February, the turn of the year, and plain days
    "bc-10048": (2, 29), "bc-10047": (2, 28), "bc-10057": (12, 31), "bc-10010": (1, 1), "bc-10012": (6, 15), "bc-10052": (3, 1),
}
SYSTEM_TYPES = (set(SYSTEM_EVENT_TYPES) - {"adjustment"}) | {"birthday"}  # birthdays may also be posted: told apart by id
START = datetime(2026, 1, 4, 12, tzinfo=UTC)
END = datetime(2027, 8, 1, 4, tzinfo=UTC)  # a year after the last event, and more


def _events() -> list[dict]:
    lines = (REPO / "examples" / "coffee" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e["member_id"] in BIRTHDAYS]


def _replay() -> tuple[Replay, dict[str, Decision]]:
    loaded = loads(SCHEME, "scheme.yaml")
    assert loaded.scheme is not None, [e.render() for e in loaded.errors]
    system: dict[str, Decision] = {}
    replay = Replay(compile(loaded.scheme), birthdays=BIRTHDAYS, keep=lambda d: system.update({d.event_id: d}) if d.event_id.startswith(f"{d.event_type}:") and d.event_type in SYSTEM_TYPES else None)
    for raw in _events():
        replay.feed(raw)
    replay.finish(END)
    return replay, system


def _live(service: Service, clock: Clock, step: timedelta = timedelta(days=7)) -> int:
    """The same events through the service, with `tick` run every few days in between."""
    clock.set("2025-12-31T00:00:00+00:00")
    publish(service, SCHEME)
    applied, tick_at = 0, START
    for raw in _events():
        at = datetime.fromisoformat(raw["occurred_at"])
        while tick_at < at:
            clock.now = tick_at
            applied += service.scheduler.tick().events
            tick_at += step
        clock.now = at
        service.events.post(raw)
        if raw["type"] == "signup":
            month, day = BIRTHDAYS[raw["member_id"]]
            put = service.members.put(raw["member_id"], {"birthday": f"2000-{month:02d}-{day:02d}"}, actor="test")
            assert not hasattr(put, "status") or put.status < 400, put
    while tick_at < END:
        clock.now = tick_at
        applied += service.scheduler.tick().events
        tick_at += step
    clock.now = END
    return applied + service.scheduler.tick().events


def test_a_year_of_ticks_applies_exactly_what_the_replay_applies(service: Service, clock: Clock):
    replay, expected = _replay()
    applied = _live(service, clock)
    with service.engine.connect() as conn:
        stored = {r.id: r for r in conn.execute(select(t.events.c.id, t.events.c.decision, t.events.c.occurred_at).where(t.events.c.source == "system"))}
        balances = {(r.external_id, r.balance): r.total for r in conn.execute(
            select(t.members.c.external_id, t.member_balances.c.balance, t.member_balances.c.total)
            .join(t.member_balances, t.member_balances.c.member_id == t.members.c.id)
        )}
        tiers = dict(conn.execute(select(t.members.c.external_id, t.members.c.tier)).all())
    assert sorted(stored) == sorted(expected)
    assert len(stored) // 2 < applied <= len(stored)  # the ticks applied most; the rest came before members' events
    for event_id, decision in expected.items():
        # the same effects (a stored version lists its balances in canonical order: compare as sets)
        assert sorted(json.dumps(e, sort_keys=True) for e in stored[event_id].decision["effects"]) == sorted(json.dumps(e, sort_keys=True, default=str) for e in decision.to_dict()["effects"]), event_id
        assert stored[event_id].occurred_at == decision.state.last_event_at.astimezone(UTC)
    kinds = {k: sorted(i for i in expected if i.startswith(k + ":")) for k in ("birthday", "points_expiring", "expiry", "inactivity", "tier_review", "campaign_end")}
    assert all(kinds.values()), {k: len(v) for k, v in kinds.items()}
    # birthdays on the right local day: 29 Feb on 28 Feb in 2026 and 2027, 31 Dec, 1 Jan
    assert expected["birthday:bc-10048:2027"].state.last_event_at.isoformat() == "2027-02-28T00:00:00+08:00"
    assert expected["birthday:bc-10010:2027"].state.last_event_at.isoformat() == "2027-01-01T00:00:00+08:00"
    assert expected["birthday:bc-10057:2026"].state.last_event_at.isoformat() == "2026-12-31T00:00:00+08:00"
    assert any(e.kind == "tier_changed" for i in kinds["tier_review"] for e in expected[i].effects)  # a downgrade at review
    # the weekend campaign ends on 1 Jul 2026 local time, for each member who joined before it
    assert kinds["campaign_end"] == sorted(f"campaign_end:double-weekend:{m}" for m in BIRTHDAYS)
    assert {expected[i].state.last_event_at.isoformat() for i in kinds["campaign_end"]} == {"2026-07-01T00:00:00+08:00"}
    # the reminders carry what expires, and the notification says it
    reminder = expected[kinds["points_expiring"][0]]
    notes = [e for e in reminder.effects if e.kind == "notify"]
    assert notes and notes[0].variables["amount"] > 0
    # the end state agrees
    for member, state in replay.members.items():
        assert tiers[member] == state.tier, member
        for balance in ("points", "growth"):
            assert balances.get((member, balance), 0) == state.balance(balance), (member, balance)
    # another run finds nothing left to do
    assert service.scheduler.tick().events == 0


def test_two_schedulers_at_once_apply_each_event_once(database_url: str, tmp_path: Path, clock: Clock):
    one = open_service(database_url, tmp_path / "data", clock=clock)
    two = open_service(database_url, tmp_path / "data", clock=clock)
    try:
        clock.set("2025-12-31T00:00:00+00:00")
        publish(one, SCHEME)
        loaded = loads(SCHEME, "scheme.yaml")
        assert loaded.scheme is not None
        birthdays = {f"m{n}": (1 + n % 9, 10 + n % 9) for n in range(12)}
        replay = Replay(compile(loaded.scheme), birthdays=birthdays)
        clock.set("2026-01-10T10:00:00+08:00")
        for member, (month, day) in birthdays.items():
            signup = {"id": f"s-{member}", "type": "signup", "member_id": member, "occurred_at": "2026-01-10T10:00:00+08:00", "store": "S1", "channel": "pos"}
            purchase = {**signup, "id": f"p-{member}", "type": "purchase", "attributes": {"amount": 10000 + month}}
            for raw in (signup, purchase):
                assert one.events.post(raw).status == 201
                replay.feed(raw)
            one.members.put(member, {"birthday": f"1990-{month:02d}-{day:02d}"}, actor="test")
        clock.set("2027-03-01T00:00:00+08:00")
        replay.finish(clock.now)
        barrier = threading.Barrier(2)
        counts: list[int] = []
        errors: list[BaseException] = []

        def run(svc: Service) -> None:
            try:
                barrier.wait()
                counts.append(svc.scheduler.tick().events)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(svc,)) for svc in (one, two)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        with one.engine.connect() as conn:
            system = conn.execute(select(func.count()).select_from(t.events).where(t.events.c.source == "system")).scalar()
            expired = conn.execute(select(func.count()).select_from(t.ledger).where(t.ledger.c.kind == "expire")).scalar()
            totals = dict(conn.execute(select(t.member_balances.c.balance, func.sum(t.member_balances.c.total)).group_by(t.member_balances.c.balance)).all())
            ledger = dict(conn.execute(select(t.ledger.c.balance, func.sum(t.ledger.c.amount)).group_by(t.ledger.c.balance)).all())
        assert sum(counts) == system  # each event applied by one of the two, never by both
        assert system == replay.system > 12 * 4  # what the pure engine applies: birthdays, reminders, expiries, inactivity
        assert expired == 12 * 2  # the welcome and the purchase lots (points and growth expire together)
        assert totals == ledger
        assert one.scheduler.tick().events == 0
    finally:
        one.engine.dispose()
        two.engine.dispose()


def test_serve_runs_the_scheduler_and_the_webhook_worker_in_the_background(service: Service, clock: Clock):
    publish(service, SCHEME)
    background = Background(service, tick_seconds=60, deliver_seconds=60).start()
    try:
        for _ in range(200):  # the first runs start at once; wait for them, not for a period
            with service.engine.connect() as conn:
                if conn.execute(select(func.count()).select_from(t.scheduler_runs)).scalar():
                    break
            threading.Event().wait(0.02)
    finally:
        background.stop()
    assert not background.thread.is_alive()
    assert service.scheduler.last_until() == clock.now
    assert not Background(service, tick_seconds=0, deliver_seconds=0).start().thread.is_alive()  # 0 turns both off
