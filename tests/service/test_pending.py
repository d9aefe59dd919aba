"""Pending points through the service: the scheduler activates them under stable ids and the lots
table follows; a refund inside the window cancels them without a debt; order_completed activates
its own order's lots."""

from __future__ import annotations

from sqlalchemy import select

from perkflow.service.core import Service
from perkflow.storage import tables as t

from ..databases import Clock, publish

SCHEME = """
perkflow: 1
id: pending
name: Pending
timezone: Asia/Shanghai
auto_enroll: true
balances:
  points: {allow_negative: true, pending: {duration: 14d, until_event: order_completed}}
rules:
  - id: earn
    on: purchase
    then: [{award: {balance: points, amount: "event.amount / 100"}}]
"""


def _post(service: Service, event_id: str, kind: str, at: str, **attributes: object) -> dict:
    raw = {"id": event_id, "type": kind, "member_id": "m1", "occurred_at": at, "store": "S1", "channel": "pos", "attributes": attributes}
    result = service.events.post(raw)
    assert not hasattr(result, "code"), result
    return result.body  # type: ignore[union-attr]


def _lots(service: Service) -> dict[str, tuple[int, object]]:
    with service.engine.connect() as conn:
        rows = conn.execute(select(t.lots.c.id, t.lots.c.amount, t.lots.c.available_at)).all()
    return {r.id: (r.amount, r.available_at) for r in rows}


def test_the_scheduler_activates_pending_lots_once_under_a_stable_id(service: Service, clock: Clock):
    publish(service, SCHEME)
    clock.set("2026-03-03T02:00:00+00:00")
    _post(service, "p1", "purchase", "2026-03-01T10:00:00+08:00", amount=20_000)
    body = _post(service, "p2", "purchase", "2026-03-01T10:30:00+08:00", amount=10_000)
    assert body["balances"] == {"points": 0}  # counted, not spendable
    _post(service, "done-p2", "order_completed", "2026-03-03T10:00:00+08:00", original_event_id="p2")
    assert _lots(service)["p2#1"] == (100, None)
    clock.set("2026-03-16T00:00:00+00:00")
    assert service.scheduler.tick().events == 1
    assert service.scheduler.tick().events == 0
    assert _lots(service)["p1#1"] == (200, None)
    with service.engine.connect() as conn:
        stored = conn.execute(select(t.events.c.id).where(t.events.c.type == "activation")).scalars().all()
        kinds = conn.execute(select(t.ledger.c.kind, t.ledger.c.amount).where(t.ledger.c.event_id == stored[0])).all()
    assert stored == ["activation:m1:20260315T020000Z"]
    assert [tuple(k) for k in kinds] == [("activate", 0)]
    member = service.members.get("m1")
    assert member["balances"] == {"points": 300} and "available_at" not in member["lots"]["points"][0]


def test_a_refund_inside_the_window_cancels_the_pending_lots_without_a_debt(service: Service, clock: Clock):
    publish(service, SCHEME)
    clock.set("2026-03-05T02:00:00+00:00")
    _post(service, "p1", "purchase", "2026-03-01T10:00:00+08:00", amount=20_000)
    body = _post(service, "r1", "refund", "2026-03-05T10:00:00+08:00", original_event_id="p1", amount=20_000)
    assert [(e["kind"], e["amount"], e.get("debt", 0)) for e in body["effects"]] == [("clawback", -200, 0)]
    assert _lots(service)["p1#1"][0] == 0
    with service.engine.connect() as conn:
        assert conn.execute(select(t.member_balances.c.total, t.member_balances.c.debt)).one() == (0, 0)
    clock.set("2026-04-01T00:00:00+00:00")
    assert service.scheduler.tick().events == 0
