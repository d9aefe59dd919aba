"""People who use the editor: what each role may do, signing in, and sessions kept in the database.

Every action of the editor names a permission below and is checked here, on the server, each
time it runs: a button that is not shown is a courtesy, the check is what protects. A session is a
random token; the database keeps its SHA-256 digest, when it ends, and whether it was revoked, so
an admin can end anyone's sessions and a restart loses none.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, insert, select, update

from perkflow.storage import tables as t

from .audit import record
from .problems import FieldError, Problem, forbidden, invalid

# Which role may do what. The editor shows only what a user may do, and checks again on every action.
PERMISSIONS: dict[str, frozenset[str]] = {
    "drafts.read": frozenset({"admin", "operator", "approver"}),
    "drafts.edit": frozenset({"admin", "operator"}),
    "drafts.preview": frozenset({"admin", "operator", "approver"}),
    "versions.submit": frozenset({"admin", "operator"}),
    "versions.approve": frozenset({"admin", "approver"}),  # and never one's own (four eyes)
    "versions.read": frozenset({"admin", "operator", "approver", "auditor"}),
    "audit.read": frozenset({"admin", "auditor"}),
    "members.read": frozenset({"admin", "support", "store_manager", "auditor"}),
    "members.adjust": frozenset({"admin", "support"}),
    "members.tier_override": frozenset({"admin", "support"}),  # 人工调级, audited, with a reason
    "members.reveal": frozenset({"admin", "support", "store_manager"}),  # full personal data, audited, with a reason
    "members.erase": frozenset({"admin"}),
    "members.export_full": frozenset({"admin", "finance"}),  # exports unmasked, audited, with a reason
    "reports.read": frozenset({"admin", "finance", "auditor", "store_manager"}),
    "users.admin": frozenset({"admin"}),
}
# Roles whose member access is not limited to stores; a store manager's is, unless another role lifts it.
_ALL_STORES = frozenset({"admin", "support", "auditor", "finance"})

SESSION_HOURS = 12
LOCK_AFTER = 5  # failed sign-ins in a row
LOCK_MINUTES = 15
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Staff:
    """A signed-in user, as every check sees them."""

    id: int
    username: str
    roles: frozenset[str]
    stores: frozenset[str] | None  # None: every store
    locale: str
    must_change_password: bool = False

    @property
    def name(self) -> str:
        return f"user:{self.username}"  # what versions and the audit log record

    def can(self, permission: str) -> bool:
        return bool(self.roles & PERMISSIONS[permission])

    def require(self, permission: str) -> Problem | None:
        if self.can(permission):
            return None
        return forbidden(f"your role ({', '.join(sorted(self.roles))}) may not do this ({permission})")


@dataclass(frozen=True)
class SignInRefused:
    reason: str  # bad_credentials or locked
    locked_until: datetime | None = None
    failures: int = 0  # failed attempts in a row so far, for the caller's slow-down


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _staff(row: object) -> Staff:
    roles = frozenset(row.roles)  # type: ignore[attr-defined]
    limited = "store_manager" in roles and not roles & _ALL_STORES
    return Staff(
        row.id, row.username, roles, frozenset(row.stores) if limited else None,  # type: ignore[attr-defined]
        row.locale, row.must_change_password,  # type: ignore[attr-defined]
    )


class StaffService:
    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine, self.clock = engine, clock

    def sign_in(self, username: str, password: str) -> tuple[str, Staff] | SignInRefused:
        """A new session token for the right password. Five failures in a row lock the account
        for fifteen minutes, even for the right password; the answer never says whether the
        user exists."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(select(t.users).where(t.users.c.username == username[:200])).first()
            if row is None or row.disabled:
                _hasher.hash(password)  # the same cost whether or not the user exists
                return SignInRefused("bad_credentials")
            if row.locked_until is not None and row.locked_until > now:
                return SignInRefused("locked", row.locked_until, row.failed_attempts)
            try:
                good = _hasher.verify(row.password_hash, password)
            except (VerificationError, InvalidHashError):
                good = False
            if not good:
                failures = row.failed_attempts + 1
                locked = now + timedelta(minutes=LOCK_MINUTES) if failures >= LOCK_AFTER else None
                conn.execute(update(t.users).where(t.users.c.id == row.id).values(failed_attempts=0 if locked else failures, locked_until=locked))
                record(conn, now, f"user:{row.username}", "sign_in_failed", f"user:{row.username}", {"locked": locked is not None})
                return SignInRefused("locked" if locked else "bad_credentials", locked, failures)
            token = secrets.token_urlsafe(32)
            conn.execute(update(t.users).where(t.users.c.id == row.id).values(failed_attempts=0, locked_until=None))
            conn.execute(insert(t.sessions).values(token_hash=_digest(token), user_id=row.id, created_at=now, expires_at=now + timedelta(hours=SESSION_HOURS)))
            record(conn, now, f"user:{row.username}", "signed_in", f"user:{row.username}", {})
            return token, _staff(row)

    def session(self, token: str | None) -> Staff | None:
        """The user behind a session token, or None when it is unknown, ended, revoked or the
        user is disabled."""
        if not token or len(token) > 100:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.users, t.sessions.c.expires_at, t.sessions.c.revoked_at)
                .join(t.sessions, t.sessions.c.user_id == t.users.c.id)
                .where(t.sessions.c.token_hash == _digest(token))
            ).first()
        if row is None or row.revoked_at is not None or row.expires_at <= self.clock() or row.disabled:
            return None
        return _staff(row)

    def sign_out(self, token: str) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(update(t.sessions).where(t.sessions.c.token_hash == _digest(token), t.sessions.c.revoked_at.is_(None)).values(revoked_at=now))

    def revoke_sessions(self, username: str, *, by: Staff) -> int | Problem:
        """End every open session of a user (an admin's action)."""
        if (refused := by.require("users.admin")) is not None:
            return refused
        now = self.clock()
        with self.engine.begin() as conn:
            user_id = conn.execute(select(t.users.c.id).where(t.users.c.username == username)).scalar()
            if user_id is None:
                return 0
            done = conn.execute(
                update(t.sessions).where(t.sessions.c.user_id == user_id, t.sessions.c.revoked_at.is_(None)).values(revoked_at=now)
            )
            record(conn, now, by.name, "sessions_revoked", f"user:{username}", {"count": done.rowcount})
            return int(done.rowcount)

    def set_locale(self, staff: Staff, locale: str) -> None:
        if locale not in ("en", "zh-CN"):
            return
        with self.engine.begin() as conn:
            conn.execute(update(t.users).where(t.users.c.id == staff.id).values(locale=locale))

    def change_password(self, staff: Staff, new_password: str) -> Problem | None:
        if len(new_password) < 12:
            return invalid("password too short", [FieldError("/password", "weak_password", "use at least 12 characters")], code="weak_password")
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(update(t.users).where(t.users.c.id == staff.id).values(password_hash=_hasher.hash(new_password), must_change_password=False))
            record(conn, now, staff.name, "password_changed", staff.name, {})
        return None

    def list_users(self, *, by: Staff) -> list[dict[str, object]] | Problem:
        if (refused := by.require("users.admin")) is not None:
            return refused
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.users).order_by(t.users.c.username)).all()
        return [
            {"username": r.username, "roles": sorted(r.roles), "stores": sorted(r.stores), "disabled": r.disabled,
             "locked": r.locked_until is not None and r.locked_until > self.clock()}
            for r in rows
        ]
