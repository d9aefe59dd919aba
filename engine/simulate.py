"""Replaying an event stream in memory through the same `evaluate` the service uses.

Events are applied in the order given (arrival order). Before each event, the member's
time-driven events due at or before it (expiry, tier reviews) are applied, as the live system
does; at the end, those due up to `until` (default: the last event's time) are applied too.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .calendar import EPOCH_ORDINAL
from .evaluate import Decision, _counter_value, evaluate, goal_progress, next_due
from .events import Event, parse_event
from .program import Program
from .referrals import code_owner, referral_code, referrer_event
from .state import UNTIL_EVENT, CounterState, GoalState, MemberState, TierOverride, new_member


@dataclass
class Replay:
    program: Program
    trace: bool = True
    members: dict[str, MemberState] = field(default_factory=dict)
    budgets: dict[str, int] = field(default_factory=dict)
    applied: int = 0
    system: int = 0
    rejections: list[dict[str, str]] = field(default_factory=list)
    flows: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    coupons_issued: Counter[str] = field(default_factory=Counter)
    rewards: Counter[str] = field(default_factory=Counter)
    rules: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    last_at: datetime | None = None
    keep: Callable[[Decision], None] | None = None  # sees every decision, for per-event expectations
    birthdays: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # member -> (month, day), for the scheduler's birthdays

    def feed(self, raw: Mapping[str, Any]) -> None:
        event, errors = parse_event(raw, self.program.event_types)
        if event is None:
            event_id = str(raw.get("id", "")) if isinstance(raw, Mapping) else ""
            self.rejections.append({"event_id": event_id, "code": errors[0].code, "message": errors[0].message})
            return
        self.apply(event)

    def apply(self, event: Event) -> None:
        state = self.members.get(event.member_id)
        if state is None:
            if event.type != "signup" and not self.program.scheme.auto_enroll:
                self.rejections.append({"event_id": event.id, "code": "unknown_member", "message": f"no member '{event.member_id}'"})
                return
            state = new_member(
                event.member_id, event.occurred_at, tier=self.program.lowest_tier(), home_store=event.store,
                birthday=self.birthdays.get(event.member_id),
            )
        due: list[Decision] = []
        state = self._advance(state, event.occurred_at, due)
        code = event.attributes.get("referral_code") if event.type == "signup" else None
        referrer = self.members.get(code_owner(code)) if isinstance(code, str) and code else None
        decision = evaluate(self.program, state, event, self.budgets, trace=self.trace, referrer=referrer)
        if decision.rejection is not None:
            # As in the service, a refused event changes nothing, not even what fell due before
            # it: that is applied, and counted, with the member's next event or at the end.
            self.rejections.append({"event_id": event.id, "code": decision.rejection.code, "message": decision.rejection.message})
            return
        for done in due:
            self.system += 1
            self._record(done)
        self.applied += 1
        self._record(decision)
        self.members[event.member_id] = decision.state
        if self.last_at is None or event.occurred_at > self.last_at:
            self.last_at = event.occurred_at
        derived = referrer_event(self.program, decision, event)
        if derived is not None:
            self._reward_referrer(derived)

    def _reward_referrer(self, event: Event) -> None:
        """The referrer's event for a referee's qualifying first purchase, right after it, as the
        service applies it in the purchase's transaction; counted with the system's events."""
        state = self.members[event.member_id]  # bound at the signup, so the referrer is known
        due: list[Decision] = []
        state = self._advance(state, event.occurred_at, due)
        decision = evaluate(self.program, state, event, self.budgets, trace=self.trace)
        if decision.rejection is not None:
            self.rejections.append({"event_id": event.id, "code": decision.rejection.code, "message": decision.rejection.message})
            return
        for done in [*due, decision]:
            self.system += 1
            self._record(done)
        self.members[event.member_id] = decision.state

    def _advance(self, state: MemberState, until: datetime, done: list[Decision]) -> MemberState:
        while batch := next_due(self.program, state, until):
            for due in batch:
                decision = evaluate(self.program, state, due, self.budgets, trace=self.trace)
                done.append(decision)
                state = decision.state
        return state

    def finish(self, until: datetime | None = None) -> None:
        until = until or self.last_at
        if until is None:
            return
        for member_id in sorted(self.members):
            due: list[Decision] = []
            self.members[member_id] = self._advance(self.members[member_id], until, due)
            for done in due:
                self.system += 1
                self._record(done)
        self.last_at = max(self.last_at or until, until)

    def _record(self, decision: Decision) -> None:
        if self.keep is not None:
            self.keep(decision)
        for key, units in decision.budget_uses.items():
            self.budgets[key] = self.budgets.get(key, 0) + units
        for effect in decision.effects:
            if effect.kind == "restore":
                # units a refunded purchase paid with, given back: redeemed is net of them
                self.flows[effect.balance or ""]["redeemed"] -= effect.amount
            elif effect.balance is not None:
                flow = {
                    "earn": "issued", "spend": "redeemed", "expire": "expired", "clawback": "clawed_back", "adjust": "adjusted",
                    "activate": "activated", "opening": "opened",
                }[effect.kind]
                self.flows[effect.balance][flow] += abs(effect.amount)
            elif effect.kind == "coupon_issued" and effect.policy:
                self.coupons_issued[effect.policy] += 1
            elif effect.kind == "reward_granted" and effect.reward:
                self.rewards[effect.reward] += 1
        for line in decision.trace:
            self.rules[line.rule][line.outcome if line.outcome == "fired" else f"{line.outcome}:{line.reason}"] += 1

    # --- the report ----------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        at = self.last_at
        program = self.program
        members: dict[str, Any] = {}
        coupon_totals: dict[str, Counter[str]] = defaultdict(Counter)
        for member_id in sorted(self.members):
            state = self.members[member_id]
            members[member_id] = member_view(program, state, at)
            for coupon in state.coupons:
                coupon_totals[coupon.policy][_coupon_status(coupon, at)] += 1
        balances = {}
        for balance in program.balances:
            flows = self.flows.get(balance, Counter())
            balances[balance] = {
                "issued": flows["issued"],
                "redeemed": flows["redeemed"],
                "expired": flows["expired"],
                "clawed_back": flows["clawed_back"],
                "outstanding": sum(state.balance(balance) for state in self.members.values()),
            }
        tiers = Counter(state.tier for state in self.members.values() if state.tier is not None)
        return {
            "scheme": program.scheme.id,
            "version": program.version,
            "as_of": at.isoformat() if at else None,
            "events": {"applied": self.applied, "rejected": len(self.rejections), "system": self.system},
            "totals": {
                "balances": balances,
                "coupons": {
                    policy: {"issued": self.coupons_issued[policy], **{k: v for k, v in sorted(coupon_totals[policy].items())}}
                    for policy in sorted(set(self.coupons_issued) | set(coupon_totals))
                },
                "rewards": dict(sorted(self.rewards.items())),
                "tiers": dict(sorted(tiers.items())),
            },
            "rules": {rule: dict(sorted(counts.items())) for rule, counts in sorted(self.rules.items())},
            "rejections": self.rejections,
            "members": members,
        }


def _coupon_status(coupon: Any, at: datetime | None) -> str:
    if coupon.voided:
        return "void"
    if coupon.redeemed_at is not None:
        return "redeemed"
    if at is not None and coupon.valid_until <= at:
        return "expired"
    return "active"


def _pending(program: Program, balance: str, available_at: datetime | None) -> dict[str, str]:
    """How a pending lot is shown: the instant it activates, or the event that activates it."""
    if available_at is None:
        return {}
    if available_at == UNTIL_EVENT:
        pending = program.balances[balance].pending
        return {"pending_until": pending.until_event or "" if pending else ""}
    return {"available_at": available_at.astimezone(program.tz).isoformat()}


def member_view(program: Program, state: MemberState, at: datetime | None) -> dict[str, Any]:
    """A member's state as plain data: what `perkflow simulate` prints and expected.json holds."""
    today = (at.astimezone(program.tz).date().toordinal() - EPOCH_ORDINAL) if at else 0
    compiled = {c.name: c for cs in program.counters.values() for c in cs}
    tz = program.tz

    def when(instant: datetime | None) -> str | None:
        return instant.astimezone(tz).isoformat() if instant else None

    return {
        "tier": state.tier,
        "tier_since": when(state.tier_since),
        **({"tier_review_at": when(state.tier_review_at)} if state.tier_review_at else {}),
        **({"tier_override": _override(state.tier_override, when)} if state.tier_override else {}),
        "balances": {b: state.balance(b) for b in program.balances if state.balance(b) or state.lots.get(b)},
        "lots": {
            b: [
                {
                    "amount": lot.amount,
                    "earned_at": when(lot.earned_at),
                    "expires_at": when(lot.expires_at),
                    **({"part": lot.part} if lot.part else {}),
                    **_pending(program, b, lot.available_at),
                }
                for lot in lots
            ]
            for b, lots in sorted(state.lots.items())
            if lots
        },
        **({"debts": dict(state.debts)} if state.debts else {}),
        "coupons": [
            {"id": c.id, "policy": c.policy, "status": _coupon_status(c, at), "valid_until": when(c.valid_until), **({"code": c.code} if c.code else {})}
            for c in state.coupons
        ],
        "counters": {
            name: _counter_value(state.counters.get(name, CounterState()), compiled[name], today)
            for name in sorted(compiled)
        },
        "tags": sorted(state.tags),
        **({"achievements": achievements_view(program, state, at)} if program.goal_by_id else {}),
        **({"referral": referral_view(state)} if program.scheme.referrals is not None else {}),
    }


