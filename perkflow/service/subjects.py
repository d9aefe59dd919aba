"""Members' personal data and their rights: the masked view, the audited reveal, the export of
everything held on one member, and erasure under a pseudonym (docs/privacy.md).

Erasure removes the member's phone, email, name, birthday and attributes, replaces their external
id with a pseudonym everywhere it is stored (the member row, their events and the ids derived from
it, outbox payloads) and blanks their outbox payloads and webhook delivery errors. The ledger, lots,
coupons, earnings, tier history and decisions stay, under the pseudonym: balances and liability
stay provable. Audit rows name members by external id and hold no personal data, so the audit
chain is never rewritten. Each erasure is written to a register (the `erasures` table and the file
`erasures.jsonl` in the data folder) that `reapply` applies again after a restore from an older
backup.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, bindparam, func, insert, or_, select, update

from perkflow.storage import tables as t

from .access import Principal
from .audit import record
from .crypto import DataKeys
from .masking import ERASE, EXPORT_FULL, FIELDS, REVEAL, masked, reason_problem
from .problems import FieldError, Problem, forbidden, invalid, not_found

REGISTER = "erasures.jsonl"


def _instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Subjects:
    def __init__(self, engine: Engine, keys: DataKeys, clock: Callable[[], datetime], data_dir: Path | None = None) -> None:
        self.engine, self.keys, self.clock, self.data_dir = engine, keys, clock, data_dir

    # --- reading -------------------------------------------------------------------------------

    def _row(self, conn: Connection, external_id: str, stores: frozenset[str] | None, *, lock: bool = False) -> RowMapping | None:
        query = select(t.members).where(t.members.c.external_id == external_id)
        row = conn.execute(query.with_for_update() if lock else query).mappings().first()
        if row is None or (stores is not None and row["home_store"] not in stores):
            return None
        return row

    def personal(self, row: RowMapping) -> dict[str, str | None]:
        """The row's personal data in full: the one place it is decrypted."""
        return {f: self.keys.decrypt(row[f"{f}_cipher"], row["key_id"], f) if row[f"{f}_cipher"] is not None else None for f in FIELDS}

    def profile(self, external_id: str, *, principal: Principal) -> dict[str, Any] | Problem:
        """A member's personal data, masked: what support staff, store managers and auditors see."""
        with self.engine.connect() as conn:
            row = self._row(conn, external_id, principal.stores)
        if row is None:
            return not_found("member", external_id)
        return {"id": external_id, "status": row["status"], "masked": True, **masked(self.personal(row))}

    def reveal(self, external_id: str, body: Any, *, principal: Principal) -> dict[str, Any] | Problem:
        """Some of a member's personal data in full, for a stated reason; audited."""
        if not principal.can(REVEAL):
            return forbidden(f"revealing personal data needs the scope {REVEAL}")
        if not isinstance(body, dict):
            return invalid("send {fields, reason}", [FieldError("", "wrong_type", "send a JSON object")], code="wrong_type")
        unknown = [k for k in body if k not in ("fields", "reason")]
        if unknown:
            return invalid(f"unknown field '{unknown[0]}'", [FieldError(f"/{k}", "unknown_field", f"unknown field '{k}'") for k in unknown], code="unknown_field")
        fields = body.get("fields", list(FIELDS))
        if not isinstance(fields, list) or not fields or any(f not in FIELDS for f in fields):
            return invalid("unknown field to reveal", [FieldError("/fields", "unknown_field", f"fields are some of: {', '.join(FIELDS)}")], code="unknown_field")
        if (bad := reason_problem(body.get("reason"))) is not None:
            return bad
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._row(conn, external_id, principal.stores)
            if row is None:
                return not_found("member", external_id)
            shown = {f: v for f, v in self.personal(row).items() if f in fields}
            record(conn, now, principal.name, "personal_data_revealed", external_id, {"fields": sorted(set(fields)), "reason": body["reason"]})
        return {"id": external_id, "masked": False, **shown}

    def export(self, external_id: str, body: Any, *, principal: Principal) -> dict[str, Any] | Problem:
        """Everything held on one member, as JSON, for a subject access request; audited."""
        if not principal.can(REVEAL):
            return forbidden(f"exporting a member's data needs the scope {REVEAL}")
        if (bad := reason_problem(body.get("reason") if isinstance(body, dict) else None)) is not None:
            return bad
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._row(conn, external_id, principal.stores)
            if row is None:
                return not_found("member", external_id)
            pk = row["id"]

            def rows(table: Any, *order: Any) -> list[dict[str, Any]]:
                found = conn.execute(select(table).where(table.c.member_id == pk).order_by(*order)).mappings().all()
                return [{k: (_instant(v) if isinstance(v, datetime) else v) for k, v in r.items() if k != "member_id"} for r in found]

            out = {
                "format": "perkflow-subject-export-v1",
                "exported_at": now.isoformat(),
                "member": {
                    "id": external_id, "status": row["status"], "home_store": row["home_store"], "joined_at": _instant(row["joined_at"]),
                    "locale": row["locale"], "tags": row["tags"], "attributes": row["attributes"], "tier": row["tier"],
                    "tier_since": _instant(row["tier_since"]), "counters": row["counters"], **self.personal(row),
                },
                "balances": rows(t.member_balances, t.member_balances.c.balance),
                "lots": rows(t.lots, t.lots.c.earned_at, t.lots.c.id),
                "ledger": rows(t.ledger, t.ledger.c.id),
                "coupons": rows(t.coupons, t.coupons.c.issued_at, t.coupons.c.id),
                "tier_history": rows(t.tier_history, t.tier_history.c.id),
                "events": [
                    {"id": r["id"], "type": r["type"], "occurred_at": r["occurred_at"], "body": r["body"], "decision": r["decision"]}
                    for r in rows(t.events, t.events.c.occurred_at, t.events.c.id)
                ],
                "messages": [
                    {"kind": m.kind, "event_id": m.event_id, "payload": m.payload, "created_at": _instant(m.created_at), "status": m.status}
                    for m in conn.execute(select(t.outbox).where(self._messages_of(pk)).order_by(t.outbox.c.id))
                ],
            }
            record(conn, now, principal.name, "member_data_exported", external_id, {"reason": body["reason"]})
        return out

    def export_members(self, *, principal: Principal, full: bool = False, reason: str | None = None) -> Iterator[dict[str, Any]] | Problem:
        """Every member's personal data, masked; in full only for an admin or finance principal
        with a reason (audited before the first row)."""
        if full:
            if not principal.can(EXPORT_FULL):
                return forbidden(f"a full export of personal data needs the scope {EXPORT_FULL} (admin or finance)")
            if (bad := reason_problem(reason)) is not None:
                return bad
            with self.engine.begin() as conn:
                record(conn, self.clock(), principal.name, "personal_data_exported", "members", {"reason": reason, "full": True})
        return self._export_rows(full, principal.stores)

    def _export_rows(self, full: bool, stores: frozenset[str] | None) -> Iterator[dict[str, Any]]:
        m = t.members
        query = select(m).where(m.c.status != "erased").order_by(m.c.id)
        if stores is not None:
            query = query.where(m.c.home_store.in_(sorted(stores)))
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=500).execute(query).mappings():
                personal = self.personal(row)
                yield {"external_id": row["external_id"], **(personal if full else masked(personal))}

    # --- erasure -------------------------------------------------------------------------------

    def _messages_of(self, pk: int) -> Any:
        # member_notification messages carry no member id column: found through their event
        return or_(t.outbox.c.member_id == pk, t.outbox.c.event_id.in_(select(t.events.c.id).where(t.events.c.member_id == pk)))

    def erase(self, external_id: str, body: Any, *, principal: Principal) -> dict[str, Any] | Problem:
        """Erase one member's personal data; the ledger and decisions stay under a pseudonym."""
        if not principal.can(ERASE):
            return forbidden(f"erasing a member needs the scope {ERASE}")
        if (bad := reason_problem(body.get("reason") if isinstance(body, dict) else None)) is not None:
            return bad
        now = self.clock()
        entries: list[dict[str, Any]] = []
        with self.engine.begin() as conn:
            row = self._row(conn, external_id, principal.stores, lock=True)
            if row is None:
                return not_found("member", external_id)
            # Members merged into this one are the same person: their rows are erased too.
            doomed, frontier = [(row["id"], external_id)], [row["id"]]
            while frontier:
                absorbed = conn.execute(select(t.members.c.id, t.members.c.external_id).where(t.members.c.merged_into.in_(frontier))).all()
                doomed += [(a.id, a.external_id) for a in absorbed]
                frontier = [a.id for a in absorbed]
            for pk, old_id in doomed:
                pseudonym = "erased-" + secrets.token_hex(8)
                _erase(conn, pk, old_id, pseudonym, self._messages_of(pk))
                conn.execute(insert(t.erasures).values(member_id=pk, pseudonym=pseudonym, erased_at=now))
                record(conn, now, principal.name, "member_erased", old_id, {"pseudonym": pseudonym, "reason": body["reason"]})
                entries.append({"member": pk, "pseudonym": pseudonym, "erased_at": now.isoformat()})
        if self.data_dir is not None:
            write_register(self.data_dir, entries)
        return {"id": entries[0]["pseudonym"], "erased": external_id, "status": "erased"}

    def register(self) -> list[dict[str, Any]]:
        """Every erasure known: the register file's and the database's, by member."""
        return read_register(self.engine, self.data_dir)

    def reapply(self, entries: list[dict[str, Any]], *, actor: str) -> int:
        """Erase again the members of `entries` that a restore brought back; the count erased."""
        done = 0
        now = self.clock()
        for entry in entries:
            pk, pseudonym = int(entry["member"]), str(entry["pseudonym"])
            with self.engine.begin() as conn:
                row = conn.execute(select(t.members).where(t.members.c.id == pk).with_for_update()).mappings().first()
                if conn.execute(select(t.erasures.c.member_id).where(t.erasures.c.member_id == pk)).first() is None:
                    conn.execute(insert(t.erasures).values(member_id=pk, pseudonym=pseudonym, erased_at=datetime.fromisoformat(entry["erased_at"])))
                if row is None or row["status"] == "erased":
                    continue
                _erase(conn, pk, row["external_id"], pseudonym, self._messages_of(pk))
                record(conn, now, actor, "erasure_reapplied", pseudonym, {"member": pk})
                done += 1
        if self.data_dir is not None:
            write_register(self.data_dir, entries)
        return done


