"""The canonical form of a scheme and its content hash.

The hash covers the validated model with every default filled in, as JSON with sorted keys: two
files that differ only in comments, key order, quoting or defaults written out hash the same.
The format version is part of the hash text, so a future change of canonical form is visible.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

from .models import Scheme

HASH_FORMAT = "sha256-v1"


def canonical_data(scheme: Scheme) -> dict[str, Any]:
    return scheme.model_dump(mode="json")


def canonical_json(scheme: Scheme) -> str:
    return json.dumps(canonical_data(scheme), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def content_hash(scheme: Scheme) -> str:
    digest = hashlib.sha256(canonical_json(scheme).encode("utf-8")).hexdigest()
    return f"{HASH_FORMAT}:{digest}"


def to_yaml(scheme: Scheme) -> str:
    """A readable YAML file of the scheme: defaults left out, keys in the models' order."""
    data = scheme.model_dump(mode="python", exclude_defaults=True)
    return yaml.dump(_plain(data), Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)


def _plain(value: Any) -> Any:
    from datetime import date, datetime
    from decimal import Decimal

    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return _DecimalText(format(value.normalize(), "f"))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class _DecimalText(str):
    pass


class _Dumper(yaml.SafeDumper):
    pass


def _represent_decimal(dumper: yaml.SafeDumper, value: _DecimalText) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:float" if "." in value else "tag:yaml.org,2002:int", str(value))


_Dumper.add_representer(_DecimalText, _represent_decimal)
