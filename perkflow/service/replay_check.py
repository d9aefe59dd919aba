"""`perkflow replay --verify`: re-evaluate every stored event through the version that decided it,
and name each member whose balances, lots, tier, achievements or ledger differ from what the database holds.

The replay applies events as the live service did: in the order they were recorded, with the
time-driven events due before each one (expiry, tier reviews) applied first, each under the version
stored for it, and budgets claimed in that same order across members. It then advances each member
to its latest stored event, since the scheduler may have applied due events after the last posted
one. Nothing is written.

What the replay cannot see is left out and said so: members that took part in a merge (their
histories were joined by an operation, not an event) are listed as not checked. A member's profile
(home store, birthday) is taken as it is now.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from perkflow.engine import Decision, Event, MemberState, Program, evaluate, next_due, parse_event
from perkflow.engine.referrals import code_owner
from perkflow.engine.state import GoalState, new_member
from perkflow.storage import tables as t

from .state_store import _goals_from_json, _referral_from_json
from .versions import Versions

MERGE_KINDS = ("merge_in", "merge_out")


@dataclass(frozen=True)
class Mismatch:
    member_id: str
    differences: tuple[str, ...]  # "balance points: database 120, replay 100", ...


@dataclass
class Outcome:
    members: int = 0  # members checked
    events: int = 0  # stored events re-evaluated, time-driven ones included
    mismatches: list[Mismatch] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # members left out, with why
    budgets: list[str] = field(default_factory=list)  # budgets whose use differs

    @property
    def clean(self) -> bool:
        return not self.mismatches and not self.budgets


@dataclass
class _Member:
    pk: int
    state: MemberState
    program: Program | None  # the version of the member's latest event: it finds what falls due next
    ledger: Counter[tuple[str, str, str, int]] = field(default_factory=Counter)  # (event, balance, kind, amount)
    due_ids: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)


class _Programs:
    """The stored versions by content hash, read and compiled once."""

    def __init__(self, conn: Connection, versions: Versions) -> None:
        self.versions = versions
        v = t.scheme_versions.c
        self.contents = dict(conn.execute(select(v.hash, v.content)).all())

    def __call__(self, content_hash: str) -> Program | None:
        content = self.contents.get(content_hash)
        return None if content is None else self.versions.program(content_hash, content)


def verify(engine: Engine, versions: Versions) -> Outcome:
    """Replay the whole database in memory and compare; see the module's docstring."""
    outcome = Outcome()
    with engine.connect() as conn:
        programs = _Programs(conn, versions)
        rows = {r["id"]: r for r in conn.execute(select(t.members)).mappings()}
        merged = {pk for pk, r in rows.items() if r["status"] == "merged"} | set(
            conn.execute(select(t.ledger.c.member_id).where(t.ledger.c.kind.in_(MERGE_KINDS)).distinct()).scalars()
        )
        outcome.unchecked = sorted(f"{rows[pk]['external_id']}: took part in a merge" for pk in merged if pk in rows)
        system = _system_events(conn)
        members: dict[int, _Member] = {}
        by_external = {r["external_id"]: pk for pk, r in rows.items()}
        refused: dict[int, list[str]] = {}
        used: dict[str, int] = {}
        for row in _posted_events(conn):
            if row.member_id in merged or row.member_id not in rows:
                continue
            program = programs(row.version)
            event, _ = parse_event(row.body, program.event_types) if program is not None else (None, [])
            if program is None or event is None:
                why = "its version is not stored" if program is None else "its stored body does not parse"
                refused.setdefault(row.member_id, []).append(f"event {row.id}: {why}")
                continue
            member = members.get(row.member_id)
            if member is None:
                member = members[row.member_id] = _start(rows[row.member_id], program)
            member.program = program
            outcome.events += _advance(member, system, programs, event.occurred_at, used) + 1
            decision = evaluate(program, member.state, event, used, referrer=_referrer(event, members, by_external))
            if decision.rejection is not None:
                member.refused.append(f"event {row.id}: the replay refuses it ({decision.rejection.code})")
                continue
            _take(member, decision, used)
        last = dict(
            conn.execute(select(t.events.c.member_id, func.max(t.events.c.occurred_at)).group_by(t.events.c.member_id)).all()
        )
        for pk, member in sorted(members.items()):
            outcome.events += _advance(member, system, programs, last[pk], used)
            member.refused[:0] = refused.pop(pk, [])
            differences = _compare(conn, member, rows[pk], system)
            if differences:
                outcome.mismatches.append(Mismatch(rows[pk]["external_id"], tuple(differences)))
        outcome.mismatches += [Mismatch(rows[pk]["external_id"], tuple(why)) for pk, why in refused.items()]
        # A member without a single event (made by PUT) holds nothing the events did not give it.
        quiet = [pk for pk in rows if pk not in members and pk not in refused and pk not in merged]
        for pk in quiet:
            row = rows[pk]
            state = new_member(row["external_id"], row["joined_at"], tier=row["tier"], home_store=row["home_store"])
            differences = _compare(conn, _Member(pk, state, None), row, system)
            if differences:
                outcome.mismatches.append(Mismatch(row["external_id"], tuple(differences)))
        outcome.members = len(members) + len(refused) + len(quiet)
        for key, stored in conn.execute(select(t.budgets.c.key, t.budgets.c.used)).all():
            if used.get(key, 0) != stored:
                outcome.budgets.append(f"budget {key}: database used {stored}, replay {used.get(key, 0)}")
    outcome.mismatches.sort(key=lambda m: m.member_id)
    return outcome


