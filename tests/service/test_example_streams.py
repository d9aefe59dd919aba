"""Every example posted event by event through the service on SQLite and PostgreSQL ends in the
state of its expected.json: the same balances, tiers and coupons, and the same events refused
with the same codes. So each mechanic the examples show (stacking and groups in coffee and shop,
the spring month's store, money and liability budgets and the holds' payments in salon, pending
growth, codes, referrals, tier terms and overrides in shop) holds on both databases, not only in
the replay. Tier overrides are posted as the API's tier-override endpoints post them, and the one
that ends at its `until` ends by apply_due."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from perkflow.service.core import open_service
from perkflow.service.problems import Problem

from ..databases import BACKENDS, EXAMPLE_SOURCES, Clock, fresh_url, publish

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["coffee", "salon", "shop"])
def test_the_example_posted_through_the_service_ends_in_its_expected_state(name: str, backend: str, tmp_path: Path):
    expected = json.loads((EXAMPLES / name / "expected.json").read_text(encoding="utf-8"))
    as_of = datetime.fromisoformat(expected["as_of"])
    svc = open_service(fresh_url(backend, tmp_path), tmp_path / "data", clock=Clock("2025-12-31T00:00:00+00:00"))
    try:
        publish(svc, str(EXAMPLES / name / "scheme.yaml"))
        svc.clock.now = as_of  # type: ignore[attr-defined]
        refused: list[tuple[str, str]] = []
        lines = (EXAMPLES / name / "events.jsonl").read_text(encoding="utf-8").splitlines()
        for raw in (json.loads(line) for line in lines if line.strip()):
            # a code claim and a tier override are events the service makes when a code is claimed
            # (service/codes.py) or staff set or end an override (service/members.py)
            result = svc.events.post(raw, source=EXAMPLE_SOURCES.get(raw["type"], "api"))
            if isinstance(result, Problem):
                refused.append((raw["id"], result.code))
        members = sorted(expected["members"])
        for member in members:
            svc.events.apply_due(member, as_of)
        assert refused == [(r["event_id"], r["code"]) for r in expected["rejections"]]
        for member in members:
            got: Any = svc.members.get(member)
            want = expected["members"][member]
            assert {b: n for b, n in got["balances"].items() if n} == want["balances"], member
            assert got["tier"] == want["tier"], member
            assert sorted((c["id"], c["policy"], c["status"]) for c in got["coupons"]) == sorted(
                (c["id"], c["policy"], c["status"]) for c in want["coupons"]
            ), member
    finally:
        svc.engine.dispose()
