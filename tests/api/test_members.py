"""Members through the API: create or update, read without personal data, look up, page the
ledger, adjust with a reason, merge; and what a key bound to a store may see."""

from __future__ import annotations

from sqlalchemy import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from perkflow.api.schemas import MemberOut, ProgressOut
from perkflow.service.core import Service
from perkflow.storage import tables as t

from ..databases import Clock, publish
from .conftest import SCHEME, Keys
from .helpers import bearer, dump, event, problem


def test_a_member_is_created_then_updated_and_read_without_personal_data(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        created = client.put(
            "/api/v1/members/m1",
            json={"phone": "13800000000", "email": "Wang@Example.com", "name": "王芳", "home_store": "S1"},
            headers=bearer(keys.all),
        )
        assert created.status_code == 201
        assert (
            client.put("/api/v1/members/m1", json={"tags": ["vip"]}, headers=bearer(keys.all)).status_code
            == 200
        )
        member = client.get("/api/v1/members/m1", headers=bearer(keys.reader)).json()
        assert (member["id"], member["status"], member["home_store"], member["tags"], member["balances"]) == (
            "m1",
            "active",
            "S1",
            ["vip"],
            {"points": 0},
        )
        text = str(member)
        assert "13800000000" not in text and "王芳" not in text and "example.com" not in text.lower()
        problem(client.get("/api/v1/members/ghost", headers=bearer(keys.reader)), 404, "unknown_member")


def test_members_are_found_by_phone_or_email(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        client.put(
            "/api/v1/members/m1",
            json={"phone": "13800000000", "email": "wang@example.com"},
            headers=bearer(keys.all),
        )
        assert client.get(
            "/api/v1/members", params={"phone": "+86 138 0000 0000"}, headers=bearer(keys.reader)
        ).json() == {"items": [{"id": "m1"}]}
        assert client.get(
            "/api/v1/members", params={"email": "WANG@example.com"}, headers=bearer(keys.reader)
        ).json() == {"items": [{"id": "m1"}]}
        assert client.get(
            "/api/v1/members", params={"phone": "13900000000"}, headers=bearer(keys.reader)
        ).json() == {"items": []}
        problem(client.get("/api/v1/members", headers=bearer(keys.reader)), 422, "missing_query")


def test_the_ledger_is_paged_newest_first_with_a_cursor(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={}, headers=bearer(keys.all))
        for i in range(5):
            client.post(
                "/api/v1/events",
                json=event(f"pos-{i}", attributes={"amount": 100 * (i + 1)}),
                headers=bearer(keys.all),
            )
        first = client.get("/api/v1/members/m1/ledger?limit=2", headers=bearer(keys.reader)).json()
        assert [row["event_id"] for row in first["items"]] == ["pos-4", "pos-3"]
        second = client.get(
            f"/api/v1/members/m1/ledger?limit=2&after={first['next']}", headers=bearer(keys.reader)
        ).json()
        third = client.get(
            f"/api/v1/members/m1/ledger?limit=2&after={second['next']}", headers=bearer(keys.reader)
        ).json()
        assert [row["event_id"] for row in second["items"] + third["items"]] == ["pos-2", "pos-1", "pos-0"]
        assert third["next"] is None
        problem(
            client.get("/api/v1/members/m1/ledger?after=abc", headers=bearer(keys.reader)), 422, "wrong_type"
        )


def test_an_adjustment_needs_a_reason_is_audited_and_its_key_is_its_id(
    app: Starlette, keys: Keys, service: Service
):
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={}, headers=bearer(keys.all))
        headers = bearer(keys.all) | {"Idempotency-Key": "ticket-42"}
        body = {"balance": "points", "amount": 250, "reason": "ticket 42: lost receipt"}
        first = client.post("/api/v1/members/m1/adjustments", json=body, headers=headers)
        assert first.status_code == 201
        assert first.json()["event_id"] == "adjustment:ticket-42" and first.json()["balances"] == {
            "points": 250
        }
        again = client.post("/api/v1/members/m1/adjustments", json=body, headers=headers)
        assert (again.status_code, again.json(), again.headers["idempotent-replayed"]) == (
            201,
            first.json(),
            "true",
        )
        assert client.get("/api/v1/members/m1", headers=bearer(keys.all)).json()["balances"] == {
            "points": 250
        }
    with service.engine.connect() as conn:
        audit = conn.execute(
            select(t.audit_log.c.actor, t.audit_log.c.action, t.audit_log.c.detail).where(
                t.audit_log.c.action == "balance_adjusted"
            )
        ).all()
    assert [(a.actor.startswith("key:pk_"), a.detail["reason"]) for a in audit] == [
        (True, "ticket 42: lost receipt")
    ]


def test_a_merge_moves_value_and_history_to_the_survivor_once(app: Starlette, keys: Keys, service: Service):
    with TestClient(app) as client:
        for member in ("keep", "dup"):
            client.post(
                "/api/v1/events",
                json=event(f"signup-{member}", type="signup", member_id=member, attributes={}),
                headers=bearer(keys.all),
            )
            client.post(
                "/api/v1/events", json=event(f"pos-{member}", member_id=member), headers=bearer(keys.all)
            )
        merged = client.post("/api/v1/members/keep/merge", json={"from": "dup"}, headers=bearer(keys.all))
        assert merged.status_code == 200
        assert merged.json()["balances"] == {"points": 70}
        assert len(merged.json()["coupons"]) == 6
        absorbed = client.get("/api/v1/members/dup", headers=bearer(keys.all)).json()
        assert (absorbed["status"], absorbed["merged_into"], absorbed["balances"]) == (
            "merged",
            "keep",
            {"points": 0},
        )
        before = dump(service.engine)
        again = client.post("/api/v1/members/keep/merge", json={"from": "dup"}, headers=bearer(keys.all))
        assert again.status_code == 200 and again.json() == merged.json()
        assert dump(service.engine) == before
        # The POS still knows the old id: its refund takes back from the survivor what it earned.
        refund = event(
            "refund-dup",
            type="refund",
            member_id="dup",
            attributes={"amount": 3500, "original_event_id": "pos-dup"},
        )
        answer = client.post("/api/v1/events", json=refund, headers=bearer(keys.all))
        assert (
            answer.status_code == 201
            and answer.json()["member_id"] == "keep"
            and answer.json()["balances"] == {"points": 35}
        )
        ledger = client.get("/api/v1/members/keep/ledger", headers=bearer(keys.all)).json()["items"]
        assert [(r["kind"], r["amount"]) for r in ledger][:2] == [("clawback", -35), ("merge_in", 35)]
        problem(
            client.post("/api/v1/members/dup/merge", json={"from": "keep"}, headers=bearer(keys.all)),
            409,
            "member_not_active",
        )


def test_a_store_bound_key_does_not_see_another_stores_members(app: Starlette, keys: Keys, service: Service):
    with TestClient(app) as client:
        client.put(
            "/api/v1/members/theirs",
            json={"home_store": "S2", "phone": "13800000000"},
            headers=bearer(keys.all),
        )
        client.put(
            "/api/v1/members/ours",
            json={"home_store": "S1", "phone": "13800000000"},
            headers=bearer(keys.all),
        )
        store = bearer(keys.store)
        assert client.get("/api/v1/members/ours", headers=store).status_code == 200
        problem(client.get("/api/v1/members/theirs", headers=store), 404, "unknown_member")
        problem(client.get("/api/v1/members/theirs/ledger", headers=store), 404, "unknown_member")
        assert client.get("/api/v1/members", params={"phone": "13800000000"}, headers=store).json() == {
            "items": [{"id": "ours"}]
        }
        before = dump(service.engine)
        problem(
            client.put("/api/v1/members/theirs", json={"tags": ["x"]}, headers=store), 404, "unknown_member"
        )
        problem(
            client.post(
                "/api/v1/members/theirs/adjustments",
                json={"balance": "points", "amount": 1, "reason": "x"},
                headers=store,
            ),
            404,
            "unknown_member",
        )
        problem(
            client.post("/api/v1/members/ours/merge", json={"from": "theirs"}, headers=store),
            404,
            "unknown_member",
        )
        problem(
            client.put("/api/v1/members/new", json={"home_store": "S2"}, headers=store),
            403,
            "store_not_allowed",
        )
        assert dump(service.engine) == before
        assert client.put("/api/v1/members/new", json={"home_store": "S1"}, headers=store).status_code == 201


def test_a_members_locale_is_set_by_put_and_only_to_a_known_language(app: Starlette, keys: Keys, service: Service):
    with TestClient(app) as client:
        assert client.put("/api/v1/members/m1", json={"locale": "zh-CN"}, headers=bearer(keys.all)).status_code == 201
        problem(client.put("/api/v1/members/m1", json={"locale": "fr"}, headers=bearer(keys.all)), 422, "invalid_locale")
        assert client.put("/api/v1/members/m1", json={"locale": "en"}, headers=bearer(keys.all)).status_code == 200
    with service.engine.connect() as conn:
        assert conn.execute(select(t.members.c.locale).where(t.members.c.external_id == "m1")).scalar() == "en"


def test_progress_says_what_the_member_still_needs_and_a_store_key_sees_only_its_members(app: Starlette, keys: Keys, service: Service):
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={"home_store": "S1"}, headers=bearer(keys.all))
        client.put("/api/v1/members/m2", json={"home_store": "S2"}, headers=bearer(keys.all))
        signup = event("pos-0", type="signup", attributes={}, occurred_at=service.clock().isoformat())
        assert client.post("/api/v1/events", json=signup, headers=bearer(keys.all)).status_code == 201
        purchase = event("pos-1", occurred_at=service.clock().isoformat())  # ¥35: 35 points
        assert client.post("/api/v1/events", json=purchase, headers=bearer(keys.all)).status_code == 201
        answer = client.get("/api/v1/members/m1/progress", params={"order_amount": 1500}, headers=bearer(keys.store))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["id"], body["order_amount"]) == ("m1", 1500)
        [coffee] = [i for i in body["items"] if i["kind"] == "reward"]
        assert (coffee["id"], coffee["have"], coffee["need"], coffee["lacking"], coffee["met"]) == ("coffee", 35, 100, 65, False)
        assert coffee["text"] == {"en": "A coffee is available when you have 100 points: 65 more", "zh-CN": "A coffee需要 100 points，还差 65"}
        five_off = next(i for i in body["items"] if i["kind"] == "coupon" and i["name"]["en"] == "5 off")
        assert (five_off["lacking"], five_off["text"]["en"]) == (500, "spend ¥5 more to use 5 off")
        problem(client.get("/api/v1/members/m2/progress", headers=bearer(keys.store)), 404, "unknown_member")
        problem(client.get("/api/v1/members/m1/progress", params={"order_amount": "x"}, headers=bearer(keys.store)), 422, "wrong_type")