def read_register(engine: Engine | None, data_dir: Path | None) -> list[dict[str, Any]]:
    """The erasures of the register file in `data_dir` and of the database's `erasures` table
    (when `engine` is given), one entry per member."""
    entries: dict[int, dict[str, Any]] = {}
    path = data_dir / REGISTER if data_dir is not None else None
    if path is not None and path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                entries[int(entry["member"])] = entry
    if engine is not None:
        with engine.connect() as conn:
            for r in conn.execute(select(t.erasures)):
                entries.setdefault(r.member_id, {"member": r.member_id, "pseudonym": r.pseudonym, "erased_at": _instant(r.erased_at)})
    return [entries[k] for k in sorted(entries)]


def write_register(data_dir: Path, entries: list[dict[str, Any]]) -> None:
    """Append to the register file the entries it does not hold yet."""
    data_dir.mkdir(parents=True, exist_ok=True)
    known = {int(e["member"]) for e in read_register(None, data_dir)}
    with (data_dir / REGISTER).open("a", encoding="utf-8") as handle:
        for entry in entries:
            if int(entry["member"]) not in known:
                handle.write(json.dumps(entry, sort_keys=True) + "\n")


_MEMBER_KEYS = frozenset({"member_id", "member", "id"})


def _rename(value: Any, old: str, new: str, key: str = "member_id") -> Any:
    """`value` with the member's id renamed: a string equal to it under a key that names a member,
    and a system id holding `:old:`."""
    if isinstance(value, str):
        return new if value == old and key in _MEMBER_KEYS else value.replace(f":{old}:", f":{new}:")
    if isinstance(value, list):
        return [_rename(v, old, new, key) for v in value]
    if isinstance(value, dict):
        return {k: _rename(v, old, new, k) for k, v in value.items()}
    return value


