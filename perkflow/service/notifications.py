"""Notifications: the `notify` messages of the outbox, rendered from the scheme's templates and
handed to a channel.

A template is text per language with `{name}` placeholders read from the decision's variables
(`<balance>_earned`, `<balance>`, `tier`; `amount` and `expires_at` for points_expiring). Only
plain names are replaced (no attribute or index access), and an unknown name stays as written.
The language is the member's `locale` (set by PUT /api/v1/members/{id}) when the template has
text in it, else the first the template lists.

Channels are pluggable (`Channel`): `log` writes one structured log line without personal data
(the member is not named), `webhook` publishes a `member_notification` webhook message for the
integrator's own SMS, e-mail or app push. A deployment adds an adapter by passing it in
`channels`. A message whose channel or template is unknown is marked dead.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, insert, select, update

from perkflow.storage import tables as t

from .problems import Problem
from .versions import Versions

log = logging.getLogger("perkflow.notifications")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
BATCH = 100


@dataclass(frozen=True)
class Notification:
    member_id: str  # the integrator's id of the member
    event_id: str
    template: str
    channel: str
    lang: str
    text: str
    variables: Mapping[str, Any]
    message_id: str = ""  # msg_<outbox id>: names the message in logs without naming the member


class Channel(Protocol):
    """Delivers one rendered notification; runs inside the outbox row's transaction, so raising
    leaves the message pending for the next run."""

    def send(self, conn: Connection, note: Notification, now: datetime) -> None: ...


class LogChannel:
    def send(self, conn: Connection, note: Notification, now: datetime) -> None:
        # neither the member nor the event (a system event's id holds the member's id) is named
        line = {"message": note.message_id, "template": note.template, "lang": note.lang, "text": note.text}
        log.info("notification %s", json.dumps(line, ensure_ascii=False, sort_keys=True))


class WebhookChannel:
    def send(self, conn: Connection, note: Notification, now: datetime) -> None:
        payload = {
            "member_id": note.member_id, "event_id": note.event_id, "template": note.template,
            "lang": note.lang, "text": note.text, "variables": dict(note.variables),
        }
        conn.execute(
            insert(t.outbox).values(
                kind="member_notification", member_id=None, event_id=note.event_id, payload=payload,
                created_at=now, next_attempt_at=now, status="pending", attempts=0,
            )
        )


def render(text: str, variables: Mapping[str, Any]) -> str:
    return _PLACEHOLDER.sub(lambda m: str(variables[m.group(1)]) if m.group(1) in variables else m.group(0), text)


class Notifier:
    def __init__(
        self, engine: Engine, versions: Versions, clock: Callable[[], datetime], channels: Mapping[str, Channel] | None = None
    ) -> None:
        self.engine, self.versions, self.clock = engine, versions, clock
        self.channels: dict[str, Channel] = {"log": LogChannel(), "webhook": WebhookChannel(), **(channels or {})}

    def run(self, *, limit: int = BATCH) -> tuple[int, int]:
        """Send the pending notifications: (sent, dead)."""
        o = t.outbox.c
        with self.engine.connect() as conn:
            ids = list(conn.execute(select(o.id).where(o.status == "pending", o.kind == "notification").order_by(o.id).limit(limit)).scalars())
        sent = dead = 0
        for outbox_id in ids:
            with self.engine.begin() as conn:
                row = conn.execute(select(t.outbox).where(o.id == outbox_id, o.status == "pending")).mappings().first()
                if row is None:
                    continue  # another worker took it
                now = self.clock()
                note = self._note(conn, row["payload"], row["event_id"], row["created_at"], f"msg_{outbox_id}")
                channel = self.channels.get(note.channel) if note is not None else None
                if note is None or channel is None:
                    conn.execute(update(t.outbox).where(o.id == outbox_id).values(status="dead", attempts=row["attempts"] + 1))
                    dead += 1
                    continue
                channel.send(conn, note, now)
                claimed = conn.execute(update(t.outbox).where(o.id == outbox_id, o.status == "pending").values(status="delivered", attempts=row["attempts"] + 1))
                if claimed.rowcount != 1:
                    conn.rollback()
                    continue
                sent += 1
        return sent, dead

    def _note(self, conn: Connection, payload: Mapping[str, Any], event_id: str, at: datetime, message_id: str) -> Notification | None:
        program = self.versions.in_force(conn, at)
        if isinstance(program, Problem):
            return None
        template = program.scheme.templates.get(payload.get("template") or "")
        if template is None or not template.text:
            return None
        member = str(payload.get("member", ""))
        locale = conn.execute(select(t.members.c.locale).where(t.members.c.external_id == member)).scalar() if member else None
        if locale is not None and locale in template.text:
            lang, text = locale, template.text[locale]
        else:
            lang, text = next(iter(template.text.items()))
        variables = payload.get("variables") or {}
        return Notification(
            member, event_id, payload["template"], str(payload.get("channel") or "log"), lang,
            render(text, variables), variables, message_id,
        )