def test_a_member_shows_each_achievement_with_its_progress_and_the_date_of_its_badge(app: Starlette, keys: Keys, service: Service, clock: Clock):
    publish(
        service,
        SCHEME
        + """
achievements:
  regular:
    name: {en: Regular, zh-CN: 常客}
    on: [purchase]
    measure: count
    period: month
    target: 2
    repeat: per_period
    badge: regular
    then: [{award: {balance: points, amount: "50"}}]
""",
    )  # in force from now (the clock): the events below come after it
    clock.set("2026-11-22T12:00:00+00:00")
    with TestClient(app) as client:
        client.put("/api/v1/members/m1", json={}, headers=bearer(keys.all))
        client.post("/api/v1/events", json=event("pos-1", occurred_at="2026-11-21T10:00:00+08:00"), headers=bearer(keys.all))
        done = client.post("/api/v1/events", json=event("pos-2", occurred_at="2026-11-22T10:00:00+08:00"), headers=bearer(keys.all)).json()
        assert [e["kind"] for e in done["effects"]] == ["earn", "achieved", "tagged", "earn"]
        member = client.get("/api/v1/members/m1", headers=bearer(keys.reader)).json()
        MemberOut.model_validate(member)
        assert member["achievements"] == {
            "regular": {"progress": 2, "target": 2, "completions": 1, "first_completed_at": "2026-11-22T10:00:00+08:00", "badge": "regular"}
        }
        assert "regular" in member["tags"] and member["balances"]["points"] == 35 + 35 + 50
        items = client.get("/api/v1/members/m1/progress", headers=bearer(keys.reader)).json()
        ProgressOut.model_validate(items)
        [need] = [i for i in items["items"] if i["kind"] == "achievement"]
        assert (need["met"], need["reason"], need["text"]["en"]) == (True, "completed", "Regular is done this month")


