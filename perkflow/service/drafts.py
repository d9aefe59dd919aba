"""Drafts: schemes being edited in the browser, saved as they are typed, then submitted as versions.

A draft holds the document as the editor has it, valid or not, so nothing typed is ever lost. Each
save names the revision it edited; a save over someone else's newer revision is refused with who
saved it and when, never silently overwritten. Submitting checks the whole scheme with the same
loader as `perkflow validate` and hands it to `Versions.submit` (four eyes apply there).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, insert, select, update

from perkflow.rules import Loaded, loads, to_yaml
from perkflow.rules.load import parse_document
from perkflow.storage import tables as t

from .audit import record
from .problems import FieldError, Problem, conflict, invalid, not_found
from .staff import Staff
from .versions import Version, Versions

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EMPTY_SCHEME: dict[str, Any] = {
    "id": "my-scheme",
    "name": {"en": "My scheme", "zh-CN": "我的会员计划"},
    "balances": {"points": {"label": {"en": "Points", "zh-CN": "积分"}}},
}


@dataclass(frozen=True)
class Draft:
    id: int
    title: str
    content: dict[str, Any]
    revision: int
    status: str  # editing, submitted, published, discarded
    base_version: int | None
    version_id: int | None
    version_status: str | None  # of the submitted version: submitted, published, returned
    updated_by: str
    updated_at: datetime

    @property
    def editable(self) -> bool:
        return self.status == "editing" or (self.status == "submitted" and self.version_status == "returned")


def _plain(value: Any) -> Any:
    # YAML decimals (read from their source text) become JSON numbers; at most 15 digits, so
    # the float prints back as the same decimal.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def check(content: dict[str, Any]) -> Loaded:
    """The loader's verdict on a draft, every error located by path (rules[0].when)."""
    return loads(json.dumps(content, ensure_ascii=False), "draft")


def parse_yaml(text: str) -> dict[str, Any] | Problem:
    """A YAML (or JSON) scheme file as a draft's document; it need not be valid yet."""
    data, _, errors = parse_document(text, "upload")
    if errors:
        return invalid("the file cannot be read", [FieldError("", e.code, e.render()) for e in errors], code="unreadable_file")
    if not isinstance(data, dict):
        return invalid("the file is not a scheme", [FieldError("", "not_a_mapping", "a scheme is a mapping of keys such as id, name, balances")], code="not_a_mapping")
    return _plain(data)


def to_yaml_text(content: dict[str, Any]) -> str:
    """A draft as a YAML file: the canonical layout when it is valid, else as typed."""
    loaded = check(content)
    if loaded.scheme is not None:
        return to_yaml(loaded.scheme)
    return yaml.safe_dump(content, allow_unicode=True, sort_keys=False)


def example(name: str) -> dict[str, Any] | Problem:
    path = EXAMPLES / name / "scheme.yaml"
    if "/" in name or not path.is_file():
        return not_found("example", name)
    return parse_yaml(path.read_text(encoding="utf-8"))


def examples() -> list[str]:
    return sorted(p.parent.name for p in EXAMPLES.glob("*/scheme.yaml"))


