"""`perkflow tick`, `perkflow deliver` and `perkflow webhooks` from the command line."""

from __future__ import annotations

import json

from tests.cli import test_ops
from tests.cli.test_ops import Perkflow, published

perkflow, upgraded = test_ops.perkflow, test_ops.upgraded  # the fixtures of test_ops


def test_tick_applies_what_is_due_once_and_refuses_a_future_time(upgraded: Perkflow):
    published(upgraded)
    first = upgraded("tick", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["events"] >= 0
    again = upgraded("tick", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["events"] == 0
    assert json.loads(again.stdout)["since"] == json.loads(first.stdout)["until"]
    future = upgraded("tick", "--until", "2999-01-01T00:00:00+00:00")
    assert future.exit_code == 1 and "in the future" in future.stderr
    bad = upgraded("tick", "--until", "tomorrow")
    assert bad.exit_code == 2


def test_deliver_and_the_webhook_commands(upgraded: Perkflow):
    done = upgraded("deliver", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"dispatched": 0, "delivered": 0, "failed": 0, "dead": 0, "notifications": {"sent": 0, "dead": 0}}
    listed = upgraded("webhooks", "list", "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []
    missing = upgraded("webhooks", "redeliver", "7")
    assert missing.exit_code == 1 and "unknown_delivery" in missing.stderr
