"""The rule API on the `service` fixture (SQLite always, PostgreSQL when configured): a small
scheme published through four eyes, and API keys by what they may do."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from starlette.applications import Starlette

from perkflow.api.app import create_api
from perkflow.service.access import SCOPES
from perkflow.service.core import Service
from perkflow.settings import Settings

from ..databases import publish

SCHEME = """
perkflow: 1
id: test-club
name: Test Club
timezone: Asia/Shanghai
balances:
  points: {expiry: {kind: rolling, after: 12mo}}
rules:
  - id: base-earn
    on: purchase
    when: event.amount > 0
    then:
      - award: {balance: points, amount: "event.amount / 100"}
  - id: welcome
    on: signup
    then:
      - issue_coupon: {coupon: five-off}
      - issue_coupon: {coupon: ten-percent}
      - issue_coupon: {coupon: solo}
coupons:
  five-off: {name: 5 off, benefit: {kind: amount_off, amount: 500}, min_spend: 2000, validity: {days: 30}}
  ten-percent: {name: 10 percent off, benefit: {kind: percent_off, percent: 10}, validity: {days: 30}}
  solo: {name: 1 off alone, benefit: {kind: amount_off, amount: 100}, validity: {days: 30}, stacking: {with_others: false}}
rewards:
  coffee:
    name: A coffee
    cost: {balance: points, amount: 100}
    grants:
      - issue_coupon: {coupon: five-off}
"""


@dataclass(frozen=True)
class Keys:
    all: str  # every scope
    other: str  # every scope: a second person, for four eyes
    reader: str  # members:read and events:read only
    store: str  # every scope, bound to store S1


@pytest.fixture
def keys(service: Service) -> Keys:
    publish(service, SCHEME)

    def key(name: str, scopes: list[str], stores: list[str] | None = None) -> str:
        made = service.access.create_key(name, scopes, created_by="test", stores=stores)
        assert isinstance(made, tuple), made
        return made[1]

    return Keys(
        all=key("all", list(SCOPES)),
        other=key("other", list(SCOPES)),
        reader=key("reader", ["members:read", "events:read"]),
        store=key("store", list(SCOPES), ["S1"]),
    )


@pytest.fixture
def app(service: Service, keys: Keys) -> Starlette:
    return create_api(service, Settings(max_body=64 * 1024))
