"""Small helpers so engine tests read as: the scheme, the events, the expected balances."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from perkflow.engine import Decision, MemberState, Program, compile, evaluate, new_member, parse_event
from perkflow.engine.evaluate import next_due
from perkflow.rules import loads


def program(yaml_text: str) -> Program:
    loaded = loads(textwrap.dedent(yaml_text), "test.yaml")
    assert loaded.errors == [], [e.render() for e in loaded.errors]
    assert loaded.scheme is not None
    return compile(loaded.scheme)


class Member:
    """One member walked through events, time-driven events applied first, as the service does."""

    def __init__(self, prog: Program, member_id: str = "m1", joined: str = "2026-01-01T09:00:00+08:00") -> None:
        self.program = prog
        self.state: MemberState = new_member(member_id, datetime.fromisoformat(joined), tier=prog.lowest_tier())
        self.budgets: dict[str, int] = {}
        self.decisions: list[Decision] = []
        self._n = 0

    def event(self, kind: str, at: str, store: str = "S1", channel: str = "pos", event_id: str | None = None, **attributes: Any) -> Decision:
        self._n += 1
        raw = {
            "id": event_id or f"e{self._n}",
            "type": kind,
            "member_id": self.state.member_id,
            "occurred_at": at,
            "store": store,
            "channel": channel,
            "attributes": attributes,
        }
        event, errors = parse_event(raw, self.program.event_types)
        assert event is not None, errors
        self.advance(event.occurred_at)
        decision = evaluate(self.program, self.state, event, self.budgets)
        self._take(decision)
        return decision

    def advance(self, until: datetime | str) -> list[Decision]:
        instant = datetime.fromisoformat(until) if isinstance(until, str) else until
        done = []
        while batch := next_due(self.program, self.state, instant):
            for due in batch:
                decision = evaluate(self.program, self.state, due, self.budgets)
                self._take(decision)
                done.append(decision)
        return done

    def _take(self, decision: Decision) -> None:
        self.decisions.append(decision)
        if decision.rejection is None:
            self.state = decision.state
            for key, units in decision.budget_uses.items():
                self.budgets[key] = self.budgets.get(key, 0) + units

    def balance(self, name: str) -> int:
        return self.state.balance(name)

    def part(self, name: str, part: str) -> int:
        return self.state.part_balance(name, part)

    def lots(self, name: str) -> list[int]:
        return [lot.amount for lot in self.state.lots.get(name, ())]


def outcomes(decision: Decision) -> dict[str, str]:
    return {t.rule: (t.outcome if t.outcome == "fired" else t.reason) for t in decision.trace}


def ledger_sum(decisions: Iterable[Decision], balance: str) -> int:
    return sum(e.amount for d in decisions if d.rejection is None for e in d.effects if e.balance == balance)
