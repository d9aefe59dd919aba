"""Merging two members: one transaction, value and history move, both ledgers still add up."""

from __future__ import annotations

from sqlalchemy import func, select

from perkflow.service.core import Service
from perkflow.service.events import Applied
from perkflow.service.problems import Problem
from perkflow.storage import tables as t

from ..databases import publish

SCHEME = """
perkflow: 1
id: merge-club
name: Merge Club
balances:
  points: {expiry: {kind: rolling, after: 12mo}}
  growth: {spendable: false}
tiers:
  metric: {balance: growth}
  levels:
    - {id: member, name: Member, threshold: 0}
    - {id: gold, name: Gold, threshold: 100}
counters:
  visits: {kind: count, on: [purchase]}
rules:
  - id: earn
    on: purchase
    then:
      - award: {balance: points, amount: "event.amount / 100"}
      - award: {balance: growth, amount: "event.amount / 100"}
  - id: welcome
    on: signup
    caps: [{limit: 1, per: lifetime}]
    then:
      - issue_coupon: {coupon: gift}
coupons:
  gift: {name: Gift, benefit: {kind: amount_off, amount: 100}, validity: {days: 30}}
"""


def _post(service: Service, event_id: str, kind: str, member: str, **attributes: object) -> Applied:
    raw = {
        "id": event_id,
        "type": kind,
        "member_id": member,
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "store": "S1",
        "attributes": attributes,
    }
    result = service.events.post(raw)
    assert isinstance(result, Applied), result
    return result


def _ledger_matches_balances(service: Service) -> None:
    with service.engine.connect() as conn:
        sums = dict(
            conn.execute(
                select(
                    t.ledger.c.member_id.concat(":").concat(t.ledger.c.balance), func.sum(t.ledger.c.amount)
                ).group_by(t.ledger.c.member_id, t.ledger.c.balance)
            ).all()
        )
        totals = {f"{r.member_id}:{r.balance}": r.total for r in conn.execute(select(t.member_balances))}
        lots = dict(
            conn.execute(
                select(
                    t.lots.c.member_id.concat(":").concat(t.lots.c.balance), func.sum(t.lots.c.amount)
                ).group_by(t.lots.c.member_id, t.lots.c.balance)
            ).all()
        )
    assert (
        {k: v for k, v in sums.items() if v}
        == {k: v for k, v in totals.items() if v}
        == {k: v for k, v in lots.items() if v}
    )


def test_a_merge_moves_lots_coupons_earnings_and_history_and_the_ledgers_still_add_up(service: Service):
    publish(service, SCHEME)
    for member, amount in (("keep", 3000), ("dup", 8000)):
        _post(service, f"signup-{member}", "signup", member)
        _post(service, f"pos-{member}", "purchase", member, amount=amount)
    assert service.members.merge("keep", "dup", actor="support:li") is not None
    keep, dup = service.members.get("keep"), service.members.get("dup")
    assert not isinstance(keep, Problem) and not isinstance(dup, Problem)
    assert keep["balances"] == {"points": 110, "growth": 110}
    assert keep["tier"] == "member"  # the higher of the two; the next event re-evaluates it as usual
    assert keep["counters"] == {"visits": 2}
    assert sorted(c["id"] for c in keep["coupons"]) == ["signup-dup#c1", "signup-keep#c1"]
    assert (dup["status"], dup["merged_into"], dup["balances"]) == (
        "merged",
        "keep",
        {"points": 0, "growth": 0},
    )
    _ledger_matches_balances(service)
    with service.engine.connect() as conn:
        events = (
            conn.execute(
                select(t.events.c.id)
                .join(t.members, t.members.c.id == t.events.c.member_id)
                .where(t.members.c.external_id == "keep")
            )
            .scalars()
            .all()
        )
        audit = conn.execute(
            select(t.audit_log.c.actor, t.audit_log.c.target, t.audit_log.c.detail).where(
                t.audit_log.c.action == "members_merged"
            )
        ).one()
    assert sorted(events) == ["pos-dup", "pos-keep", "signup-dup", "signup-keep"]
    assert (audit.actor, audit.target, audit.detail["from"], audit.detail["balances"]) == (
        "support:li",
        "keep",
        "dup",
        {"points": 80, "growth": 80},
    )
    assert _post(service, "pos-keep-2", "purchase", "keep", amount=100).body["tier"] == "gold"


def test_after_a_merge_the_old_id_reaches_the_survivor(service: Service):
    publish(service, SCHEME)
    for member in ("keep", "dup"):
        _post(service, f"signup-{member}", "signup", member)
    service.members.put("dup", {"phone": "13800000000"}, actor="test")
    _post(service, "pos-dup", "purchase", "dup", amount=5000)
    service.members.merge("keep", "dup", actor="support:li")
    refund = _post(service, "refund-dup", "refund", "dup", amount=5000, original_event_id="pos-dup")
    assert refund.body["member_id"] == "keep" and refund.body["balances"] == {"points": 0, "growth": 0}
    again = _post(service, "signup-dup-2", "signup", "dup")
    assert [t["reason"] for t in again.body["trace"] if t["rule"] == "welcome"] == [
        "cap_reached"
    ]  # once per member, merged or not
    assert service.members.find(phone="13800000000") == ["keep"]
    _ledger_matches_balances(service)


def test_merging_again_changes_nothing_and_other_merges_are_refused(service: Service):
    publish(service, SCHEME)
    for member in ("a", "b", "c"):
        service.members.put(member, {}, actor="test")
    assert not isinstance(service.members.merge("a", "b", actor="x"), Problem)
    with service.engine.connect() as conn:
        audits = conn.execute(select(func.count()).select_from(t.audit_log)).scalar()
    assert not isinstance(service.members.merge("a", "b", actor="x"), Problem)
    with service.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.audit_log)).scalar() == audits
    refused = service.members.merge("c", "b", actor="x")
    assert isinstance(refused, Problem) and (refused.status, refused.code) == (409, "already_merged")
    refused = service.members.merge("b", "c", actor="x")
    assert isinstance(refused, Problem) and (refused.status, refused.code) == (409, "member_not_active")