class Drafts:
    def __init__(self, engine: Engine, versions: Versions, clock: Callable[[], datetime]) -> None:
        self.engine, self.versions, self.clock = engine, versions, clock

    def _rows(self, *where: Any) -> list[Draft]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.drafts, t.scheme_versions.c.status.label("version_status"))
                .outerjoin(t.scheme_versions, t.scheme_versions.c.id == t.drafts.c.version_id)
                .where(*where)
                .order_by(t.drafts.c.updated_at.desc())
            ).all()
        return [
            Draft(
                row.id, row.title, json.loads(row.content), row.revision, row.status, row.base_version, row.version_id,
                row.version_status, row.updated_by, row.updated_at,
            )
            for row in rows
        ]

    def _row(self, draft_id: int) -> Draft | None:
        found = self._rows(t.drafts.c.id == draft_id)
        return found[0] if found else None

    def create(self, title: str, content: dict[str, Any], *, by: Staff, base_version: int | None = None) -> Draft | Problem:
        if (refused := by.require("drafts.edit")) is not None:
            return refused
        title = title.strip()[:200] or "draft"
        now = self.clock()
        with self.engine.begin() as conn:
            draft_id = conn.execute(
                insert(t.drafts).values(
                    title=title, content=json.dumps(content, ensure_ascii=False), revision=1, status="editing",
                    base_version=base_version, created_by=by.name, created_at=now, updated_by=by.name, updated_at=now,
                )
            ).inserted_primary_key[0]
            record(conn, now, by.name, "draft_created", f"draft:{draft_id}", {"title": title, "base_version": base_version})
        draft = self._row(int(draft_id))
        assert draft is not None
        return draft

    def from_version(self, number: int, *, by: Staff) -> Draft | Problem:
        """A new draft holding a published version, to change it."""
        found = self.versions.find(str(number))
        if isinstance(found, Problem):
            return found
        version, content = found
        return self.create(f"v{number}", json.loads(content), by=by, base_version=version.number)

    def list(self, *, by: Staff) -> list[Draft] | Problem:
        if (refused := by.require("drafts.read")) is not None:
            return refused
        return self._rows(t.drafts.c.status != "discarded")

    def get(self, draft_id: int, *, by: Staff) -> Draft | Problem:
        if (refused := by.require("drafts.read")) is not None:
            return refused
        draft = self._row(draft_id)
        return not_found("draft", str(draft_id)) if draft is None else draft

    def save(self, draft_id: int, content: dict[str, Any], revision: int, *, by: Staff, title: str | None = None) -> Draft | Problem:
        """Store a new revision. Refused when someone saved since `revision`, or when the draft is
        waiting for approval or done."""
        if (refused := by.require("drafts.edit")) is not None:
            return refused
        current = self._row(draft_id)
        if current is None:
            return not_found("draft", str(draft_id))
        if not current.editable:
            return conflict("draft_locked", f"draft {draft_id} is {current.version_status or current.status}: start a new draft to change it")
        now = self.clock()
        values: dict[str, Any] = {"content": json.dumps(content, ensure_ascii=False), "revision": revision + 1, "updated_by": by.name, "updated_at": now, "status": "editing"}
        if title is not None:
            values["title"] = title.strip()[:200] or current.title
        with self.engine.begin() as conn:
            done = conn.execute(update(t.drafts).where(t.drafts.c.id == draft_id, t.drafts.c.revision == revision).values(**values))
            if done.rowcount == 0:
                return conflict(
                    "draft_changed",
                    f"{current.updated_by} saved this draft at {current.updated_at:%Y-%m-%d %H:%M:%S} UTC after you opened it",
                    updated_by=current.updated_by, updated_at=current.updated_at.isoformat(), revision=current.revision,
                )
        draft = self._row(draft_id)
        assert draft is not None
        return draft

    def discard(self, draft_id: int, *, by: Staff) -> Problem | None:
        if (refused := by.require("drafts.edit")) is not None:
            return refused
        now = self.clock()
        with self.engine.begin() as conn:
            done = conn.execute(update(t.drafts).where(t.drafts.c.id == draft_id, t.drafts.c.status == "editing").values(status="discarded", updated_by=by.name, updated_at=now))
            if done.rowcount:
                record(conn, now, by.name, "draft_discarded", f"draft:{draft_id}", {})
        return None

    def submit(self, draft_id: int, revision: int, *, by: Staff, comment: str, effective_at: datetime | None = None) -> Version | Problem:
        """Check the draft and submit it as a version waiting for approval (or published at once
        when the scheme's governance does not require approval)."""
        if (refused := by.require("versions.submit")) is not None:
            return refused
        draft = self._row(draft_id)
        if draft is None:
            return not_found("draft", str(draft_id))
        if draft.revision != revision:
            return conflict("draft_changed", f"{draft.updated_by} saved this draft after you opened it: reload before submitting")
        if not draft.editable:
            return conflict("draft_locked", f"draft {draft_id} is {draft.version_status or draft.status}")
        version = self.versions.submit(json.dumps(draft.content, ensure_ascii=False), author=by.name, comment=comment, effective_at=effective_at, filename="draft")
        if isinstance(version, Problem):
            return version
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(
                update(t.drafts).where(t.drafts.c.id == draft_id).values(
                    status="published" if version.status == "published" else "submitted", version_id=version.id, updated_by=by.name, updated_at=now,
                )
            )
        return version
