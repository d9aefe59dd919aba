"""A process killed in the middle of its work leaves no partial event.

A worker process posts a stream of events one after another through `EventService.post`; the test
kills it with SIGKILL at a random moment, three times, each new worker starting the stream again
from its first event (those already stored are retries and change nothing). After every kill, and
after a last run that finishes the stream, what the database holds must be exactly what an
in-memory replay of the stored events gives: the same events, each with all its ledger rows and
lots, and for every member total == sum of the ledger == sum of the lots less the debt.
"""

from __future__ import annotations

import os
import random
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from perkflow.engine import Decision, Replay, compile
from perkflow.rules import loads
from perkflow.service.core import Service
from perkflow.storage import tables as t

from ..databases import publish
from .harness import ledger_problems, ledger_rows_by_event, start_worker

SCHEME = """
perkflow: 1
id: crash
name: Crash test
balances:
  points:
    expiry: {kind: rolling, after: 10d}
    allow_negative: true
  stamps:
    spendable: false
    expiry: {kind: period_end, period: month}
tiers:
  metric: {balance: stamps}
  levels:
    - {id: regular, name: Regular, threshold: 0, benefits: {multiplier: 1}}
    - {id: friend, name: Friend, threshold: 5, benefits: {multiplier: 2}}
rules:
  - id: earn
    on: purchase
    when: event.amount > 0
    then:
      - award: {balance: points, amount: "event.amount / 100 * tier.multiplier"}
      - award: {balance: stamps, amount: "1"}
  - id: welcome
    on: signup
    then: [{issue_coupon: {coupon: welcome}}]
  - id: visit
    on: checkin
    then: [{deduct: {balance: points, amount: "5"}}]
coupons:
  welcome:
    name: Welcome
    benefit: {kind: amount_off, amount: 300}
    validity: {days: 20}
    budget: 8
    per_member: 1
rewards:
  mug:
    name: Mug
    cost: {balance: points, amount: 50}
    stock: 6
    grants: [{tag: mug_owner}]
"""
START = datetime.fromisoformat("2026-03-01T09:00:00+08:00")
KILLS = 3


