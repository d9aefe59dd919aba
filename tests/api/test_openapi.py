"""The API describes itself: OpenAPI 3.1 that validates, lists every route, shows each event
type's attributes from the scheme in force, and a docs page served from here alone."""

from __future__ import annotations

import re

from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from perkflow.api.openapi import openapi

from .conftest import Keys


def _routes(app: Starlette) -> set[tuple[str, str]]:
    found = set()
    for route in app.routes:
        children = [(route.path, r) for r in route.routes] if isinstance(route, Mount) else [("", route)]
        for prefix, child in children:
            assert isinstance(child, Route)
            path = re.sub(r"{(\w+):\w+}", r"{\1}", prefix + child.path)
            found |= {(m.lower(), path) for m in (child.methods or ()) if m != "HEAD"}
    return found


def test_the_document_is_valid_openapi_3_1_with_every_route(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        spec = client.get("/api/v1/openapi.json").json()
    assert spec["openapi"] == "3.1.0"
    validate(spec)
    documented = {(method, path) for path, methods in spec["paths"].items() for method in methods}
    assert documented == _routes(app)


def test_each_event_type_of_the_scheme_in_force_is_documented_with_its_attributes(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        spec = client.get("/api/v1/openapi.json").json()
    schemas = spec["components"]["schemas"]
    mapping = schemas["EventBody"]["discriminator"]["mapping"]
    assert {"purchase", "refund", "signup", "coupon_redemption", "reward_redemption"} <= set(mapping)
    assert not {"adjustment", "expiry", "tier_review"} & set(mapping)  # made by Perkflow, never posted
    purchase = schemas["PurchaseAttributes"]
    assert (
        purchase["properties"]["amount"]["type"] == "integer"
        and purchase["properties"]["amount"]["minimum"] == 0
    )
    assert purchase["required"] == ["amount"] and purchase["additionalProperties"] is False


def test_every_error_answer_is_a_documented_problem(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        spec = client.get("/api/v1/openapi.json").json()
    post_event = spec["paths"]["/api/v1/events"]["post"]
    assert {"400", "401", "403", "409", "413", "422", "500"} <= set(post_event["responses"])
    problem = spec["components"]["responses"]["Problem422"]["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/ProblemOut"}
    assert post_event["security"] == [{"bearerAuth": ["events:write"]}]


def test_without_a_scheme_the_document_is_still_valid():
    validate(openapi(None))


def test_the_docs_page_lists_every_operation_and_loads_nothing_from_elsewhere(app: Starlette, keys: Keys):
    with TestClient(app) as client:
        page = client.get("/api/v1/docs")
        spec = client.get("/api/v1/openapi.json").json()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for path, methods in spec["paths"].items():
        for method in methods:
            assert f"{method.upper()}</span> <code>{path}</code>" in page.text
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", page.text)
    assert "<script" not in page.text
