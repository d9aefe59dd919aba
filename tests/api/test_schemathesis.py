"""schemathesis over the published OpenAPI document: every operation, generated requests (at
least 1,000 in all), no server error, every answer conforming to the document (status, content
type, headers, body schema)."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks as openapi_checks
from starlette.testclient import TestClient

from perkflow.api.app import create_api
from perkflow.service.core import Service
from perkflow.settings import Settings

from .conftest import Keys
from .helpers import bearer

# What the document promises, checked on every answer. Left out: schemathesis' positive-data check,
# which expects every schema-valid request to succeed, where business rules (an unknown member, a
# version that does not exist) rightly refuse many with a documented 422 or 404.
CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]

EXAMPLES = 40  # per operation; operations with few possible inputs make fewer
AT_LEAST = 1000


def _exercise(operation: schemathesis.APIOperation, token: str, sent: dict[str, int]) -> None:
    """Generated requests for one operation, each checked by every schemathesis check; the first
    failure is shrunk and raised with the request that reproduces it."""
    label = f"{operation.method.upper()} {operation.path}"

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case: schemathesis.Case) -> None:
        sent[label] = sent.get(label, 0) + 1
        case.call_and_validate(headers=bearer(token), checks=CHECKS)

    check()


def test_every_operation_answers_as_documented_and_never_with_a_server_error(service: Service, keys: Keys):
    # Limits off: the generated requests come faster than any client should, from one key.
    app = create_api(service, Settings(max_body=64 * 1024, rate_per_key=0, rate_per_address=0))
    sent: dict[str, int] = {}
    with TestClient(app):  # the lifespan, as a server runs it
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
        for result in schema.get_all_operations():
            _exercise(result.ok(), keys.all, sent)
    documented = {f"{method.upper()} {path}" for path, methods in schema.raw_schema["paths"].items() for method in methods}
    # Every operation but the document itself, which schemathesis read to begin with.
    assert set(sent) == documented - {"GET /api/v1/openapi.json"}
    assert sum(sent.values()) >= AT_LEAST, sent
