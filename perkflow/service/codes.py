"""Coupon codes (券码): generated in batches or imported from CSV, looked up, claimed by members.

A code stands for one coupon policy that declares `codes`. Claiming it (领取) posts a
`code_claim` event, so the engine issues the coupon within the policy's per-member cap and
budget, and the code's use is taken with a guarded update in the same transaction: a single-use
code is claimed once, whatever the concurrency. Looking codes up (and claiming, which looks up) is
rate-limited per API key and per client address, so nobody can enumerate them.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from perkflow.engine.coupons import CODE_ALPHABET
from perkflow.rules.models import CouponPolicy
from perkflow.storage import tables as t

from .audit import record
from .events import Applied, EventService
from .problems import FieldError, Problem, conflict, invalid, not_found
from .versions import Versions

ALPHABET = CODE_ALPHABET  # one alphabet for generated codes and the codes rules hand out
MAX_BATCH = 1_000_000
SHOWN = 1_000  # a batch up to this size is returned in the answer; larger ones are exported
_CHUNK = 5_000
_IMPORTED = re.compile(r"^[A-Z0-9][A-Z0-9-]{3,63}$")
# Each random byte below 248 (8 x 31) maps to ALPHABET[byte % 31], uniformly; the rest are dropped.
_KEEP = bytes(range(248))
_TO_ALPHABET = bytes(ord(ALPHABET[b % len(ALPHABET)]) for b in range(248)) + bytes(8)
_DROP = bytes(range(248, 256))


def random_codes(count: int, length: int, prefix: str = "", avoid: Container[str] = frozenset()) -> list[str]:
    """`count` different codes of `prefix` and `length` characters drawn uniformly from ALPHABET
    by the operating system's cryptographic source (`secrets`), none of them in `avoid`."""
    codes: list[str] = []
    made: set[str] = set()
    while len(codes) < count:
        need = count - len(codes)
        # about 3% of bytes are dropped: ask for a little more than needed
        text = secrets.token_bytes(need * length * 33 // 32 + 64).translate(_TO_ALPHABET, _DROP).decode("ascii")
        for i in range(0, len(text) - length + 1, length):
            code = prefix + text[i : i + length]
            if code not in made and code not in avoid:
                made.add(code)
                codes.append(code)
                if len(codes) == count:
                    break
    return codes


def _insert_codes(conn: Connection, rows: list[tuple[str, str, str, int, datetime]]) -> None:
    """Insert (code, policy, batch, max_uses, created_at) rows with the driver's executemany: the
    statement's own parameter processing costs ten times the insert on a batch of a million."""
    if not rows:
        return
    to_column = t.coupon_codes.c.created_at.type.bind_processor(conn.dialect)
    created = to_column(rows[0][4]) if to_column is not None else rows[0][4]  # one instant per batch
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO coupon_codes (code, policy, batch, max_uses, uses, created_at) VALUES ({', '.join([mark] * 6)})"
    for i in range(0, len(rows), _CHUNK):
        conn.exec_driver_sql(sql, [(code, policy, batch, uses, 0, created) for code, policy, batch, uses, _ in rows[i : i + _CHUNK]])


class RateLimiter:
    """A token bucket per key: `burst` requests at once, refilled at `rate` a second. Its own small
    limiter, so code look-ups are limited whatever the API in front of the service does."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], datetime]) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def wait(self, *keys: str) -> float:
        """0 when every key has a token (one is taken from each); otherwise how many seconds until
        the emptiest one has, and nothing is taken."""
        now = self.clock().timestamp()
        with self._lock:
            levels = {}
            for key in keys:
                tokens, at = self._buckets.get(key, (float(self.burst), now))
                levels[key] = min(float(self.burst), tokens + (now - at) * self.rate)
            short = max((1 - level) / self.rate for level in levels.values()) if any(v < 1 for v in levels.values()) else 0.0
            if short > 0:
                return short
            for key, level in levels.items():
                self._buckets[key] = (level - 1, now)
            return 0.0


@dataclass(frozen=True)
class Caller:
    """Who looks a code up: the API key or user, and the client's address."""

    principal: str
    client: str = ""
    stores: frozenset[str] | None = field(default=None)


def rate_limited(seconds: float) -> Problem:
    wait = max(1, int(seconds + 0.999))
    return Problem(429, "rate_limited", "Too many requests", f"too many code look-ups; try again in {wait} s", extra={"retry_after": wait})


class CodeService:
    def __init__(
        self, engine: Engine, versions: Versions, events: EventService, clock: Callable[[], datetime], limiter: RateLimiter | None = None
    ) -> None:
        self.engine, self.versions, self.events, self.clock = engine, versions, events, clock
        self.limiter = limiter or RateLimiter(rate=2.0, burst=20, clock=clock)

    def _policy(self, policy_id: Any) -> CouponPolicy | Problem:
        program = self.versions.active()
        policy = program.scheme.coupons.get(policy_id) if program is not None and isinstance(policy_id, str) else None
        if policy is None:
            return invalid(f"no coupon policy '{policy_id}'", [FieldError("/policy", "unknown_coupon_policy", "name a coupon policy of the scheme in force")], code="unknown_coupon_policy")
        if policy.codes is None:
            return invalid(
                f"coupon policy '{policy_id}' has no codes",
                [FieldError("/policy", "policy_without_codes", "declare 'codes' on the policy to hand it out as codes")],
                code="policy_without_codes",
            )
        return policy

    def generate(self, policy_id: Any, count: Any, *, actor: str) -> dict[str, Any] | Problem:
        """A batch of `count` new codes in the policy's format, none equal to a code already stored."""
        policy = self._policy(policy_id)
        if isinstance(policy, Problem):
            return policy
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_BATCH:
            return invalid("bad count", [FieldError("/count", "wrong_count", f"a batch holds 1 to {MAX_BATCH:,} codes")], code="wrong_count")
        assert policy.codes is not None
        batch, now = uuid.uuid4().hex[:16], self.clock()
        codes: list[str] = []
        drawn: set[str] = set()
        with self.engine.begin() as conn:
            while len(codes) < count:
                fresh = random_codes(min(_CHUNK, count - len(codes)), policy.codes.length, policy.codes.prefix, drawn)
                stored = set(conn.execute(select(t.coupon_codes.c.code).where(t.coupon_codes.c.code.in_(fresh))).scalars())
                fresh = [c for c in fresh if c not in stored]  # those already stored are drawn again
                _insert_codes(conn, [(c, policy_id, batch, policy.codes.uses, now) for c in fresh])
                codes += fresh
                drawn.update(fresh)
            record(conn, now, actor, "coupon_codes_generated", policy_id, {"batch": batch, "count": count})
        out: dict[str, Any] = {"batch": batch, "policy": policy_id, "count": count}
        return out | ({"codes": codes} if count <= SHOWN else {})

    def import_csv(self, policy_id: Any, text: Any, *, actor: str) -> dict[str, Any] | Problem:
        """Codes from CSV lines `code[,uses]` (a header line `code,uses` is allowed). Each bad or
        already stored code is refused with its line and reason; the others are imported. Importing
        the same file again imports nothing and refuses every line as already stored."""
        policy = self._policy(policy_id)
        if isinstance(policy, Problem):
            return policy
        if not isinstance(text, str):
            return invalid("bad csv", [FieldError("/csv", "wrong_type", "send the CSV file's text")], code="wrong_type")
        assert policy.codes is not None
        rows: dict[str, tuple[int, int]] = {}  # code -> (line, uses)
        refused: list[dict[str, Any]] = []
        for line, fields in enumerate(csv.reader(io.StringIO(text)), 1):
            if not fields or (line == 1 and fields[0].strip().lower() == "code"):
                continue
            code = fields[0].strip().upper()
            uses_text = fields[1].strip() if len(fields) > 1 else ""
            why = None
            if not _IMPORTED.match(code):
                why = ("bad_code", "a code is 4 to 64 letters, digits and -")
            elif uses_text and not (uses_text.isdigit() and int(uses_text) >= 1):
                why = ("bad_uses", "uses is a whole number of at least 1")
            elif code in rows:
                why = ("duplicate_code", f"the same code is on line {rows[code][0]}")
            if why is not None:
                refused.append({"line": line, "code": code, "reason": why[0], "message": why[1]})
                continue
            rows[code] = (line, int(uses_text) if uses_text else policy.codes.uses)
        batch, now = f"import-{uuid.uuid4().hex[:12]}", self.clock()
        with self.engine.begin() as conn:
            stored: set[str] = set()
            listed = list(rows)
            for i in range(0, len(listed), _CHUNK):
                stored |= set(conn.execute(select(t.coupon_codes.c.code).where(t.coupon_codes.c.code.in_(listed[i : i + _CHUNK]))).scalars())
            fresh = [c for c in listed if c not in stored]
            for code in listed:
                if code in stored:
                    refused.append({"line": rows[code][0], "code": code, "reason": "code_exists", "message": "this code is already stored"})
            _insert_codes(conn, [(c, policy_id, batch, rows[c][1], now) for c in fresh])
            if fresh:
                record(conn, now, actor, "coupon_codes_imported", policy_id, {"batch": batch, "count": len(fresh), "refused": len(refused)})
        return {"batch": batch if fresh else None, "policy": policy_id, "imported": len(fresh), "refused": sorted(refused, key=lambda r: r["line"])}

    def lookup(self, code: str, caller: Caller) -> dict[str, Any] | Problem:
        """What a code stands for and how many uses are left; rate-limited per key and client."""
        wait = self.limiter.wait(f"key:{caller.principal}", f"client:{caller.client}")
        if wait:
            return rate_limited(wait)
        with self.engine.connect() as conn:
            row = conn.execute(select(t.coupon_codes).where(t.coupon_codes.c.code == code.strip().upper())).mappings().first()
        if row is None:
            return not_found("code", code)
        return {"code": row["code"], "policy": row["policy"], "uses_left": row["max_uses"] - row["uses"], "max_uses": row["max_uses"]}

    def claim(self, code: str, member_id: str, caller: Caller, *, store: str = "", channel: str = "api") -> Applied | Problem:
        """The member claims the code: the coupon it stands for is issued (the decision is the
        answer) and one of its uses is taken, in one transaction. A member claims a code once:
        claiming it again answers the first claim."""
        found = self.lookup(code, caller)
        if isinstance(found, Problem):
            return found
        if caller.stores is not None and store not in caller.stores:
            return Problem(403, "store_not_allowed", "Not allowed", "this API key may only claim codes in its own stores")
        normal = found["code"]

        def take_use(conn: Connection) -> Problem | None:
            c = t.coupon_codes.c
            taken = conn.execute(update(t.coupon_codes).where(c.code == normal, c.uses < c.max_uses).values(uses=c.uses + 1))
            return None if taken.rowcount == 1 else conflict("code_used_up", f"code '{normal}' has no use left")

        raw = {
            "id": f"claim:{normal}:{member_id}",
            "type": "code_claim",
            "member_id": member_id,
            "occurred_at": self.clock().isoformat(),
            "store": store,
            "channel": channel,
            "attributes": {"code": normal, "policy": found["policy"]},
        }
        with self.engine.connect() as conn:
            first = conn.execute(select(t.events.c.body).where(t.events.c.id == raw["id"])).scalar()
        if isinstance(first, dict):
            raw = first  # a second claim by the same member answers the first
        return self.events.post(raw, source="code_claim", hold=take_use)
