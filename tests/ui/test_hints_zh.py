"""Every described field of the scheme language has a Chinese hint, and no hint names a field that is gone."""

from __future__ import annotations

import inspect
from typing import Any

from pydantic import BaseModel

from perkflow.builder_ui.hints_zh import HINTS_ZH
from perkflow.rules import models


def _model_classes() -> list[type[BaseModel]]:
    return [
        cls
        for cls in vars(models).values()
        if inspect.isclass(cls) and issubclass(cls, BaseModel) and cls.__module__ == models.__name__
    ]


def _schema_description(node: dict[str, Any], defs: dict[str, Any]) -> str | None:
    """The description the editor finds for a property: its own, or that of the one type it refers to
    (an annotated type such as Duration inside `Duration | None`, or a model's $ref)."""
    while True:
        if node.get("description"):
            return str(node["description"])
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
            continue
        options = [o for o in node.get("anyOf") or node.get("oneOf") or [] if o.get("type") != "null"]
        if len(options) != 1:
            return None
        node = options[0]


def _described_fields() -> dict[str, str]:
    described = {}
    for cls in _model_classes():
        schema = cls.model_json_schema()
        for name, info in cls.model_fields.items():
            key = info.alias or name
            text = info.description or _schema_description(schema["properties"][key], schema.get("$defs", {}))
            if text:
                described[f"{cls.__name__}.{name}"] = text
    return described


def test_every_described_field_has_a_chinese_hint_and_no_hint_is_stale() -> None:
    described = _described_fields()
    assert len(described) > 50  # the walk found the language, not an empty module

    missing = sorted(key for key in described if not HINTS_ZH.get(key, "").strip())
    assert not missing, f"fields with an English description but no Chinese hint: {missing}"

    existing = {f"{cls.__name__}.{name}" for cls in _model_classes() for name in cls.model_fields}
    stale = sorted(set(HINTS_ZH) - existing)
    assert not stale, f"Chinese hints for fields that do not exist: {stale}"