def _referrer(event: Event, members: dict[int, _Member], by_external: dict[str, int]) -> MemberState | None:
    """The state, at this point of the replay, of the member a signup's referral code names. The
    referrer's own event (source `referral`) is stored, so it is replayed as posted, not derived."""
    code = event.attributes.get("referral_code") if event.type == "signup" else None
    if not isinstance(code, str) or not code:
        return None
    found = members.get(by_external.get(code_owner(code), -1))
    return found.state if found is not None else None


def _posted_events(conn: Connection) -> Iterator[Any]:
    """Every event not made by Perkflow's clock, in the order it was recorded (two recorded in the
    same instant in the order they occurred)."""
    e = t.events.c
    query = (
        select(e.id, e.member_id, e.body, e.version)
        .where(e.source != "system")
        .order_by(e.recorded_at, e.occurred_at, e.id)
        .execution_options(yield_per=1000)
    )
    yield from conn.execute(query)


def _system_events(conn: Connection) -> dict[str, tuple[str, int]]:
    """The stored time-driven events: id -> (the version that decided it, the member)."""
    e = t.events.c
    return {r.id: (r.version, r.member_id) for r in conn.execute(select(e.id, e.version, e.member_id).where(e.source == "system"))}


def _start(row: Any, program: Program) -> _Member:
    birthday = (row["birthday_month"], row["birthday_day"]) if row["birthday_month"] else None
    state = new_member(
        row["external_id"], row["joined_at"], tier=program.lowest_tier(), home_store=row["home_store"], birthday=birthday
    )
    return _Member(row["id"], state, program)


def _advance(member: _Member, system: dict[str, tuple[str, int]], programs: _Programs, until: datetime, used: dict[str, int]) -> int:
    """Apply the time-driven events due by `until`, as the live service does before an event: found
    by the program of the event that follows (or the member's latest), each evaluated under the
    version stored for it."""
    applied, program = 0, member.program
    assert program is not None  # set with the member's first event
    while batch := next_due(program, member.state, until):
        for due in batch:
            stored = programs(system[due.id][0]) if due.id in system else None
            _take(member, evaluate(stored or program, member.state, due, used), used)
            member.due_ids.add(due.id)
            applied += 1
    return applied


def _take(member: _Member, decision: Decision, used: dict[str, int]) -> None:
    for key, units in decision.budget_uses.items():
        used[key] = used.get(key, 0) + units
    for e in decision.effects:
        if e.balance is not None:
            member.ledger[(decision.event_id, e.balance, e.kind, e.amount)] += 1
    member.state = decision.state


def _compare(conn: Connection, member: _Member, row: Any, system: dict[str, tuple[str, int]]) -> list[str]:
    """What the database holds for the member that the replay does not, in words."""
    out = list(member.refused)
    state = member.state
    if state.tier != row["tier"]:
        out.append(f"tier: database {row['tier']}, replay {state.tier}")
    held_referral = _referral_from_json(row["referral"])
    if held_referral != state.referral:
        out.append(f"referral: database {held_referral}, replay {state.referral}")
    held_goals = _goals_from_json(row["goals"] or {})
    for goal_id in sorted(set(held_goals) | set(state.goals)):
        if held_goals.get(goal_id, GoalState()) != state.goals.get(goal_id, GoalState()):
            held, want = held_goals.get(goal_id, GoalState()), state.goals.get(goal_id, GoalState())
            out.append(
                f"achievement {goal_id}: database {held.completions} completions, progress {held.progress}; "
                f"replay {want.completions} completions, progress {want.progress}"
            )
    stored = {
        r.balance: (r.total, r.debt)
        for r in conn.execute(select(t.member_balances).where(t.member_balances.c.member_id == member.pk))
    }
    for balance in sorted(set(stored) | set(state.lots) | set(state.debts)):
        total, debt = stored.get(balance, (0, 0))
        if (total, debt) != (state.balance(balance), state.debts.get(balance, 0)):
            out.append(
                f"balance {balance}: database {total} (debt {debt}), "
                f"replay {state.balance(balance)} (debt {state.debts.get(balance, 0)})"
            )
    lots = {
        r.id: (r.balance, r.amount, r.expires_at)
        for r in conn.execute(select(t.lots).where(t.lots.c.member_id == member.pk, t.lots.c.amount > 0))
    }
    replayed = {lot.id: (lot.balance, lot.amount, lot.expires_at) for ls in state.lots.values() for lot in ls if lot.amount > 0}
    for lot_id in sorted(set(lots) | set(replayed)):
        if lots.get(lot_id) != replayed.get(lot_id):
            held, want = lots.get(lot_id), replayed.get(lot_id)
            out.append(
                f"lot {lot_id}: database {_lot(held)}, replay {_lot(want)}"
            )
    ledger: Counter[tuple[str, str, str, int]] = Counter(
        (r.event_id, r.balance, r.kind, r.amount)
        for r in conn.execute(select(t.ledger).where(t.ledger.c.member_id == member.pk))
    )
    for event_id, balance, kind, amount in sorted((ledger - member.ledger).elements()):
        out.append(f"ledger: event {event_id} has a {kind} of {amount} {balance} that the replay does not make")
    for event_id, balance, kind, amount in sorted((member.ledger - ledger).elements()):
        out.append(f"ledger: event {event_id} should hold a {kind} of {amount} {balance}, the database has none")
    mine = {event_id for event_id, (_, pk) in system.items() if pk == member.pk}
    for event_id in sorted(mine - member.due_ids):
        out.append(f"event {event_id}: stored, but the replay finds nothing due then")
    for event_id in sorted(member.due_ids - mine):
        out.append(f"event {event_id}: due, but not stored")
    return out


def _lot(value: tuple[str, int, datetime | None] | None) -> str:
    if value is None:
        return "none"
    balance, amount, expires_at = value
    return f"{amount} {balance}" + (f" expiring {expires_at.isoformat()}" if expires_at else "")
