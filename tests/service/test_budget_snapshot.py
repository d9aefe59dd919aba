"""The budgets' use rides along with an event's first statement as "length:used:limit:key" items.
A budget key holds a store id, and a store id may hold any character: the snapshot reads back
exactly what the budgets table holds, whatever the keys, on SQLite and PostgreSQL, and a store
whose id looks like the format itself gets its coupons up to its budget and no further."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert

from perkflow.service.core import Service
from perkflow.service.events import BUDGETS_ALONG, Applied, budget_snapshot
from perkflow.storage import tables as t

from ..databases import publish

# text either database stores (PostgreSQL refuses NUL; lone surrogates are not UTF-8)
KEYS = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), min_size=1, max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(KEYS, st.tuples(st.integers(0, 2**62), st.integers(0, 2**62)), max_size=6))
def test_the_snapshot_reads_back_every_budget_whatever_its_key(service: Service, budgets: dict[str, tuple[int, int]]):
    with service.engine.begin() as conn:
        conn.execute(delete(t.budgets))
        if budgets:
            conn.execute(insert(t.budgets), [{"key": k, "used": used, "limit": limit} for k, (used, limit) in budgets.items()])
        items = conn.execute(BUDGETS_ALONG).scalar()
    assert budget_snapshot(items) == ({k: u for k, (u, _) in budgets.items()}, {k: limit for k, (_, limit) in budgets.items()})


STRANGE_STORE = "7:0:3:coupon:gift@\n门店|一"
SCHEME = """
perkflow: 1
id: strange-stores
name: Stores with strange ids
auto_enroll: true
timezone: Asia/Shanghai
balances:
  points: {}
event_types:
  coupon_claim: {}
rules:
  - id: claim
    on: coupon_claim
    then: [{issue_coupon: {coupon: gift}}]
coupons:
  gift:
    name: Store gift
    benefit: {kind: amount_off, amount: 500}
    validity: {days: 30}
    budget: 2
    budget_by_store: true
"""


def test_a_store_whose_id_looks_like_the_snapshot_gets_its_budget_and_no_more(service: Service):
    publish(service, SCHEME)

    def claim(n: int, store: str) -> dict[str, Any]:
        raw = {
            "id": f"claim-{n}", "type": "coupon_claim", "member_id": f"m{n}", "occurred_at": f"2026-11-20T10:{n:02d}:00+08:00",
            "store": store, "channel": "app", "attributes": {},
        }
        posted = service.events.post(raw)
        assert isinstance(posted, Applied), posted
        return posted.body

    outcomes = [[line["outcome"] for line in claim(n, store)["trace"] if line.get("rule") == "claim"] for n, store in enumerate([STRANGE_STORE] * 3 + ["S1"] * 3)]
    assert outcomes == [["fired"], ["fired"], ["skipped"]] * 2
