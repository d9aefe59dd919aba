"""API keys as the event path sees them: a key that authenticated is remembered for
`PRINCIPAL_TTL`, and a revoked key stops working at once in the process that revoked it and
within that time everywhere else."""

from __future__ import annotations

from pathlib import Path

from perkflow.service.access import PRINCIPAL_TTL
from perkflow.service.core import Service, open_service

from ..databases import Clock


def _key(service: Service) -> tuple[str, str]:
    made = service.access.create_key("pos", ["events:write"], created_by="test")
    assert isinstance(made, tuple), made
    return made


def test_a_key_revoked_by_this_process_is_refused_at_once(service: Service):
    key_id, token = _key(service)
    assert service.access.authenticate(token) is not None
    assert service.access.remembered(token) is not None
    assert service.access.revoke_key(key_id, actor="test")
    assert service.access.remembered(token) is None
    assert service.access.authenticate(token) is None


def test_a_key_revoked_by_another_process_is_refused_within_the_ttl(
    service: Service, database_url: str, tmp_path: Path, clock: Clock
):
    key_id, token = _key(service)
    principal = service.access.authenticate(token)
    assert principal is not None and principal.name == f"key:{key_id}"
    other = open_service(database_url, tmp_path / "other", clock=clock, upgrade=False)  # the CLI, another worker
    try:
        assert other.access.revoke_key(key_id, actor="test")
        assert other.access.authenticate(token) is None
    finally:
        other.engine.dispose()
    assert service.access.authenticate(token) == principal  # remembered, for less than PRINCIPAL_TTL
    clock.now += PRINCIPAL_TTL
    assert service.access.remembered(token) is None
    assert service.access.authenticate(token) is None


def test_a_forged_secret_is_not_answered_from_memory(service: Service):
    key_id, token = _key(service)
    assert service.access.authenticate(token) is not None
    assert service.access.authenticate(f"{key_id}.forged") is None
    assert service.access.remembered(f"{key_id}.forged") is None
