"""Who is asking: API keys (bearer tokens with scopes, optionally bound to stores) and users.

A key's secret is shown once and stored as a SHA-256 digest: secrets are 32 random bytes, so a
fast digest is as safe as a slow one and keeps every API call cheap. Passwords, chosen by people,
are hashed with argon2.

A key that authenticated is remembered by the process for `PRINCIPAL_TTL` (by the digest of the
whole token, never the token), so a burst of events costs one key look-up, not one each. A key
revoked through this process stops working at once; revoked elsewhere (the CLI, another worker),
within `PRINCIPAL_TTL` by this process's clock (docs/decisions/0022).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import Engine, insert, select, update

from perkflow.storage import tables as t

from .audit import record
from .problems import FieldError, Problem, invalid

SCOPES = (
    "events:write",
    "events:read",
    "members:read",
    "members:write",
    "members:reveal",
    "members:erase",
    "coupons:write",
    "rewards:write",
    "schemes:read",
    "schemes:publish",
    "schemes:approve",
    "keys:admin",
    "webhooks:admin",
    "reports:read",
)
ROLES = ("admin", "operator", "approver", "store_manager", "finance", "support", "auditor")
_hasher = PasswordHasher()
PRINCIPAL_TTL = timedelta(seconds=5)
_MAX_REMEMBERED = 1024  # principals remembered at most; all are forgotten when it fills


@dataclass(frozen=True)
class Principal:
    name: str  # key:<id> or user:<username>: what the audit log and versions record
    scopes: frozenset[str]
    stores: frozenset[str] | None = None  # None: every store

    def can(self, scope: str) -> bool:
        return scope in self.scopes


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AccessService:
    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine, self.clock = engine, clock
        self._remembered: dict[str, tuple[Principal, datetime]] = {}  # token digest -> (principal, until)

    def create_key(
        self, name: str, scopes: list[str], *, created_by: str, stores: list[str] | None = None
    ) -> tuple[str, str] | Problem:
        """A new API key: (its id, the token to show once)."""
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scopes:
            return invalid(
                "unknown scope", [FieldError("/scopes", "unknown_scope", f"scopes are some of: {', '.join(SCOPES)}")], code="unknown_scope"
            )
        key_id = "pk_" + secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(
                insert(t.api_keys).values(
                    id=key_id, secret_hash=_digest(secret), name=name, scopes=sorted(set(scopes)), stores=stores,
                    created_by=created_by, created_at=now,
                )
            )
            record(conn, now, created_by, "key_created", key_id, {"name": name, "scopes": sorted(set(scopes)), "stores": stores})
        return key_id, f"{key_id}.{secret}"

    def revoke_key(self, key_id: str, *, actor: str) -> bool:
        now = self.clock()
        with self.engine.begin() as conn:
            done = conn.execute(update(t.api_keys).where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None)).values(revoked_at=now))
            if done.rowcount:
                record(conn, now, actor, "key_revoked", key_id, {})
        self._forget(f"key:{key_id}")
        return bool(done.rowcount)

    def list_keys(self) -> list[dict[str, object]]:
        """Every key, revoked ones too, without anything secret."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.api_keys).order_by(t.api_keys.c.created_at)).all()
        return [
            {"id": r.id, "name": r.name, "scopes": list(r.scopes), "stores": r.stores, "created_by": r.created_by,
             "created_at": r.created_at.isoformat(), "revoked": r.revoked_at is not None}
            for r in rows
        ]

    def remembered(self, token: str) -> Principal | None:
        """The principal of a key that authenticated less than `PRINCIPAL_TTL` ago, without
        touching the database (the API asks this first, on its event loop); else None."""
        found = self._remembered.get(_digest(token))
        return found[0] if found is not None and self.clock() < found[1] else None

    def authenticate(self, token: str) -> Principal | None:
        key_id, dot, secret = token.partition(".")
        if not dot or not key_id.startswith("pk_") or len(token) > 200:
            return None
        if (principal := self.remembered(token)) is not None:
            return principal
        now = self.clock()
        # begin() ends in a COMMIT: psycopg answers a ROLLBACK by dropping every prepared
        # statement of the connection, which the next event would then plan again.
        with self.engine.begin() as conn:
            row = conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id)).first()
        if row is None or row.revoked_at is not None or not hmac.compare_digest(row.secret_hash, _digest(secret)):
            return None
        principal = Principal(f"key:{row.id}", frozenset(row.scopes), frozenset(row.stores) if row.stores is not None else None)
        if len(self._remembered) >= _MAX_REMEMBERED:
            self._remembered.clear()
        self._remembered[_digest(token)] = (principal, now + PRINCIPAL_TTL)
        return principal

    def _forget(self, name: str) -> None:
        for digest, (principal, _) in list(self._remembered.items()):
            if principal.name == name:
                self._remembered.pop(digest, None)

    def create_user(
        self, username: str, password: str, roles: list[str], *, created_by: str, stores: list[str] | None = None,
        must_change_password: bool = False, locale: str = "zh-CN",
    ) -> int | Problem:
        """A new user; `must_change_password` for a one-time password someone else chose."""
        bad = [r for r in roles if r not in ROLES]
        if bad or not roles:
            return invalid("unknown role", [FieldError("/roles", "unknown_role", f"roles are some of: {', '.join(ROLES)}")], code="unknown_role")
        if len(password) < 12:
            return invalid("password too short", [FieldError("/password", "weak_password", "use at least 12 characters")], code="weak_password")
        now = self.clock()
        with self.engine.begin() as conn:
            if conn.execute(select(t.users.c.id).where(t.users.c.username == username)).first() is not None:
                return invalid("user exists", [FieldError("/username", "user_exists", f"'{username}' is taken")], code="user_exists")
            result = conn.execute(
                insert(t.users).values(
                    username=username, password_hash=_hasher.hash(password), roles=sorted(set(roles)), stores=stores or [],
                    must_change_password=must_change_password, locale=locale if locale in ("en", "zh-CN") else "zh-CN", created_at=now,
                )
            )
            record(conn, now, created_by, "user_created", f"user:{username}", {"roles": sorted(set(roles)), "stores": stores or []})
            return int(result.inserted_primary_key[0])

    def check_password(self, username: str, password: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.users.c.password_hash, t.users.c.disabled).where(t.users.c.username == username)).first()
        if row is None or row.disabled:
            _hasher.hash(password)  # same cost whether or not the user exists
            return False
        try:
            return _hasher.verify(row.password_hash, password)
        except VerificationError:
            return False
