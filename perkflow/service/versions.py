"""Scheme versions: publish (through four eyes), approve, list, fetch, roll back; the version in force.

A published version is immutable. Its number counts up per scheme; its content is canonical JSON
and its hash is the content hash of rules/canonical.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from perkflow.engine import Program, compile
from perkflow.rules import Scheme, canonical_json, content_hash, diff, loads, render, to_yaml
from perkflow.storage import tables as t

from .audit import record
from .problems import FieldError, Problem, conflict, forbidden, invalid, not_found

_INT32, _INT64 = 2**31 - 1, 2**63 - 1  # the ranges of the number and id columns
# The version in force is looked up for every event: its statements are built once.
_PUBLISHED = select(t.scheme_versions.c.id, t.scheme_versions.c.hash).where(t.scheme_versions.c.status == "published")
_IN_FORCE = (
    _PUBLISHED.where(t.scheme_versions.c.effective_at <= bindparam("at"))
    .order_by(t.scheme_versions.c.effective_at.desc(), t.scheme_versions.c.number.desc())
    .limit(1)
)
_FIRST_PUBLISHED = _PUBLISHED.order_by(t.scheme_versions.c.number).limit(1)
# the same look-up as scalar subqueries, for a statement that asks it with other questions (events.py)
IN_FORCE_ID = _IN_FORCE.with_only_columns(t.scheme_versions.c.id).scalar_subquery()
IN_FORCE_HASH = _IN_FORCE.with_only_columns(t.scheme_versions.c.hash).scalar_subquery()
_CONTENT = select(t.scheme_versions.c.content).where(t.scheme_versions.c.id == bindparam("version_id"))


@dataclass(frozen=True)
class _Found:
    id: int
    hash: str


@dataclass(frozen=True)
class Version:
    id: int
    scheme_id: str
    number: int | None
    status: str
    hash: str
    author: str
    approver: str | None
    comment: str
    effective_at: datetime | None
    created_at: datetime
    published_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scheme_id": self.scheme_id,
            "number": self.number,
            "status": self.status,
            "hash": self.hash,
            "author": self.author,
            "approver": self.approver,
            "comment": self.comment,
            "effective_at": self.effective_at.isoformat() if self.effective_at else None,
            "created_at": self.created_at.isoformat(),
            "published_at": self.published_at.isoformat() if self.published_at else None,
        }


def _version(row: Any) -> Version:
    return Version(
        row.id, row.scheme_id, row.number, row.status, row.hash, row.author, row.approver, row.comment,
        row.effective_at, row.created_at, row.published_at,
    )


class Versions:
    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock
        self._programs: dict[str, Program] = {}

    # --- reading ---------------------------------------------------------------------------------

    def program(self, content_hash_: str, content: str) -> Program:
        """The compiled program of a stored version, compiled once per process."""
        program = self._programs.get(content_hash_)
        if program is None:
            loaded = loads(content, f"version {content_hash_[:19]}")
            assert loaded.scheme is not None, loaded.errors  # only valid schemes are ever stored
            program = compile(loaded.scheme)
            self._programs[content_hash_] = program
        return program

    def in_force(self, conn: Connection, at: datetime, found: tuple[int | None, str | None] | None = None) -> Program | Problem:
        """The published version whose effective time is the latest at or before `at`. The first
        version is in force from the beginning: history older than it is imported under it.
        `found`: (id, hash) of IN_FORCE_ID and IN_FORCE_HASH, already asked in this transaction."""
        row: Any = conn.execute(_IN_FORCE, {"at": at}).first() if found is None else (_Found(*found) if found[0] is not None else None)
        if row is None:
            row = conn.execute(_FIRST_PUBLISHED).first()
        if row is None:
            return Problem(
                422, "no_scheme_in_force", "No scheme in force",
                "no scheme version has been published yet", (FieldError("/occurred_at", "no_scheme_in_force", "publish a scheme first"),),
            )
        if row.hash in self._programs:
            return self._programs[row.hash]  # a published version never changes: its content is read once
        content = conn.execute(_CONTENT, {"version_id": row.id}).scalar_one()
        return self.program(row.hash, content)

    def active(self) -> Program | None:
        with self.engine.connect() as conn:
            result = self.in_force(conn, self.clock())
        return result if isinstance(result, Program) else None

    def list(self, *, status: str | None = None) -> list[Version]:
        query = select(t.scheme_versions).order_by(t.scheme_versions.c.id)
        if status:
            query = query.where(t.scheme_versions.c.status == status)
        with self.engine.connect() as conn:
            return [_version(r) for r in conn.execute(query)]

    def find(self, ref: str) -> tuple[Version, str] | Problem:
        """A version by number (`3` or `v:3`), by id (`id:7`) or by content hash."""
        query = select(t.scheme_versions)
        text = ref.removeprefix("v:")
        if text.isdigit():
            if int(text) > _INT32:  # past the column's range (PostgreSQL would refuse to compare)
                return not_found("version", ref)
            query = query.where(t.scheme_versions.c.number == int(text))
        elif ref.startswith("id:") and ref[3:].isdigit():
            if int(ref[3:]) > _INT64:
                return not_found("version", ref)
            query = query.where(t.scheme_versions.c.id == int(ref[3:]))
        else:
            query = query.where(t.scheme_versions.c.hash == ref).order_by(t.scheme_versions.c.id.desc())
        with self.engine.connect() as conn:
            row = conn.execute(query.limit(1)).first()
        if row is None:
            return not_found("version", ref)
        return _version(row), row.content

    def yaml(self, ref: str) -> str | Problem:
        found = self.find(ref)
        if isinstance(found, Problem):
            return found
        loaded = loads(found[1])
        assert loaded.scheme is not None
        return to_yaml(loaded.scheme)

    def compare(self, old_ref: str, new_ref: str) -> dict[str, Any] | Problem:
        """The semantic diff of two stored versions, as data and as text for people."""
        schemes = []
        for ref in (old_ref, new_ref):
            found = self.find(ref)
            if isinstance(found, Problem):
                return found
            schemes.append(Scheme.model_validate(json.loads(found[1])))
        changes = diff(schemes[0], schemes[1])
        return {"from": old_ref, "to": new_ref, "changes": [c.to_dict() for c in changes], "text": render(changes)}

    # --- writing ---------------------------------------------------------------------------------

    def submit(
        self, text: str, *, author: str, comment: str = "", effective_at: datetime | None = None, filename: str = "scheme",
        approval_required: bool | None = None,
    ) -> Version | Problem:
        """Check a scheme and store it as a new version. While the scheme requires approval (the
        default), it waits as `submitted` for someone other than its author; otherwise it is
        published at once. An invalid scheme is refused with every error located.

        `approval_required` overrides the scheme's governance for this submission: a deployment
        that turns approval off explicitly (the demo does) is named in the audit log as the one who
        did (`approval_turned_off`, by the author)."""
        loaded = loads(text, filename)
        if loaded.scheme is None or loaded.errors:
            return invalid(
                f"the scheme has {len(loaded.errors)} error(s)",
                [FieldError("/" + e.path.replace(".", "/").replace("[", "/").replace("]", ""), e.code, e.render()) for e in loaded.errors],
                code="invalid_scheme",
            )
        scheme = loaded.scheme
        now = self.clock()
        with self.engine.begin() as conn:
            removed = _removed_state(conn, scheme)
            if removed:
                return removed
            exists = conn.execute(select(t.schemes).where(t.schemes.c.id == scheme.id)).first()
            if exists is None:
                conn.execute(insert(t.schemes).values(id=scheme.id, require_approval=scheme.governance.require_approval, created_at=now))
            other = conn.execute(select(t.schemes.c.id).where(t.schemes.c.id != scheme.id)).first()
            if other is not None:
                return conflict("other_scheme", f"this deployment runs scheme '{other.id}'; a scheme's id cannot change")
            result = conn.execute(
                insert(t.scheme_versions).values(
                    scheme_id=scheme.id, status="submitted", hash=content_hash(scheme), content=canonical_json(scheme),
                    revision=1, author=author, comment=comment, effective_at=effective_at, created_at=now,
                )
            )
            version_id = result.inserted_primary_key[0]
            record(conn, now, author, "version_submitted", f"id:{version_id}", {"hash": content_hash(scheme), "comment": comment})
            required = scheme.governance.require_approval if approval_required is None else approval_required
            if not required:
                if scheme.governance.require_approval:
                    record(conn, now, author, "approval_turned_off", f"id:{version_id}", {"scheme": scheme.id, "by": author})
                else:
                    record(conn, now, author, "approval_not_required", f"id:{version_id}", {"scheme": scheme.id})
                self._publish(conn, version_id, approver=author, now=now)
        found = self.find(f"id:{version_id}")
        assert not isinstance(found, Problem)
        return found[0]

    def approve(self, version_id: int, *, approver: str) -> Version | Problem:
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(select(t.scheme_versions).where(t.scheme_versions.c.id == version_id)).first()
            if row is None:
                return not_found("version", f"id:{version_id}")
            if row.status != "submitted":
                return conflict("not_submitted", f"version id:{version_id} is {row.status}, not waiting for approval")
            if row.author == approver:
                return forbidden("four eyes: the author of a version cannot approve it")
            self._publish(conn, version_id, approver=approver, now=now)
        found = self.find(f"id:{version_id}")
        assert not isinstance(found, Problem)
        return found[0]

    def schedule(self, version_id: int, effective_at: datetime, *, by: str) -> Problem | None:
        """Set when a version waiting for approval takes effect, before it is approved."""
        now = self.clock()
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.scheme_versions)
                .where(t.scheme_versions.c.id == version_id, t.scheme_versions.c.status == "submitted")
                .values(effective_at=effective_at)
            )
            if done.rowcount == 0:
                return conflict("not_submitted", f"version id:{version_id} is not waiting for approval")
            record(conn, now, by, "version_scheduled", f"id:{version_id}", {"effective_at": effective_at.isoformat()})
        return None

    def send_back(self, version_id: int, *, approver: str, comment: str) -> Version | Problem:
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(select(t.scheme_versions).where(t.scheme_versions.c.id == version_id)).first()
            if row is None:
                return not_found("version", f"id:{version_id}")
            if row.status != "submitted":
                return conflict("not_submitted", f"version id:{version_id} is {row.status}, not waiting for approval")
            conn.execute(update(t.scheme_versions).where(t.scheme_versions.c.id == version_id).values(status="returned", approver=approver))
            record(conn, now, approver, "version_returned", f"id:{version_id}", {"comment": comment})
        found = self.find(f"id:{version_id}")
        assert not isinstance(found, Problem)
        return found[0]

    def rollback(self, number: int, *, author: str, comment: str = "") -> Version | Problem:
        """Publish the content of an earlier version as a new version (four eyes apply)."""
        found = self.find(str(number))
        if isinstance(found, Problem):
            return found
        version, content = found
        if version.status != "published":
            return conflict("not_published", f"version {number} was never published")
        return self.submit(content, author=author, comment=comment or f"roll back to version {number}", filename=f"v{number}")

    def _publish(self, conn: Connection, version_id: int, *, approver: str, now: datetime) -> None:
        row = conn.execute(select(t.scheme_versions).where(t.scheme_versions.c.id == version_id)).one()
        number = (conn.execute(select(func.max(t.scheme_versions.c.number)).where(t.scheme_versions.c.scheme_id == row.scheme_id)).scalar() or 0) + 1
        effective_at = row.effective_at or now
        conn.execute(
            update(t.scheme_versions)
            .where(t.scheme_versions.c.id == version_id)
            .values(status="published", number=number, approver=approver, published_at=now, effective_at=effective_at)
        )
        conn.execute(update(t.schemes).where(t.schemes.c.id == row.scheme_id).values(active_version=number))
        scheme = Scheme.model_validate(json.loads(row.content))
        _ensure_budgets(conn, scheme)
        record(conn, now, approver, "version_published", f"v:{number}", {"hash": row.hash, "author": row.author, "id": version_id})


def _ensure_budgets(conn: Connection, scheme: Scheme) -> None:
    """One budget row per limited thing; a new version may change a limit but never `used`."""
    # budgets of a period or a store get their rows when first used (EventService._claim)
    limits = {
        f"coupon:{k}": p.budget for k, p in scheme.coupons.items() if p.budget is not None and p.budget_per is None and not p.budget_by_store
    }
    limits |= {f"coupon_value:{k}": p.money_budget for k, p in scheme.coupons.items() if p.money_budget is not None}
    limits |= {f"campaign_value:{c.id}": c.budget.liability for c in scheme.campaigns if c.budget is not None and c.budget.liability is not None}
    limits |= {f"reward:{k}": r.stock for k, r in scheme.rewards.items() if r.stock is not None}
    limits |= {f"campaign:{c.id}": c.budget.limit for c in scheme.campaigns if c.budget is not None}
    for key, limit in limits.items():
        done = conn.execute(update(t.budgets).where(t.budgets.c.key == key).values(limit=limit))
        if done.rowcount == 0:
            conn.execute(insert(t.budgets).values(key=key, limit=limit, used=0))


def _removed_state(conn: Connection, scheme: Scheme) -> Problem | None:
    """A balance that members still hold cannot silently disappear from the scheme."""
    held = conn.execute(
        select(t.member_balances.c.balance, func.count())
        .where(t.member_balances.c.total != 0)
        .group_by(t.member_balances.c.balance)
    ).all()
    gone = [(balance, count) for balance, count in held if balance not in scheme.balances]
    if not gone:
        return None
    return invalid(
        "the new version removes balances that members still hold",
        [FieldError(f"/balances/{b}", "balance_still_held", f"{n} member(s) still hold '{b}': keep it, or move their state first") for b, n in gone],
        code="state_still_held",
    )
