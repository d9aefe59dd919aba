"""Ledger promises under random sequences of events, checked against a plain model after every step."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from perkflow.engine.evaluate import lot_order

from .helpers import Member, ledger_sum, program

SCHEME = """
id: ledger
name: Ledger
balances:
  points:
    expiry: {kind: rolling, after: 20d}
    allow_negative: NEGATIVE
    pending: PENDING
  stars:
    expiry: {kind: period_end, period: month}
    consumption: oldest_first
rules:
  - id: earn
    on: purchase
    then:
      - award: {balance: points, amount: "event.amount / 100"}
      - award: {balance: stars, amount: "event.amount // 1000"}
  - id: spend-points
    on: checkin
    then: [{deduct: {balance: points, amount: "7"}}]
rewards:
  gift:
    name: Gift
    cost: {balance: stars, amount: 3}
    grants: [{tag: gifted}]
"""
PENDING_KINDS = {"time": "{duration: 3d}", "time_or_order": "{duration: 3d, until_event: order_completed}", "order": "{until_event: order_completed}"}
PROGRAMS = {
    (flag, kind): program(SCHEME.replace("NEGATIVE", flag).replace("PENDING", pending))
    for flag in ("true", "false")
    for kind, pending in PENDING_KINDS.items()
}


class Ledger(RuleBasedStateMachine):
    @initialize(negative=st.sampled_from(["true", "false"]), pending=st.sampled_from(sorted(PENDING_KINDS)))
    def start(self, negative: str, pending: str) -> None:
        self.program = PROGRAMS[(negative, pending)]
        self.member = Member(self.program)
        self.clock = datetime.fromisoformat("2026-01-01T10:00:00+08:00")
        self.purchases: dict[str, tuple[int, int]] = {}  # id -> (amount, refunded)
        self.n = 0

    def _at(self, hours: int) -> str:
        self.clock += timedelta(hours=hours)
        return self.clock.isoformat()

    @rule(amount=st.integers(0, 50_000), hours=st.integers(0, 100))
    def purchase(self, amount: int, hours: int) -> None:
        self.n += 1
        event_id = f"p{self.n}"
        decision = self.member.event("purchase", self._at(hours), event_id=event_id, amount=amount)
        assert decision.rejection is None
        self.purchases[event_id] = (amount, 0)

    @precondition(lambda self: any(a > r for a, r in self.purchases.values()))
    @rule(data=st.data(), hours=st.integers(0, 48))
    def refund(self, data: st.DataObject, hours: int) -> None:
        event_id = data.draw(st.sampled_from(sorted(k for k, (a, r) in self.purchases.items() if a > r)))
        amount, refunded = self.purchases[event_id]
        part = data.draw(st.integers(1, amount - refunded))
        earned_before = self.member.state.earnings[event_id]
        decision = self.member.event("refund", self._at(hours), original_event_id=event_id, amount=part)
        assert decision.rejection is None
        self.purchases[event_id] = (amount, refunded + part)
        # a refund never takes back more than the purchase earned
        for balance, _, units in earned_before.earned:
            clawed = -sum(e.amount for e in decision.effects if e.kind == "clawback" and e.balance == balance)
            assert 0 <= clawed <= units

    @rule(hours=st.integers(0, 72))
    def spend_points(self, hours: int) -> None:
        at = self._at(hours)
        self.member.advance(at)
        lots_before = list(self.member.state.lots.get("points", ()))
        decision = self.member.event("checkin", at)
        spends = [e for e in decision.effects if e.kind == "spend"]
        for effect in spends:
            taken = [lot_id for lot_id, _ in effect.lots]
            spendable = [lot.id for lot in lots_before if lot.available_at is None or lot.available_at <= self.clock]
            assert taken == spendable[: len(taken)], "lots are consumed in the declared order"
            pending = {lot.id for lot in lots_before if lot.available_at is not None and lot.available_at > self.clock}
            assert not pending & set(taken), "a pending lot is never spent"

    @precondition(lambda self: bool(self.purchases))
    @rule(data=st.data(), hours=st.integers(0, 72))
    def complete_order(self, data: st.DataObject, hours: int) -> None:
        event_id = data.draw(st.sampled_from(sorted(self.purchases)))
        decision = self.member.event("order_completed", self._at(hours), original_event_id=event_id)
        assert decision.rejection is None
        for effect in decision.effects:
            assert effect.kind == "activate" and effect.amount == 0
            assert all(lot_id.startswith(f"{event_id}#") for lot_id, _ in effect.lots)

    @rule(hours=st.integers(0, 72))
    def redeem_gift(self, hours: int) -> None:
        at = self._at(hours)
        self.member.advance(at)  # expiry due before the event is not part of what a refusal keeps
        before = self.member.state
        decision = self.member.event("reward_redemption", at, reward="gift")
        if decision.rejection is not None:
            assert decision.rejection.code == "insufficient_balance" and self.member.state == before

    @rule(days=st.integers(0, 40))
    def let_time_pass(self, days: int) -> None:
        self.clock += timedelta(days=days)
        self.member.advance(self.clock)

    @invariant()
    def balances_equal_their_ledger(self) -> None:
        if not hasattr(self, "member"):
            return
        for balance in ("points", "stars"):
            assert self.member.balance(balance) == ledger_sum(self.member.decisions, balance)

    @invariant()
    def no_lot_is_below_zero_and_lots_stay_in_order(self) -> None:
        if not hasattr(self, "member"):
            return
        for balance, lots in self.member.state.lots.items():
            assert all(lot.amount > 0 for lot in lots)
            key = lot_order(self.program, balance)
            assert list(lots) == sorted(lots, key=key)

    @invariant()
    def no_lot_stays_pending_past_its_activation_once_time_is_applied(self) -> None:
        if not hasattr(self, "member"):
            return
        # every step applies what fell due up to the clock before its event
        for lot in self.member.state.lots.get("points", ()):
            assert lot.available_at is None or lot.available_at > self.clock

    @invariant()
    def a_balance_goes_negative_only_where_allowed(self) -> None:
        if not hasattr(self, "member"):
            return
        if self.program.balances["points"].allow_negative:
            assert self.member.balance("points") >= -sum(self.member.state.debts.values())
        else:
            assert self.member.state.debts == {}
            assert self.member.balance("points") >= 0


Ledger.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestLedger = Ledger.TestCase


def test_replaying_the_same_events_gives_equal_decisions():
    prog = PROGRAMS[("true", "time")]
    runs = []
    for _ in range(2):
        m = Member(prog)
        m.event("purchase", "2026-01-02T10:00:00+08:00", event_id="p1", amount=12_345)
        m.event("checkin", "2026-01-06T10:00:00+08:00")
        m.event("refund", "2026-01-07T10:00:00+08:00", original_event_id="p1", amount=12_345)
        m.advance("2026-03-01T00:00:00+08:00")
        runs.append(m.decisions)
    assert runs[0] == runs[1]