def test_a_member_shows_their_referral_code_and_who_invited_them_and_the_referrer_s_event_can_be_read(
    app: Starlette, keys: Keys, service: Service, clock: Clock
):
    referrals = """event_types:
  friend_joined:
    attributes:
      referee: {type: str}
      first_order_amount: {type: money}
referrals:
  qualify: event.amount >= 3000
  reward_event: friend_joined
rules:
  - id: friend-bonus
    on: friend_joined
    then: [{award: {balance: points, amount: "500"}}]
"""
    publish(service, SCHEME.replace("rules:\n", referrals, 1))
    clock.set("2026-11-22T12:00:00+00:00")
    with TestClient(app) as client:
        for n, (member, attributes) in enumerate([("m1", {}), ("m2", {"referral_code": "m1"})]):
            signup = event(f"s-{n}", type="signup", member_id=member, attributes=attributes, occurred_at="2026-11-21T09:00:00+08:00")
            assert client.post("/api/v1/events", json=signup, headers=bearer(keys.all)).status_code == 201
        done = client.post("/api/v1/events", json=event("pos-1", member_id="m2", occurred_at="2026-11-21T10:00:00+08:00"), headers=bearer(keys.all))
        assert done.status_code == 201, done.text
        assert {"kind": "referral_qualified", "rule": "referral:purchase", "referrer": "m1"} in done.json()["effects"]
        invited = client.get("/api/v1/members/m2", headers=bearer(keys.reader)).json()
        MemberOut.model_validate(invited)
        assert invited["referral"] == {"code": "m2", "referred_by": "m1", "status": "rewarded"}
        referrer = client.get("/api/v1/members/m1", headers=bearer(keys.reader)).json()
        assert referrer["referral"] == {"code": "m1"} and referrer["balances"]["points"] == 500
        made = client.get("/api/v1/events/referral:m2", headers=bearer(keys.all)).json()
        assert (made["source"], made["event"]["attributes"]) == ("referral", {"referee": "m2", "first_order_amount": 3500})
