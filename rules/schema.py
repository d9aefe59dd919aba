"""The published JSON Schema of the scheme language, generated from the models."""

from __future__ import annotations

from typing import Any

from .models import SCHEMA_VERSION, Scheme

SCHEMA_ID = f"https://perkflow.dev/schema/scheme-v{SCHEMA_VERSION}.json"


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a scheme file, as `perkflow schema` prints it."""
    schema = Scheme.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
