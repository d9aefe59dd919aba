"""Members: create or update by external id, read their state, page their ledger, adjust a balance,
set or end a tier override."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from perkflow.engine.progress import progress
from perkflow.engine.simulate import member_view
from perkflow.storage import tables as t

from .audit import record
from .crypto import DataKeys, normalize_email, normalize_phone
from .events import Applied, EventService, member_row, unstorable
from .masking import personal_in_reason
from .merge import merge_members
from .problems import FieldError, Problem, invalid, not_found
from .state_store import load_state
from .versions import Versions

PROFILE_FIELDS = {"phone", "email", "name", "birthday", "home_store", "tags", "attributes", "locale"}
LOCALES = ("en", "zh-CN")
_TAG = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class MemberService:
    def __init__(self, engine: Engine, versions: Versions, events: EventService, keys: DataKeys, clock: Callable[[], datetime]) -> None:
        self.engine, self.versions, self.events, self.keys, self.clock = engine, versions, events, keys, clock

    def _profile(self, body: dict[str, Any], kid: str) -> dict[str, Any] | Problem:
        """The member columns a PUT sets, personal data encrypted under the key `kid` (a row's
        personal data is all under one key); every wrong field reported."""
        errors = [FieldError(f"/{k}", "unknown_field", f"unknown field '{k}' (known: {', '.join(sorted(PROFILE_FIELDS))})") for k in body if k not in PROFILE_FIELDS]
        values: dict[str, Any] = {}
        if (phone := body.get("phone")) is not None:
            normal = normalize_phone(phone) if isinstance(phone, str) else None
            if normal is None:
                errors.append(FieldError("/phone", "invalid_phone", "not a phone number (a Chinese mobile number, or +country code)"))
            else:
                values |= {"phone_cipher": self.keys.encrypt(normal, "phone", kid), "phone_index": self.keys.index("phone", normal, kid), "key_id": kid}
        if (email := body.get("email")) is not None:
            normal = normalize_email(email) if isinstance(email, str) else None
            if normal is None:
                errors.append(FieldError("/email", "invalid_email", "not an email address"))
            else:
                values |= {"email_cipher": self.keys.encrypt(normal, "email", kid), "email_index": self.keys.index("email", normal, kid), "key_id": kid}
        if (name := body.get("name")) is not None:
            if not isinstance(name, str) or len(name) > 200:
                errors.append(FieldError("/name", "wrong_type", "a name is text of at most 200 characters"))
            else:
                values |= {"name_cipher": self.keys.encrypt(name, "name", kid), "key_id": kid}
        if (birthday := body.get("birthday")) is not None:
            try:
                day = date.fromisoformat(birthday) if isinstance(birthday, str) else None
            except ValueError:
                day = None
            if day is None:
                errors.append(FieldError("/birthday", "wrong_type", "a birthday is a date such as 1990-05-17"))
            else:
                values |= {"birthday_cipher": self.keys.encrypt(day.isoformat(), "birthday", kid), "birthday_month": day.month, "birthday_day": day.day, "key_id": kid}
        if (store := body.get("home_store")) is not None:
            if not isinstance(store, str) or len(store) > 64:
                errors.append(FieldError("/home_store", "wrong_type", "a store id is text of at most 64 characters"))
            else:
                values["home_store"] = store
        if (tags := body.get("tags")) is not None:
            if not isinstance(tags, list) or not all(isinstance(x, str) and _TAG.match(x) for x in tags):
                errors.append(FieldError("/tags", "wrong_type", "tags are a list of names: lower case letters, digits and _"))
            else:
                values["tags"] = sorted(set(tags))
        if (locale := body.get("locale")) is not None:
            if locale not in LOCALES:
                errors.append(FieldError("/locale", "invalid_locale", f"a locale is one of: {', '.join(LOCALES)}"))
            else:
                values["locale"] = locale
        if (attributes := body.get("attributes")) is not None:
            if not isinstance(attributes, dict) or not all(isinstance(v, str | int | bool) for v in attributes.values()):
                errors.append(FieldError("/attributes", "wrong_type", "attributes map names to text, whole numbers or true/false"))
            else:
                values["attributes"] = attributes
        if errors:
            return invalid(errors[0].message, errors, code=errors[0].code)
        return values

    def put(self, external_id: str, body: Any, *, actor: str, stores: frozenset[str] | None = None) -> tuple[int, dict[str, Any]] | Problem:
        """Create the member, or update the fields given; 201 when created, 200 when updated. A
        caller bound to stores sees no member of another store, and keeps its members in its stores."""
        if not external_id or len(external_id) > 200:
            return invalid("bad member id", [FieldError("", "wrong_type", "a member id is 1 to 200 characters")], code="wrong_type")
        if (bad := unstorable(external_id) or unstorable(body)) is not None:
            return invalid(bad.message, [bad], code=bad.code)
        if not isinstance(body, dict):
            return invalid("a member is a JSON object", [FieldError("", "wrong_type", "send a JSON object")], code="wrong_type")
        now = self.clock()
        program = self.versions.active()
        with self.engine.begin() as conn:
            # Locked, so that a key rotation (perkflow/service/rotation.py) cannot re-encrypt the
            # row between reading its key and writing under it.
            m = t.members.c
            query = select(m.id, m.home_store, m.key_id, m.status).where(m.external_id == external_id).with_for_update()
            row = conn.execute(query).first()
            values = self._profile(body, row.key_id if row is not None and row.key_id else self.keys.current_id)
            if isinstance(values, Problem):
                return values
            if stores is not None:
                if row is not None and row.home_store not in stores:
                    return not_found("member", external_id)
                if values.get("home_store", row.home_store if row is not None else "") not in stores:
                    return Problem(
                        403, "store_not_allowed", "Not allowed", "this API key keeps members in its own stores",
                        (FieldError("/home_store", "store_not_allowed", f"home_store must be one of: {', '.join(sorted(stores))}"),),
                    )
            if row is not None and row.status == "erased":
                return Problem(409, "member_erased", "Member erased", f"member {external_id} was erased: its personal data cannot be set again")
            if row is None:
                lowest = program.lowest_tier() if program else None
                conn.execute(
                    insert(t.members).values(
                        external_id=external_id, joined_at=now, tier=lowest, tier_since=now if lowest else None,
                        counters={}, caps={}, rewards={}, created_at=now, updated_at=now,
                        **{"tags": [], "attributes": {}, "home_store": "", **values},
                    )
                )
                record(conn, now, actor, "member_created", external_id, {"fields": sorted(k for k in body)})
                status = 201
            else:
                if values:
                    conn.execute(update(t.members).where(t.members.c.id == row.id).values(updated_at=now, **values))
                status = 200
        view = self.get(external_id, stores=stores)
        assert not isinstance(view, Problem)
        return status, view

    def get(self, external_id: str, *, stores: frozenset[str] | None = None) -> dict[str, Any] | Problem:
        """Balances, lots with expiry, tier, coupons and counters; personal data is not in it."""
        program = self.versions.active()
        with self.engine.connect() as conn:
            row = conn.execute(select(t.members).where(t.members.c.external_id == external_id)).mappings().first()
            if row is None or (stores is not None and row["home_store"] not in stores):
                return not_found("member", external_id)  # another store's member is simply not there
            if program is None:
                return {"id": external_id, "tier": row["tier"], "balances": {}}
            state = load_state(conn, row, program)
            merged_into = None
            if row["merged_into"] is not None:
                merged_into = conn.execute(select(t.members.c.external_id).where(t.members.c.id == row["merged_into"])).scalar()
        view = member_view(program, state, self.clock())
        view["balances"] = {b: state.balance(b) for b in program.balances}
        out = {"id": external_id, "status": row["status"], "home_store": row["home_store"], "joined_at": row["joined_at"].isoformat(), **view}
        return out | ({"merged_into": merged_into} if merged_into else {})

    def progress(self, external_id: str, *, order_amount: int | None = None, stores: frozenset[str] | None = None) -> dict[str, Any] | Problem:
        """What the member still needs for each tier, reward and coupon, now (engine/progress.py)."""
        program = self.versions.active()
        now = self.clock()
        with self.engine.connect() as conn:
            row = member_row(conn, external_id)
            if row is None or (stores is not None and row["home_store"] not in stores):
                return not_found("member", external_id)
            if program is None:
                return {"id": external_id, "as_of": now.isoformat(), "tier": row["tier"], "items": []}
            state = load_state(conn, row, program)
            rows = conn.execute(select(t.budgets.c.key, t.budgets.c.used).where(t.budgets.c.key.like("reward:%"))).all()
        used = {r.key: r.used for r in rows}
        needs = progress(program, state, now, order_amount=order_amount, budgets=used)
        out: dict[str, Any] = {"id": external_id, "as_of": now.astimezone(program.tz).isoformat(), "tier": state.tier}
        if order_amount is not None:
            out["order_amount"] = order_amount
        return out | {"items": [n.to_dict(program.tz) for n in needs]}

    def merge(self, external_id: str, other_id: str, *, actor: str, stores: frozenset[str] | None = None) -> dict[str, Any] | Problem:
        """Merge member `other_id` into this one (perkflow/service/merge.py); the survivor after."""
        merged = merge_members(self.engine, self.versions, self.clock, external_id, other_id, actor=actor, stores=stores)
        if isinstance(merged, Problem):
            return merged
        return self.get(external_id, stores=stores)

    def find(self, *, phone: str | None = None, email: str | None = None, stores: frozenset[str] | None = None) -> list[str]:
        """External ids of the members with this phone or email, found through the blind index; a
        member merged into another is found as the survivor."""
        m = t.members.c
        query = select(m.external_id, m.status, m.home_store).order_by(m.id)
        if phone is not None:
            normal = normalize_phone(phone)
            if normal is None:
                return []
            query = query.where(t.members.c.phone_index.in_(self.keys.indexes("phone", normal)))
        elif email is not None:
            normal = normalize_email(email)
            if normal is None:
                return []
            query = query.where(t.members.c.email_index.in_(self.keys.indexes("email", normal)))
        else:
            return []
        found: list[str] = []
        with self.engine.connect() as conn:
            for hit in conn.execute(query).all():
                # only a merged member needs the survivor's row
                row = member_row(conn, hit.external_id) if hit.status == "merged" else hit._mapping
                if row is not None and row["external_id"] not in found and (stores is None or row["home_store"] in stores):
                    found.append(row["external_id"])
        return found

    def ledger(self, external_id: str, *, after: int | None = None, limit: int = 50, stores: frozenset[str] | None = None) -> dict[str, Any] | Problem:
        """Ledger rows, newest first, paged by a cursor (the last row id seen)."""
        limit = max(1, min(limit, 500))
        with self.engine.connect() as conn:
            member = conn.execute(select(t.members.c.id, t.members.c.home_store).where(t.members.c.external_id == external_id)).first()
            if member is None or (stores is not None and member.home_store not in stores):
                return not_found("member", external_id)
            query = select(t.ledger).where(t.ledger.c.member_id == member.id).order_by(t.ledger.c.id.desc()).limit(limit + 1)
            if after is not None:
                query = query.where(t.ledger.c.id < after)
            rows = conn.execute(query).mappings().all()
        page = rows[:limit]
        return {
            "items": [
                {
                    "id": r["id"], "event_id": r["event_id"], "balance": r["balance"], "part": r["part"], "kind": r["kind"],
                    "amount": r["amount"], "rule": r["rule"], "version": r["version"], "occurred_at": r["occurred_at"].isoformat(),
                }
                for r in page
            ],
            "next": str(page[-1]["id"]) if len(rows) > limit else None,
        }

    def adjust(self, external_id: str, body: Any, *, actor: str, adjustment_id: str, stores: frozenset[str] | None = None) -> Applied | Problem:
        """A manual adjustment with a mandatory reason, applied as an event and audited."""
        if (hidden := self._not_theirs(external_id, stores)) is not None:
            return hidden
        if not isinstance(body, dict):
            return invalid("an adjustment is a JSON object", [FieldError("", "wrong_type", "send {balance, amount, reason}")], code="wrong_type")
        unknown = [k for k in body if k not in ("balance", "amount", "reason")]
        if unknown:
            return invalid(f"unknown field '{unknown[0]}'", [FieldError(f"/{k}", "unknown_field", f"unknown field '{k}'") for k in unknown], code="unknown_field")
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            return invalid("an adjustment needs a reason", [FieldError("/reason", "missing_reason", "say why the balance is adjusted")], code="missing_reason")
        if (leaky := personal_in_reason(reason)) is not None:
            return leaky
        attributes = {"balance": body.get("balance"), "amount": body.get("amount"), "reason": reason}
        raw = self._system_event(f"adjustment:{adjustment_id}", "adjustment", external_id, attributes)
        detail = {"event": raw["id"], **attributes}
        return _flat(self.events.post(raw, source="adjustment", audit=(actor, "balance_adjusted", external_id, detail)))

    def set_tier_override(
        self, external_id: str, body: Any, *, actor: str, override_id: str, stores: frozenset[str] | None = None
    ) -> Applied | Problem:
        """人工调级: hold the member at least at a tier (floor) or exactly at one (fixed), until an
        instant or until ended, with a mandatory reason; applied as an event and audited."""
        if (hidden := self._not_theirs(external_id, stores)) is not None:
            return hidden
        if not isinstance(body, dict):
            return invalid("a tier override is a JSON object", [FieldError("", "wrong_type", "send {kind, tier, reason, until}")], code="wrong_type")
        unknown = [k for k in body if k not in ("kind", "tier", "until", "reason")]
        if unknown:
            return invalid(f"unknown field '{unknown[0]}'", [FieldError(f"/{k}", "unknown_field", f"unknown field '{k}'") for k in unknown], code="unknown_field")
        if body.get("kind") not in ("floor", "fixed"):
            return invalid("kind is floor or fixed", [FieldError("/kind", "wrong_value", "floor: at least this tier; fixed: exactly this tier")], code="wrong_value")
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            return invalid("a tier override needs a reason", [FieldError("/reason", "missing_reason", "say why the tier is set by hand")], code="missing_reason")
        if (leaky := personal_in_reason(reason)) is not None:
            return leaky
        attributes = {"kind": body["kind"], "tier": body.get("tier"), "reason": reason}
        if body.get("until") is not None:
            attributes["until"] = body["until"]
        raw = self._system_event(f"tier_override:{override_id}", "tier_override", external_id, attributes)
        detail = {"event": raw["id"], **attributes}
        return _flat(self.events.post(raw, source="tier_override", audit=(actor, "tier_override_set", external_id, detail)))

    def end_tier_override(
        self, external_id: str, *, actor: str, request_id: str, stores: frozenset[str] | None = None
    ) -> Applied | Problem:
        """End the member's tier override now; the tier it gave is then reviewed (docs/semantics.md)."""
        if (hidden := self._not_theirs(external_id, stores)) is not None:
            return hidden
        raw = self._system_event(f"tier_override_end:{external_id}:by:{request_id}", "tier_override_end", external_id, {})
        return _flat(self.events.post(raw, source="tier_override", audit=(actor, "tier_override_ended", external_id, {"event": raw["id"]})))

    def _not_theirs(self, external_id: str, stores: frozenset[str] | None) -> Problem | None:
        if stores is None:
            return None
        with self.engine.connect() as conn:
            home = conn.execute(select(t.members.c.home_store).where(t.members.c.external_id == external_id)).scalar()
        return None if home in stores else not_found("member", external_id)

    def _system_event(self, event_id: str, kind: str, external_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
        """An event the service makes for staff; a retry keeps the first one's time, so that it
        gets the first answer back."""
        with self.engine.connect() as conn:
            first = conn.execute(select(t.events.c.body).where(t.events.c.id == event_id)).scalar()
        return {
            "id": event_id,
            "type": kind,
            "member_id": external_id,
            "occurred_at": first["occurred_at"] if isinstance(first, dict) else self.clock().isoformat(),
            "channel": "support",
            "attributes": attributes,
        }


def _flat(result: Applied | Problem) -> Applied | Problem:
    """The event's pointers are under /attributes; the request body is flat."""
    if not isinstance(result, Problem):
        return result
    flat = "/attributes"
    errors = tuple(FieldError(e.pointer.replace(flat, ""), e.code, e.message) for e in result.errors)
    extra = dict(result.extra)
    if "differing_fields" in extra:
        extra["differing_fields"] = [p.replace(flat, "") for p in extra["differing_fields"]]
    return Problem(result.status, result.code, result.title, result.detail, errors, extra)
