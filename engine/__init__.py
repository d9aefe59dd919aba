"""The runtime: a pure function from scheme, member state and event to a decision."""

from .evaluate import Decision, Effect, Rejection, RuleTrace, due_events, evaluate, next_due
from .events import Event, EventError, parse_event
from .program import Program, compile
from .simulate import Replay, replay
from .state import Coupon, Lot, MemberState, new_member

__all__ = [
    "Coupon",
    "Decision",
    "Effect",
    "Event",
    "EventError",
    "Lot",
    "MemberState",
    "Program",
    "Rejection",
    "Replay",
    "RuleTrace",
    "compile",
    "due_events",
    "next_due",
    "evaluate",
    "new_member",
    "parse_event",
    "replay",
]