def referral_view(state: MemberState) -> dict[str, Any]:
    """The member's referral code and, when invited, by whom and what became of it."""
    out: dict[str, Any] = {"code": referral_code(state.member_id)}
    if state.referral is not None:
        out["referred_by"] = state.referral.referred_by
        out["status"] = state.referral.status
    return out


def achievements_view(program: Program, state: MemberState, at: datetime | None) -> dict[str, Any]:
    """Each achievement of the scheme: the progress that counts at `at`, the target, the times it
    was completed and the date of its badge (the first completion)."""
    day = at.astimezone(program.tz).date() if at else None
    out: dict[str, Any] = {}
    for goal_id, goal in program.goal_by_id.items():
        goal_state = state.goals.get(goal_id, GoalState())
        achievement = goal.achievement
        out[goal_id] = {
            "progress": goal_progress(goal, goal_state, day) if day else goal_state.progress,
            "target": achievement.target,
            "completions": goal_state.completions,
        }
        if goal_state.earned_at is not None:
            # the badge's date: the first completion (a badge is a tag that remembers when)
            out[goal_id]["first_completed_at"] = goal_state.earned_at.astimezone(program.tz).isoformat()
            if achievement.badge is not None:
                out[goal_id]["badge"] = achievement.badge
    return out


def _override(override: TierOverride, when: Callable[[datetime | None], str | None]) -> dict[str, Any]:
    return {"kind": override.kind, "tier": override.tier, "until": when(override.until), "reason": override.reason, "set_at": when(override.set_at)}


def replay(
    program: Program,
    events: Iterable[Mapping[str, Any]],
    *,
    until: datetime | None = None,
    trace: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Replay:
    """Replay raw events (decoded JSON objects) and return the finished replay."""
    run = Replay(program, trace=trace)
    for n, raw in enumerate(events, 1):
        run.feed(raw)
        if progress is not None and n % 1000 == 0:
            progress(n)
    run.finish(until)
    return run
