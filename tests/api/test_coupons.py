"""Coupons and rewards through the API: validation before checkout (the engine's own rule),
redemption outside a purchase, voiding with a reason, redeeming a reward."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from perkflow.service.core import Service
from perkflow.storage import tables as t

from .conftest import Keys
from .helpers import bearer, dump, event, problem

FIVE, TEN, SOLO = (
    "signup-1#c1",
    "signup-1#c2",
    "signup-1#c3",
)  # five-off (min 2000), ten-percent, solo (not stackable)


@pytest.fixture
def client(app: Starlette, keys: Keys) -> Iterator[TestClient]:
    with TestClient(app) as client:
        signup = client.post(
            "/api/v1/events", json=event("signup-1", type="signup", attributes={}), headers=bearer(keys.all)
        )
        assert [e["coupon"] for e in signup.json()["effects"]] == [FIVE, TEN, SOLO]
        yield client


def test_validation_says_which_coupons_apply_in_what_order_and_why_not(
    client: TestClient, keys: Keys, service: Service
):
    before = dump(service.engine)
    body = {"member_id": "m1", "order_amount": 3000, "coupons": [TEN, FIVE, SOLO, "nope", FIVE]}
    response = client.post("/api/v1/coupons/validate", json=body, headers=bearer(keys.all))
    assert response.status_code == 200
    answer = response.json()
    assert [(c["coupon"], c["order"], c["discount"]) for c in answer["applies"]] == [
        (FIVE, 1, 500),
        (TEN, 2, 250),
    ]
    assert [(c["coupon"], c["code"]) for c in answer["refused"]] == [
        (SOLO, "coupon_not_stackable"),
        ("nope", "unknown_coupon"),
        (FIVE, "coupon_twice"),
    ]
    assert (answer["discount"], answer["payable"]) == (750, 2250)
    small = client.post(
        "/api/v1/coupons/validate",
        json={"member_id": "m1", "order_amount": 1000, "coupons": [FIVE]},
        headers=bearer(keys.all),
    ).json()
    assert [c["code"] for c in small["refused"]] == ["coupon_min_spend"]
    assert dump(service.engine) == before


def test_validation_answers_the_same_whatever_order_the_coupons_are_listed_in(client: TestClient, keys: Keys):
    answers = []
    for listed in ([SOLO, TEN, FIVE], [FIVE, SOLO, TEN], [TEN, FIVE, SOLO]):
        body = {"member_id": "m1", "order_amount": 3000, "coupons": listed}
        answer = client.post("/api/v1/coupons/validate", json=body, headers=bearer(keys.all)).json()
        answers.append((answer["applies"], sorted(answer["refused"], key=lambda c: c["coupon"]), answer["payable"]))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][1] == [
        {
            "coupon": SOLO,
            "policy": "solo",
            "applies": False,
            "code": "coupon_not_stackable",
            "message": f"coupon '{SOLO}' cannot be used with another coupon, and '{FIVE}' applies",
        }
    ]


def test_a_purchase_redeems_exactly_what_validation_promised(client: TestClient, keys: Keys):
    promised = client.post(
        "/api/v1/coupons/validate",
        json={"member_id": "m1", "order_amount": 3000, "coupons": [TEN, FIVE]},
        headers=bearer(keys.all),
    ).json()
    purchase = event("pos-1", attributes={"amount": 2250, "order_amount": 3000, "coupons": [TEN, FIVE]})
    decision = client.post("/api/v1/events", json=purchase, headers=bearer(keys.all)).json()
    redeemed = [(e["coupon"], e["discount"]) for e in decision["effects"] if e["kind"] == "coupon_redeemed"]
    assert redeemed == [(c["coupon"], c["discount"]) for c in promised["applies"]]


def test_a_coupon_is_redeemed_outside_a_purchase_once(client: TestClient, keys: Keys, service: Service):
    headers = bearer(keys.all) | {"Idempotency-Key": "till-7"}
    response = client.post(
        f"/api/v1/coupons/{FIVE.replace('#', '%23')}/redeem",
        json={"order_amount": 2500, "store": "S1"},
        headers=headers,
    )
    assert response.status_code == 201
    decision = response.json()
    assert (decision["event_id"], decision["event_type"]) == ("coupon_redemption:till-7", "coupon_redemption")
    assert [(e["kind"], e["coupon"], e["discount"]) for e in decision["effects"]] == [
        ("coupon_redeemed", FIVE, 500)
    ]
    before = dump(service.engine)
    again = client.post(
        f"/api/v1/coupons/{FIVE.replace('#', '%23')}/redeem",
        json={"order_amount": 2500},
        headers=bearer(keys.all),
    )
    problem(again, 422, "coupon_not_usable")
    assert dump(service.engine) == before


def test_a_redemption_names_the_coupons_holder_or_none(client: TestClient, keys: Keys):
    path = f"/api/v1/coupons/{TEN.replace('#', '%23')}/redeem"
    problem(
        client.post(path, json={"member_id": "someone-else"}, headers=bearer(keys.all)),
        422,
        "coupon_of_another_member",
    )
    assert client.post(path, json={"member_id": "m1"}, headers=bearer(keys.all)).status_code == 201


def test_a_coupon_is_voided_with_a_reason_in_the_audit_log(client: TestClient, keys: Keys, service: Service):
    path = f"/api/v1/coupons/{TEN.replace('#', '%23')}/void"
    response = client.post(path, json={"reason": "issued by mistake"}, headers=bearer(keys.all))
    assert response.status_code == 200 and response.json() == {
        "id": TEN,
        "policy": "ten-percent",
        "member_id": "m1",
        "status": "void",
    }
    assert client.post(path, json={"reason": "again"}, headers=bearer(keys.all)).status_code == 200
    with service.engine.connect() as conn:
        rows = conn.execute(
            select(t.audit_log.c.action, t.audit_log.c.target, t.audit_log.c.detail).where(
                t.audit_log.c.action == "coupon_voided"
            )
        ).all()
    assert [(r.target, r.detail["reason"]) for r in rows] == [(TEN, "issued by mistake")]
    problem(
        client.post(f"/api/v1/coupons/{TEN.replace('#', '%23')}/redeem", json={}, headers=bearer(keys.all)),
        422,
        "coupon_not_usable",
    )
    client.post(f"/api/v1/coupons/{SOLO.replace('#', '%23')}/redeem", json={}, headers=bearer(keys.all))
    problem(
        client.post(
            f"/api/v1/coupons/{SOLO.replace('#', '%23')}/void",
            json={"reason": "late"},
            headers=bearer(keys.all),
        ),
        409,
        "coupon_redeemed",
    )


def test_a_reward_is_redeemed_for_its_cost(client: TestClient, keys: Keys):
    problem(
        client.post("/api/v1/rewards/coffee/redeem", json={"member_id": "m1"}, headers=bearer(keys.all)),
        422,
        "insufficient_balance",
    )
    client.post("/api/v1/events", json=event("pos-1", attributes={"amount": 15000}), headers=bearer(keys.all))
    response = client.post(
        "/api/v1/rewards/coffee/redeem", json={"member_id": "m1", "store": "S1"}, headers=bearer(keys.all)
    )
    assert response.status_code == 201
    effects = response.json()["effects"]
    assert [e["kind"] for e in effects] == ["spend", "reward_granted", "coupon_issued"]
    assert (effects[0]["amount"], effects[1]["reward"], effects[2]["policy"]) == (-100, "coffee", "five-off")
    assert response.json()["balances"] == {"points": 50}


def test_coupon_and_reward_endpoints_need_their_scopes(client: TestClient, keys: Keys):
    problem(
        client.post(
            "/api/v1/coupons/validate",
            json={"member_id": "m1", "order_amount": 1, "coupons": []},
            headers=bearer(keys.reader),
        ),
        403,
        "insufficient_scope",
    )
    problem(
        client.post("/api/v1/rewards/coffee/redeem", json={"member_id": "m1"}, headers=bearer(keys.reader)),
        403,
        "insufficient_scope",
    )
