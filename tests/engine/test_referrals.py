"""Referrals (邀请有礼): a friend signs up with a member's code; the friend's first purchase decides,
rewarding both sides; refused referrals say why and change nothing; a cap per referrer per month."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from perkflow.engine import Decision, Replay
from perkflow.engine.simulate import member_view
from perkflow.rules import loads

from .helpers import program

REFERRALS = """
id: invite
name: Invite
timezone: Asia/Shanghai
balances:
  points: {}
event_types:
  friend_joined:
    attributes:
      referee: {type: str}
      first_order_amount: {type: money}
referrals:
  qualify: event.amount >= 9900
  reward_event: friend_joined
  referee_then: [{award: {balance: points, amount: "100"}}]
rules:
  - id: friend-bonus
    name: 500 points a friend, two friends a month
    on: friend_joined
    caps: [{limit: 2, per: month}]
    then: [{award: {balance: points, amount: "500"}}]
"""


class Shop:
    """Events fed to an in-memory replay, the shell that gives the referrer its event."""

    def __init__(self) -> None:
        self.replay = Replay(program(REFERRALS))
        self.decisions: dict[str, Decision] = {}
        self.made: list[Decision] = []
        self.replay.keep = self._keep
        self.n = 0

    def _keep(self, decision: Decision) -> None:
        self.decisions[decision.event_id] = decision
        self.made.append(decision)

    def post(self, kind: str, member: str, at: str, **attributes: Any) -> str:
        self.n += 1
        event_id = f"e{self.n}"
        self.replay.feed({"id": event_id, "type": kind, "member_id": member, "occurred_at": at, "attributes": attributes})
        return event_id

    def points(self, member: str) -> int:
        return self.replay.members[member].balance("points")

    def referral(self, member: str) -> dict[str, Any]:
        return member_view(self.replay.program, self.replay.members[member], None)["referral"]

    def trace(self, event_id: str) -> dict[str, str]:
        return {t.rule: t.outcome if t.outcome == "fired" else t.reason for t in self.decisions[event_id].trace}


def test_a_friend_s_qualifying_first_purchase_rewards_the_friend_and_the_member_who_invited_them():
    shop = Shop()
    shop.post("signup", "ann", "2026-03-01T10:00:00+08:00")
    signup = shop.post("signup", "bob", "2026-03-02T10:00:00+08:00", referral_code="ann")
    assert shop.trace(signup) == {"referral:signup": "fired"}
    assert shop.referral("bob") == {"code": "bob", "referred_by": "ann", "status": "pending"}
    purchase = shop.post("purchase", "bob", "2026-03-03T10:00:00+08:00", amount=9900)
    assert shop.trace(purchase) == {"referral:purchase": "fired"}
    assert (shop.points("bob"), shop.points("ann")) == (100, 500)
    # the referrer's event is made by the replay under an id that names the referee
    reward = shop.decisions["referral:bob"]
    assert (reward.event_type, reward.member_id) == ("friend_joined", "ann")
    assert shop.trace("referral:bob") == {"friend-bonus": "fired"}
    assert shop.referral("bob") == {"code": "bob", "referred_by": "ann", "status": "rewarded"}
    assert shop.referral("ann") == {"code": "ann"}
    assert shop.replay.report()["events"] == {"applied": 3, "rejected": 0, "system": 1}


def test_the_first_purchase_decides_a_small_one_ends_the_referral_and_a_later_large_one_rewards_nobody():
    shop = Shop()
    shop.post("signup", "ann", "2026-03-01T10:00:00+08:00")
    shop.post("signup", "bob", "2026-03-02T10:00:00+08:00", referral_code="ann")
    small = shop.post("purchase", "bob", "2026-03-03T10:00:00+08:00", amount=9899)
    assert shop.trace(small) == {"referral:purchase": "when_false"}
    later = shop.post("purchase", "bob", "2026-03-04T10:00:00+08:00", amount=50000)
    assert shop.trace(later) == {}
    assert (shop.points("bob"), shop.points("ann")) == (0, 0)
    assert shop.referral("bob")["status"] == "unqualified"
    assert "referral:bob" not in shop.decisions


def test_self_referral_an_unknown_code_a_loop_and_a_known_referee_are_refused_with_the_reason_and_the_signup_stands():
    shop = Shop()
    shop.post("signup", "ann", "2026-03-01T10:00:00+08:00")
    own = shop.post("signup", "cat", "2026-03-01T11:00:00+08:00", referral_code="cat")
    unknown = shop.post("signup", "dan", "2026-03-01T12:00:00+08:00", referral_code="nobody")
    shop.post("signup", "bob", "2026-03-02T10:00:00+08:00", referral_code="ann")
    loop = shop.post("signup", "ann", "2026-03-02T11:00:00+08:00", referral_code="bob")  # bob was invited by ann
    known = shop.post("signup", "cat", "2026-03-02T12:00:00+08:00", referral_code="ann")  # cat joined before
    assert [shop.trace(e) for e in (own, unknown, loop, known)] == [
        {"referral:signup": "self_referral"},
        {"referral:signup": "unknown_code"},
        {"referral:signup": "referral_loop"},
        {"referral:signup": "referee_known"},
    ]
    for member in ("ann", "cat", "dan"):
        assert shop.referral(member) == {"code": member}, member
        shop.post("purchase", member, "2026-03-05T10:00:00+08:00", amount=20000)
    assert sum(shop.points(m) for m in ("ann", "bob", "cat", "dan")) == 0
    assert shop.replay.rejections == []  # the signups were applied


def test_the_cap_counts_a_referrer_s_rewarded_friends_per_local_month_and_the_friend_keeps_their_own_reward():
    shop = Shop()
    shop.post("signup", "ann", "2026-01-01T10:00:00+08:00")
    for n, at in enumerate(["2026-01-10T10:00:00+08:00", "2026-01-11T10:00:00+08:00", "2026-01-31T23:00:00+08:00", "2026-01-31T16:30:00+00:00"]):
        friend = f"f{n}"
        shop.post("signup", friend, "2026-01-05T10:00:00+08:00", referral_code="ann")
        shop.post("purchase", friend, at, amount=10000)
    # the third friend is the third in January (capped); the fourth bought at 00:30 on 1 February in Shanghai
    assert [shop.trace(f"referral:f{n}") for n in range(4)] == [
        {"friend-bonus": "fired"}, {"friend-bonus": "fired"}, {"friend-bonus": "cap_reached"}, {"friend-bonus": "fired"},
    ]
    assert shop.points("ann") == 3 * 500
    assert [shop.points(f"f{n}") for n in range(4)] == [100, 100, 100, 100]


MEMBERS = ["m0", "m1", "m2", "m3"]
STEPS = st.lists(
    st.tuples(st.sampled_from(["signup", "purchase"]), st.sampled_from(MEMBERS), st.sampled_from([*MEMBERS, "ghost"]), st.integers(0, 20000)),
    max_size=25,
)


@given(STEPS)
def test_no_self_referral_or_loop_is_ever_rewarded_and_each_friend_rewards_one_referrer_once(steps: list[tuple[str, str, str, int]]):
    shop = Shop()
    for minute, (kind, member, code, amount) in enumerate(steps):
        at = f"2026-03-01T10:{minute:02d}:00+08:00"
        if kind == "signup":
            shop.post("signup", member, at, referral_code=code)
        elif member in shop.replay.members:
            shop.post("purchase", member, at, amount=amount)
    referred_by = {m: s.referral.referred_by for m, s in shop.replay.members.items() if s.referral is not None}
    for member, referrer in referred_by.items():
        assert referrer != member
        seen, walk = {member}, referrer
        while walk in referred_by:  # the chain of who invited whom never comes back
            walk = referred_by[walk]
            assert walk not in seen
            seen.add(walk)
    rewards = [d for d in shop.made if d.event_id.startswith("referral:")]
    for reward in rewards:
        referee = reward.event_id.removeprefix("referral:")
        assert referred_by[referee] == reward.member_id != referee
        assert shop.replay.members[referee].referral.status == "rewarded"  # type: ignore[union-attr]
    assert len(rewards) == sum(1 for s in shop.replay.members.values() if s.referral is not None and s.referral.status == "rewarded")


def test_the_referrer_s_event_is_a_type_of_the_scheme_s_own_that_declares_only_what_perkflow_sends():
    def codes(text: str) -> list[str]:
        return [e.code for e in loads(text, "x.yaml").errors]

    assert codes(REFERRALS) == []
    assert codes(REFERRALS.replace("reward_event: friend_joined", "reward_event: signup")) == ["unknown_event_type"]
    assert codes(REFERRALS.replace("reward_event: friend_joined", "reward_event: friend_joind")) == ["unknown_event_type"]
    extra = REFERRALS.replace("      first_order_amount: {type: money}", "      first_order_amount: {type: money}\n      store_name: {type: str}")
    assert codes(extra) == ["referral_attribute"]
    assert codes(REFERRALS.replace("event.amount >= 9900", "event.amount >=")) != []