def _erase(conn: Connection, pk: int, external_id: str, pseudonym: str, messages: Any) -> None:
    m = t.members
    conn.execute(
        update(m).where(m.c.id == pk).values(
            external_id=pseudonym, status="erased", attributes={}, key_id=None,
            phone_cipher=None, phone_index=None, email_cipher=None, email_index=None, name_cipher=None,
            birthday_cipher=None, birthday_month=None, birthday_day=None,
        )
    )
    # System events' ids embed the member's id (expiry:<id>:<instant>): renamed with it.
    old, new = f":{external_id}:", f":{pseudonym}:"
    for table, columns in (
        (t.ledger, ("event_id",)), (t.lots, ("id", "source_event")), (t.earnings, ("event_id",)),
        (t.coupons, ("id", "source_event")), (t.tier_history, ("event_id",)),
    ):
        conn.execute(
            update(table).where(table.c.member_id == pk)
            .values({c: func.replace(table.c[c], bindparam("old", old), bindparam("new", new)) for c in columns}),
            {"old": old, "new": new},
        )
    outbox = conn.execute(select(t.outbox.c.id, t.outbox.c.status, t.outbox.c.event_id).where(messages)).all()
    for message in outbox:
        conn.execute(
            update(t.outbox).where(t.outbox.c.id == message.id).values(
                payload={"erased": True}, event_id=_rename(message.event_id, external_id, pseudonym),
                status="dead" if message.status == "pending" else message.status,
            )
        )
    if outbox:
        ids = [message.id for message in outbox]
        d = t.webhook_deliveries
        conn.execute(update(d).where(d.c.outbox_id.in_(ids)).values(last_error=""))
        conn.execute(update(d).where(d.c.outbox_id.in_(ids), d.c.status == "pending").values(status="dead"))
    for event in conn.execute(select(t.events.c.id, t.events.c.body, t.events.c.decision).where(t.events.c.member_id == pk)).all():
        conn.execute(
            update(t.events).where(t.events.c.id == event.id).values(
                id=_rename(event.id, external_id, pseudonym), external_member_id=pseudonym,
                body=_rename(event.body, external_id, pseudonym), decision=_rename(event.decision, external_id, pseudonym),
            )
        )
