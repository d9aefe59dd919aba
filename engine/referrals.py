"""The referrer's side of a referral: the event a qualifying first purchase gives the referrer.

The engine sees one member per event, so a referee's qualifying first purchase (effect
`referral_qualified`) cannot reward the referrer itself. The shell (the service, in the same
transaction; `Replay`, in memory) evaluates the event made here for the referrer right after it.
Its id names the referee, so a referee rewards a referrer once however often anything is retried.
"""

from __future__ import annotations

from .evaluate import Decision
from .events import Event
from .program import Program


def referral_code(member_id: str) -> str:
    """A member's referral code: the member id itself, so that a replay needs no store of codes."""
    return member_id


def referrer_event(program: Program, decision: Decision, purchase: Event) -> Event | None:
    """The referrer's event for a referee's purchase that qualified, or None."""
    referrals = program.scheme.referrals
    if referrals is None or decision.rejection is not None:
        return None
    referrer = next((e.referrer for e in decision.effects if e.kind == "referral_qualified"), None)
    if referrer is None:
        return None
    return Event(
        id=f"referral:{purchase.member_id}",
        type=referrals.reward_event,
        member_id=referrer,
        occurred_at=purchase.occurred_at,
        store=purchase.store,
        channel="system",
        attributes={"referee": purchase.member_id, "first_order_amount": purchase.attributes["amount"]},
    )


def code_owner(code: str) -> str:
    """The member id a referral code names (the inverse of `referral_code`)."""
    return code
