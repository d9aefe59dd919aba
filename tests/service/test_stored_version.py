"""A published version decides exactly like the file it was published from.

The service compiles a version from its stored canonical JSON, never from the YAML. Whatever the
loader turns into a typed value (a decimal rate, a duration) must come back as the same type.

Found by posting examples/coffee through the service beside a replay: a tier benefit such as
`points_multiplier: 1.2` is a Decimal when loaded from the file, is written as the text "1.2" in
canonical JSON, and loads back as a str. Where some level's benefit is an int (coffee: 1, 1.2,
1.5) the stored version loads and silver and gold members earn nothing (`expression_error`); where
every level's is a decimal the checker refuses the stored version and every event fails. Both
tests are expected to fail until rules/ is fixed; then remove the markers.
"""

from __future__ import annotations

from perkflow.rules import canonical_json, loads
from perkflow.service.core import Service
from perkflow.service.events import Applied

from ..databases import publish

SCHEME = """
perkflow: 1
id: decimal-benefit
name: Decimal benefit
balances:
  points: {}
tiers:
  metric: {balance: points}
  levels:
    - {id: silver, name: Silver, threshold: 0, benefits: {points_multiplier: 1.5}}
rules:
  - id: earn
    on: purchase
    then: [{award: {balance: points, amount: "event.amount / 100 * tier.points_multiplier"}}]
"""


def test_the_stored_version_loads_back_equal_to_the_published_scheme():
    scheme = loads(SCHEME, "scheme.yaml").scheme
    assert scheme is not None
    assert loads(canonical_json(scheme), "stored").scheme == scheme


def test_a_decimal_tier_benefit_multiplies_awards_in_the_live_service(service: Service):
    publish(service, SCHEME)
    raw = {
        "id": "p1",
        "type": "purchase",
        "member_id": "m1",
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "attributes": {"amount": 1000},
    }
    assert isinstance(service.events.post({**raw, "id": "s1", "type": "signup", "attributes": {}}), Applied)
    result = service.events.post(raw)
    assert isinstance(result, Applied)
    assert result.body["balances"]["points"] == 15, result.body["trace"]