def _stream(seed: int, size: int = 240) -> list[dict[str, Any]]:
    """Signups, purchases (some with the welcome coupon), refunds, check-ins and mug redemptions
    of a dozen members over about two months, in time order."""
    rng = random.Random(seed)
    at, members, purchases, events = START, [], [], []
    for n in range(size):
        at += timedelta(minutes=rng.randrange(30, 400))
        roll = rng.random()
        if not members or (roll < 0.08 and len(members) < 12):
            kind, member, attributes = "signup", f"c{len(members)}", {}
            members.append(member)
        else:
            member = rng.choice(members)
            if roll < 0.6:
                kind, attributes = "purchase", {"amount": rng.randrange(0, 20_000)}
                if rng.random() < 0.1:
                    attributes["coupons"] = [f"e{members.index(member)}-signup#c1"]
                    attributes["amount"] += 10_000
                purchases.append((f"e{n}", member, attributes["amount"]))
            elif roll < 0.75 and purchases:
                original, member, amount = rng.choice(purchases)
                kind, attributes = (
                    "refund",
                    {"original_event_id": original, "amount": rng.choice([amount, amount // 2, 1])},
                )
            elif roll < 0.9:
                kind, attributes = "checkin", {}
            else:
                kind, attributes = "reward_redemption", {"reward": "mug"}
        event_id = f"e{members.index(member)}-signup" if kind == "signup" else f"e{n}"
        events.append(
            {
                "id": event_id,
                "type": kind,
                "member_id": member,
                "occurred_at": at.isoformat(),
                "store": "S1",
                "channel": "pos",
                "attributes": attributes,
            }
        )
    return events


def _expected(stream: list[dict[str, Any]], upto: int) -> tuple[Replay, dict[str, Decision]]:
    """The replay of the first `upto` events, and the decisions it kept by event id. A refused
    event keeps nothing, not even the expiry due before it (the service rolls that back too)."""
    decisions: dict[str, Decision] = {}
    pending: list[Decision] = []
    loaded = loads(SCHEME, "crash.yaml")
    assert loaded.scheme is not None
    run = Replay(compile(loaded.scheme), trace=False, keep=pending.append)
    for raw in stream[:upto]:
        refused = len(run.rejections)
        run.feed(raw)
        if len(run.rejections) == refused:
            decisions.update((d.event_id, d) for d in pending)
        pending.clear()
    return run, decisions


def _check_against_replay(svc: Service, stream: list[dict[str, Any]]) -> set[str]:
    """The stored events are a prefix of the stream, and the database equals a replay of it."""
    assert ledger_problems(svc.engine) == []
    with svc.engine.connect() as conn:
        stored = {
            r.id: r for r in conn.execute(select(t.events.c.id, t.events.c.source, t.events.c.decision))
        }
        totals = {
            (r.external_id, r.balance): r.total
            for r in conn.execute(
                select(t.members.c.external_id, t.member_balances.c.balance, t.member_balances.c.total).join(
                    t.members
                )
            )
        }
        lots = {
            r.id: r.amount
            for r in conn.execute(select(t.lots.c.id, t.lots.c.amount).where(t.lots.c.amount > 0))
        }
        budgets = {r.key: r.used for r in conn.execute(select(t.budgets))}
    index = {raw["id"]: n for n, raw in enumerate(stream)}
    posted = [event_id for event_id, row in stored.items() if row.source != "system"]
    upto = max((index[event_id] for event_id in posted), default=-1) + 1
    run, decisions = _expected(stream, upto)

    # the stored events are exactly the accepted events of a prefix of the stream
    assert (sorted(set(stored) - set(decisions)), sorted(set(decisions) - set(stored))) == ([], [])
    for event_id, decision in decisions.items():
        expected = decision.to_dict()
        assert stored[event_id].decision["effects"] == expected.get("effects", []), event_id
    rows = ledger_rows_by_event(svc.engine)
    for event_id, decision in decisions.items():
        want = sorted(
            (
                (e.balance, e.kind, e.amount, [list(x) for x in e.lots])
                for e in decision.effects
                if e.balance is not None
            ),
            key=repr,
        )
        assert rows.get(event_id, []) == want, f"event {event_id} has all its ledger rows and no others"
    for member, state in run.members.items():
        for balance in run.program.balances:
            assert totals.get((member, balance), 0) == state.balance(balance), (member, balance)
    assert lots == {
        lot.id: lot.amount for state in run.members.values() for lots_ in state.lots.values() for lot in lots_
    }
    assert {k: v for k, v in budgets.items() if v} == {k: v for k, v in run.budgets.items() if v}
    return set(posted)


def _answers(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [
        (event_id, code)
        for event_id, _, code in (line.partition(" ") for line in path.read_text().splitlines())
    ]


def test_a_worker_killed_at_random_moments_leaves_no_partial_event(shared_service: Service, tmp_path: Path):
    publish(shared_service, SCHEME)
    stream = _stream(seed=11)
    rng = random.Random()
    job = {
        "task": "stream",
        "url": shared_service.engine.url.render_as_string(hide_password=False),
        "data_dir": str(tmp_path / "data"),
        "now": (START + timedelta(days=120)).isoformat(),
    }
    answers: list[tuple[str, str]] = []
    for round_ in range(KILLS + 1):
        # Each worker goes on after the last event answered. The one in flight at the kill is posted
        # again: if it was stored, the retry answers 200. (Starting over from the first event would
        # post the refused ones again, and a refusal is not remembered: they could apply now.)
        out = tmp_path / f"answers-{round_}.txt"
        rest = stream[len(answers) :]
        proc, _ = start_worker(
            {**job, "events": rest, "ready": str(tmp_path / f"ready-{round_}"), "out": str(out)},
            tmp_path,
            f"stream-{round_}",
        )
        try:
            if round_ < KILLS:
                target = rng.randrange(5, len(rest) // 3)
                deadline = time.monotonic() + 30
                while len(_answers(out)) < target:
                    assert proc.poll() is None, proc.communicate()[1]
                    assert time.monotonic() < deadline, "the worker is too slow"
                    time.sleep(0.002)
                time.sleep(rng.uniform(0, 0.01))  # a random instant inside the next post
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            else:
                proc.wait(timeout=60)
                assert proc.returncode == 0, proc.communicate()[1]
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        answers += _answers(out)
        stored = _check_against_replay(shared_service, stream)
        # what was answered as applied is stored; beyond it, at most the event in flight
        assert {event_id for event_id, code in answers if code in ("200", "201")} <= stored
        assert stored <= {raw["id"] for raw in stream[: len(answers) + 1]}

    assert [event_id for event_id, _ in answers] == [raw["id"] for raw in stream]
    run, _ = _expected(stream, len(stream))
    refused = {r["event_id"]: r["code"] for r in run.rejections}
    assert {event_id: code for event_id, code in answers if code not in ("200", "201")} == refused
