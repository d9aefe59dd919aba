"""A semantic diff of two schemes, for auditors: what was added, removed or changed, by id.

Both sides are compared in canonical form (defaults filled in), so a diff never shows
formatting, comments or key order, and a default written out is no change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .canonical import canonical_data
from .models import Scheme

# Sections whose items are matched by id rather than by position.
_KEYED = ("balances", "counters", "event_types", "coupons", "rewards", "achievements", "templates")
_LISTED = ("rules", "campaigns")


@dataclass(frozen=True)
class FieldChange:
    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Change:
    kind: str  # added, removed, changed
    section: str  # rules, tiers, coupons, ... or "scheme" for top-level settings
    id: str
    fields: tuple[FieldChange, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "section": self.section, "id": self.id}
        if self.fields:
            out["fields"] = [{"path": f.path, "old": f.old, "new": f.new} for f in self.fields]
        return out


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, sub in enumerate(value):
            out.update(_flatten(sub, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _field_changes(old: Any, new: Any) -> tuple[FieldChange, ...]:
    a, b = _flatten(old), _flatten(new)
    return tuple(FieldChange(path, a.get(path), b.get(path)) for path in sorted(set(a) | set(b)) if a.get(path) != b.get(path))


def _by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in items}


def _compare(section: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    changes = []
    for key in old:
        if key not in new:
            changes.append(Change("removed", section, key))
    for key in new:
        if key not in old:
            changes.append(Change("added", section, key))
        elif old[key] != new[key]:
            changes.append(Change("changed", section, key, _field_changes(old[key], new[key])))
    return changes


def diff(old: Scheme, new: Scheme) -> list[Change]:
    a, b = canonical_data(old), canonical_data(new)
    changes: list[Change] = []
    settings = sorted(k for k in set(a) | set(b) if k not in (*_KEYED, *_LISTED, "tiers"))
    setting_changes = tuple(FieldChange(k, a.get(k), b.get(k)) for k in settings if a.get(k) != b.get(k))
    if setting_changes:
        changes.append(Change("changed", "scheme", old.id, setting_changes))
    for section in _KEYED:
        changes += _compare(section, a.get(section) or {}, b.get(section) or {})
    changes += _compare("rules", _by_id(a["rules"]), _by_id(b["rules"]))
    old_campaigns, new_campaigns = _by_id(a["campaigns"]), _by_id(b["campaigns"])
    for change in _compare("campaigns", old_campaigns, new_campaigns):
        if change.kind != "changed":
            changes.append(change)
            continue
        before, after = old_campaigns[change.id], new_campaigns[change.id]
        own = _field_changes({k: v for k, v in before.items() if k != "rules"}, {k: v for k, v in after.items() if k != "rules"})
        if own:
            changes.append(Change("changed", "campaigns", change.id, own))
        changes += [
            Change(c.kind, f"campaigns.{change.id}.rules", c.id, c.fields)
            for c in _compare("rules", _by_id(before["rules"]), _by_id(after["rules"]))
        ]
    old_tiers, new_tiers = a.get("tiers"), b.get("tiers")
    if old_tiers != new_tiers:
        if old_tiers is None or new_tiers is None:
            changes.append(Change("added" if old_tiers is None else "removed", "tiers", "tiers"))
        else:
            own = _field_changes(
                {k: v for k, v in old_tiers.items() if k != "levels"}, {k: v for k, v in new_tiers.items() if k != "levels"}
            )
            if own:
                changes.append(Change("changed", "tiers", "tiers", own))
            changes += _compare("tiers.levels", _by_id(old_tiers["levels"]), _by_id(new_tiers["levels"]))
    return changes


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def render(changes: list[Change]) -> str:
    """The diff as text an auditor reads: + added, - removed, ~ changed with old -> new."""
    if not changes:
        return "no differences\n"
    lines = []
    section = None
    for change in changes:
        if change.section != section:
            section = change.section
            lines.append(f"{section}:")
        mark = {"added": "+", "removed": "-", "changed": "~"}[change.kind]
        lines.append(f"  {mark} {change.id}" + ("" if change.kind == "changed" else f" ({change.kind})"))
        for field in change.fields:
            lines.append(f"      {field.path}: {_show(field.old)} -> {_show(field.new)}")
    return "\n".join(lines) + "\n"
