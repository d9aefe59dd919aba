"""A rule's issue_coupon can hand each coupon out with a code in its policy's format, the same on
every replay; a claimed coupon carries the code it was claimed with."""

from __future__ import annotations

import textwrap

from perkflow.engine.coupons import CODE_ALPHABET
from perkflow.engine.simulate import member_view
from perkflow.rules import loads

from .helpers import Member, program

SCHEME = """
id: handed
name: Handed out
balances:
  points: {}
coupons:
  movie:
    name: Cinema ticket
    benefit: {kind: free_item, sku: TICKET, value: 4000}
    validity: {days: 30}
    codes: {prefix: FILM, length: 8}
rules:
  - id: movie-night
    on: purchase
    when: event.amount >= 20000
    then: [{issue_coupon: {coupon: movie, count: 2, code: true}}]
"""


def test_a_rule_hands_out_each_coupon_with_a_code_in_the_policys_format_the_same_on_every_replay():
    first, again = Member(program(SCHEME)), Member(program(SCHEME))
    for m in (first, again):
        m.event("purchase", "2026-05-01T19:00:00+08:00", amount=20_000, event_id="pos-1")
    issued = [e for e in first.decisions[-1].effects if e.kind == "coupon_issued"]
    codes = [e.code for e in issued]
    assert all(c is not None and c.startswith("FILM") and len(c) == 12 and set(c[4:]) <= set(CODE_ALPHABET) for c in codes)
    assert len(set(codes)) == 2
    assert [c.code for c in again.state.coupons] == codes  # a replay hands out the same codes
    view = member_view(first.program, first.state, first.state.last_event_at)
    assert [c["code"] for c in view["coupons"]] == codes
    assert [e["code"] for e in first.decisions[-1].to_dict()["effects"] if e["kind"] == "coupon_issued"] == codes


def test_without_code_a_coupon_has_none():
    m = Member(program(SCHEME.replace(", code: true", "")))
    m.event("purchase", "2026-05-01T19:00:00+08:00", amount=20_000)
    assert [c.code for c in m.state.coupons] == [None, None]


def test_a_code_from_a_policy_that_declares_no_codes_is_a_load_error():
    text = SCHEME.replace("    codes: {prefix: FILM, length: 8}\n", "")
    loaded = loads(textwrap.dedent(text), "test.yaml")
    assert [(e.code, e.path) for e in loaded.errors] == [("policy_without_codes", "rules[0].then[0].issue_coupon.code")]


def test_a_claimed_coupon_carries_the_code_it_was_claimed_with():
    m = Member(program(SCHEME))
    m.event("code_claim", "2026-05-01T19:00:00+08:00", code="FILMABCD2345", policy="movie")
    assert [c.code for c in m.state.coupons] == ["FILMABCD2345"]
