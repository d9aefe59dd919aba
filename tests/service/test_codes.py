"""Coupon codes: generated without look-alikes and collisions, imported from CSV with refusals
reported, claimed by members within the cap and the code's uses, looked up at a limited rate."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import func, select

from perkflow.service.codes import ALPHABET, Caller, RateLimiter, random_codes
from perkflow.service.core import Service
from perkflow.service.events import Applied
from perkflow.service.problems import Problem
from perkflow.storage import tables as t

from ..databases import Clock, publish

SCHEME = """
perkflow: 1
id: codes
name: Codes
timezone: Asia/Shanghai
auto_enroll: true
balances:
  points: {}
coupons:
  spring:
    name: Spring ¥10
    benefit: {kind: amount_off, amount: 1000}
    validity: {days: 30}
    per_member: 1
    budget: 3
    codes: {prefix: SPR, length: 8}
  shared:
    name: Shared ¥5
    benefit: {kind: amount_off, amount: 500}
    validity: {days: 30}
    codes: {length: 6, uses: 100}
  plain:
    name: Plain
    benefit: {kind: amount_off, amount: 100}
    validity: {days: 30}
"""
POS = Caller("key:pos", "10.0.0.1")


def test_random_codes_use_the_alphabet_without_look_alikes_and_never_repeat():
    codes = random_codes(20_000, 6, "X", avoid={"XAAAAAA"})
    assert len(set(codes)) == 20_000 and "XAAAAAA" not in codes
    assert all(len(c) == 7 and c[0] == "X" and set(c[1:]) <= set(ALPHABET) for c in codes)
    assert not set("01OIL") & set(ALPHABET) and len(ALPHABET) == 31
    counts = Counter("".join(c[1:] for c in codes))
    assert set(counts) == set(ALPHABET)  # every character is drawn
    assert max(counts.values()) < 1.2 * min(counts.values())  # 120,000 draws: uniform within a few per cent


def test_a_batch_is_stored_with_the_policys_format_and_audited(service: Service):
    publish(service, SCHEME)
    made = service.codes.generate("spring", 500, actor="key:ops")
    assert isinstance(made, dict) and made["count"] == 500 and len(set(made["codes"])) == 500
    assert all(c.startswith("SPR") and len(c) == 11 for c in made["codes"])
    with service.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.coupon_codes).where(t.coupon_codes.c.batch == made["batch"])).scalar() == 500
        actions = conn.execute(select(t.audit_log.c.action)).scalars().all()
    assert "coupon_codes_generated" in actions
    big = service.codes.generate("shared", 1_001, actor="key:ops")
    assert isinstance(big, dict) and "codes" not in big
    for policy, count, code in (("plain", 1, "policy_without_codes"), ("ghost", 1, "unknown_coupon_policy"), ("spring", 0, "wrong_count"), ("spring", 1_000_001, "wrong_count")):
        refused = service.codes.generate(policy, count, actor="key:ops")
        assert isinstance(refused, Problem) and refused.code == code


def test_imported_codes_report_each_refused_line_and_import_the_rest(service: Service):
    publish(service, SCHEME)
    text = "code,uses\nVIP-0001\nvip-0002,5\nVIP-0001\nBAD CODE\nVIP-0003,0\n"
    first = service.codes.import_csv("shared", text, actor="key:ops")
    assert isinstance(first, dict) and first["imported"] == 2
    assert [(r["line"], r["reason"]) for r in first["refused"]] == [(4, "duplicate_code"), (5, "bad_code"), (6, "bad_uses")]
    assert service.codes.lookup("vip-0002", POS) == {"code": "VIP-0002", "policy": "shared", "uses_left": 5, "max_uses": 5}
    again = service.codes.import_csv("shared", text, actor="key:ops")
    assert isinstance(again, dict) and again["imported"] == 0 and again["batch"] is None
    assert {r["reason"] for r in again["refused"] if r["line"] in (2, 3)} == {"code_exists"}


def test_a_single_use_code_is_claimed_once_and_a_member_within_the_policys_cap(service: Service, clock: Clock):
    publish(service, SCHEME)
    code_a, code_b = service.codes.generate("spring", 2, actor="key:ops")["codes"]  # type: ignore[index]
    claimed = service.codes.claim(code_a.lower(), "m1", POS)
    assert isinstance(claimed, Applied) and claimed.status == 201
    assert [(e["kind"], e["policy"]) for e in claimed.body["effects"]] == [("coupon_issued", "spring")]
    again = service.codes.claim(code_a, "m1", POS)  # a retry: the first answer
    assert isinstance(again, Applied) and again.status == 200 and again.body == claimed.body
    taken = service.codes.claim(code_a, "m2", POS)
    assert isinstance(taken, Problem) and (taken.status, taken.code) == (409, "code_used_up")
    capped = service.codes.claim(code_b, "m1", POS)  # per_member: 1
    assert isinstance(capped, Problem) and capped.code == "member_cap_reached"
    assert service.codes.lookup(code_b, POS)["uses_left"] == 1  # type: ignore[index]
    assert service.members.get("m1")["coupons"][0]["policy"] == "spring"  # type: ignore[index]


def test_code_claim_events_cannot_be_posted_around_the_code(service: Service):
    publish(service, SCHEME)
    raw = {"id": "x1", "type": "code_claim", "member_id": "m1", "occurred_at": "2026-11-20T10:00:00+08:00",
           "store": "", "channel": "api", "attributes": {"code": "ANY", "policy": "spring"}}
    refused = service.events.post(raw)
    assert isinstance(refused, Problem) and refused.code == "system_event_type"


def test_look_ups_are_limited_per_key_and_per_client(service: Service, clock: Clock):
    publish(service, SCHEME)
    service.codes.limiter = RateLimiter(rate=1.0, burst=3, clock=clock)
    for _ in range(3):
        assert isinstance(service.codes.lookup("NOPE", POS), Problem)  # 404s count too: enumeration
    limited = service.codes.lookup("NOPE", POS)
    assert isinstance(limited, Problem) and (limited.status, limited.code, limited.extra["retry_after"]) == (429, "rate_limited", 1)
    other_key_same_client = service.codes.lookup("NOPE", Caller("key:other", "10.0.0.1"))
    assert isinstance(other_key_same_client, Problem) and other_key_same_client.status == 429
    same_key_other_client = service.codes.lookup("NOPE", Caller("key:pos", "10.0.0.2"))
    assert isinstance(same_key_other_client, Problem) and same_key_other_client.status == 429
    other = service.codes.lookup("NOPE", Caller("key:other", "10.0.0.2"))
    assert isinstance(other, Problem) and other.status == 404
    clock.set("2026-11-20T12:00:02+00:00")  # two seconds: two tokens back
    assert service.codes.lookup("NOPE", POS).status == 404  # type: ignore[union-attr]


def test_concurrent_claims_of_a_code_never_exceed_its_uses(service: Service):
    publish(service, SCHEME.replace("codes: {length: 6, uses: 100}", "codes: {length: 6, uses: 3}"))
    [code] = service.codes.generate("shared", 1, actor="key:ops")["codes"]  # type: ignore[index]
    service.codes.limiter = RateLimiter(rate=100.0, burst=100, clock=service.clock)
    for n in range(8):
        service.members.put(f"m{n}", {}, actor="test")
    results: list[object] = []

    def claim(n: int) -> None:
        results.append(service.codes.claim(code, f"m{n}", POS))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [r for r in results if isinstance(r, Applied)]
    assert len(won) == 3
    assert all(isinstance(r, Problem) and r.code in ("code_used_up", "busy") for r in results if not isinstance(r, Applied))
    assert service.codes.lookup(code, POS)["uses_left"] == 0  # type: ignore[index]


HANDED_OUT = SCHEME + """
rules:
  - id: welcome
    on: signup
    then: [{issue_coupon: {coupon: shared, code: true}}]
"""


def test_a_rules_coupon_is_stored_with_the_code_it_was_handed_out_with_and_a_claimed_one_with_its_code(service: Service):
    publish(service, HANDED_OUT)
    signup = service.events.post({"id": "s1", "type": "signup", "member_id": "m1", "occurred_at": "2026-11-20T10:00:00+08:00"})
    assert isinstance(signup, Applied)
    [issued] = [e for e in signup.body["effects"] if e["kind"] == "coupon_issued"]
    assert len(issued["code"]) == 6 and set(issued["code"]) <= set(ALPHABET)
    [code] = service.codes.generate("spring", 1, actor="key:ops")["codes"]  # type: ignore[index]
    assert isinstance(service.codes.claim(code, "m1", POS), Applied)
    view = service.members.get("m1")
    assert isinstance(view, dict)
    assert [(c["policy"], c["code"]) for c in view["coupons"]] == [("shared", issued["code"]), ("spring", code)]
    # a handed-out code names the member's own coupon: it is not a code anyone can claim
    assert isinstance(service.codes.lookup(issued["code"], POS), Problem)
