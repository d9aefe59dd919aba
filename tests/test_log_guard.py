"""The log guard of tests/log_guard.py sees the application's records and the values members were
given, and finds a value in a record."""

from __future__ import annotations

import logging
from pathlib import Path

from perkflow.service.core import Service

from . import log_guard


def test_the_guard_collects_personal_values_and_log_records_and_finds_a_leak(service: Service, tmp_path: Path):
    assert isinstance(service.members.put("guard-1", {"phone": "13700001111", "email": "guard@example.net"}, actor="test"), tuple)
    assert {"+8613700001111", "13700001111", "guard@example.net"} <= log_guard._values
    logging.getLogger("perkflow.api").info("request for member %s", "guard-1")
    assert log_guard._collector.texts[-1] == "request for member guard-1"
    assert log_guard.leaks(["a", "callback to 13700001111 failed"], {"13700001111", "guard@example.net"}) == {
        "13700001111": "callback to 13700001111 failed"
    }
