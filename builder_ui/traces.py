"""Showing stored text and decisions: always as text (a label), never as markup."""

from __future__ import annotations

import json
from typing import Any

from nicegui import ui

from .i18n import tr


def trace_list(decision: dict[str, Any], lang: str) -> None:
    """A decision as people read it: each rule fired or skipped, and why; then the effects."""
    ui.label(tr("trace", lang)).classes("text-subtitle2")
    with ui.column().classes("gap-0").mark("trace"):
        for step in decision.get("trace", []):
            fired = step["outcome"] == "fired"
            word = tr("fired", lang) if fired else tr("skipped", lang)
            why = f" · {step['reason']}" if step.get("reason") else ""
            read = f" · {json.dumps(step['read'], ensure_ascii=False)}" if step.get("read") else ""
            detail = f" · {step['detail']}" if step.get("detail") else ""
            ui.label(f"{'✔' if fired else '✘'} {step['rule']}: {word}{why}{read}{detail}").classes("text-positive" if fired else "text-grey-8")
    ui.label(tr("effects", lang)).classes("text-subtitle2")
    with ui.column().classes("gap-0").mark("effects"):
        for effect in decision.get("effects", []):
            ui.label(json.dumps(effect, ensure_ascii=False))
    if rejection := decision.get("rejection"):
        ui.label(f"{rejection['code']}: {rejection['message']}").classes("text-negative")


def preformatted(text: str) -> ui.label:
    """YAML, JSON or a diff, laid out as typed. A label, not ui.code: ui.code renders Markdown, and
    a scheme's text could close the code fence and smuggle markup in."""
    return ui.label(text).classes("w-full font-mono text-xs whitespace-pre-wrap bg-grey-2 q-pa-sm rounded-borders")
