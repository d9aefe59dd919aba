"""Opening balances (期初导入): members moving from another system, from JSON Lines or CSV.

One member a record: their profile (personal data encrypted like any PUT), their lots with expiry
dates (and stored value's parts), their tier with the day it was reached, and their unused
coupons. Each record becomes one `opening` event, id `opening:<member>`, checked whole by the
engine (engine/opening.py) before anything is written, so a refused member leaves nothing
behind; a record imported before with the same content is counted as already there.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from perkflow.engine import evaluate, new_member, parse_event
from perkflow.engine.events import parse_instant
from perkflow.storage import tables as t

from .core import Service
from .events import Applied, body_hash
from .problems import Problem

PROFILE = ("home_store", "phone", "email", "name", "birthday", "locale", "tags")
CSV_COLUMNS = (
    "member_id", "record", "as_of", "home_store", "phone", "email", "name", "birthday", "tier", "tier_reached_at",
    "balance", "part", "amount", "earned_at", "expires_at", "policy", "valid_from", "valid_until", "code",
)


@dataclass(frozen=True)
class Refusal:
    line: int
    member_id: str | None
    code: str
    message: str
    pointer: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "member_id": self.member_id, "code": self.code, "message": self.message, "pointer": self.pointer}


@dataclass
class OpeningReport:
    accepted: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": len(self.accepted), "already_there": len(self.already), "refused": [r.to_dict() for r in self.refused]}


def read_jsonl(text: str) -> Iterator[tuple[int, Any]]:
    """(line number, record) for each non-blank line; a line that is not JSON is its error text."""
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except ValueError as exc:
                yield number, f"not JSON: {exc.msg}"


def read_csv(text: str) -> Iterator[tuple[int, Any]]:
    """Records from CSV rows (columns CSV_COLUMNS; `record` is member, lot or coupon), grouped by
    member in the order they first appear; a record's line is its `member` row's."""
    rows = csv.DictReader(io.StringIO(text))
    members: dict[str, tuple[int, dict[str, Any]]] = {}
    for number, row in enumerate(rows, 2):
        cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
        member_id, kind = cells.get("member_id", ""), cells.get("record", "")
        if not member_id or kind not in ("member", "lot", "coupon"):
            yield number, "a row needs member_id and record (member, lot or coupon)"
            continue
        line, record = members.setdefault(member_id, (number, {"member_id": member_id, "lots": [], "coupons": []}))
        if kind == "member":
            members[member_id] = (number, record)
            for name in ("as_of", *PROFILE[:-1], "tier", "tier_reached_at"):
                if cells.get(name):
                    record[name] = cells[name]
        elif kind == "lot":
            amount = cells.get("amount", "")
            lot: dict[str, Any] = {"balance": cells.get("balance"), "amount": int(amount) if amount.lstrip("-").isdigit() else amount}
            lot |= {k: cells[k] for k in ("part", "earned_at", "expires_at") if cells.get(k)}
            record["lots"].append(lot)
        else:
            record["coupons"].append({k: cells[k] for k in ("policy", "valid_from", "valid_until", "code") if cells.get(k)})
    yield from ((line, record) for line, record in members.values())


def opening_event(record: dict[str, Any]) -> dict[str, Any]:
    """The `opening` event of a record: what the engine checks and the ledger keeps."""
    content = {k: record[k] for k in ("lots", "coupons", "tier", "tier_reached_at") if record.get(k)}
    return {
        "id": f"opening:{record['member_id']}",
        "type": "opening",
        "member_id": record["member_id"],
        "occurred_at": record.get("as_of"),
        "channel": "import",
        "attributes": {"data": json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))},
    }


def import_opening(service: Service, records: Iterable[tuple[int, Any]], *, actor: str) -> OpeningReport:
    report = OpeningReport()
    for line, record in records:
        member_id = record.get("member_id") if isinstance(record, dict) else None
        outcome = _import_one(service, record, actor) if isinstance(member_id, str) and member_id else None
        if outcome is None:
            why = record if isinstance(record, str) else "a record is a JSON object with a member_id"
            report.refused.append(Refusal(line, None, "wrong_type", why))
        elif isinstance(outcome, Refusal):
            report.refused.append(Refusal(line, member_id, outcome.code, outcome.message, outcome.pointer))
        elif outcome == "already":
            report.already.append(member_id)  # type: ignore[arg-type]
        else:
            report.accepted.append(member_id)  # type: ignore[arg-type]
    return report


def _import_one(service: Service, record: dict[str, Any], actor: str) -> str | Refusal:
    member_id = record["member_id"]
    unknown = sorted(set(record) - {"member_id", "as_of", "lots", "coupons", "tier", "tier_reached_at", *PROFILE})
    if unknown:
        return Refusal(0, member_id, "unknown_field", f"unknown field '{unknown[0]}'", f"/{unknown[0]}")
    as_of = parse_instant(record.get("as_of"))
    if as_of is None:
        return Refusal(0, member_id, "wrong_type", "as_of is the instant the balances stand at, with an offset", "/as_of")
    raw = opening_event(record)
    with service.engine.connect() as conn:
        stored = conn.execute(select(t.events.c.body_hash).where(t.events.c.id == raw["id"])).scalar()
        if stored is not None:
            if stored == body_hash(raw):
                return "already"
            return Refusal(0, member_id, "event_id_reused", "the member was opened before with other content", "")
        history = conn.execute(select(t.members.c.last_event_at).where(t.members.c.external_id == member_id)).scalar()
        program = service.versions.in_force(conn, as_of)
    if isinstance(program, Problem):
        return Refusal(0, member_id, program.code, program.detail, "")
    if history is not None:
        return Refusal(0, member_id, "member_has_history", "the member already has events: an opening comes first", "/member_id")
    # Checked whole by the engine on a fresh member before anything is written.
    event, errors = parse_event(raw, program.event_types)
    if event is None:
        return Refusal(0, member_id, errors[0].code, errors[0].message, errors[0].pointer)
    trial = evaluate(program, new_member(member_id, as_of, tier=program.lowest_tier()), event, trace=False)
    if trial.rejection is not None:
        r = trial.rejection
        return Refusal(0, member_id, r.code, r.message, r.pointer.replace("/attributes/data", ""))
    profile = {k: record[k] for k in PROFILE if record.get(k) is not None}
    put = service.members.put(member_id, profile, actor=actor)
    if isinstance(put, Problem):
        first = put.errors[0] if put.errors else None
        return Refusal(0, member_id, first.code if first else put.code, first.message if first else put.detail, first.pointer if first else "")
    applied = service.events.post(raw, source="import", audit=(actor, "opening_imported", member_id, {"event": raw["id"]}))
    if isinstance(applied, Problem):
        return Refusal(0, member_id, applied.code, applied.detail, "")
    return "accepted" if isinstance(applied, Applied) and applied.status == 201 else "already"
