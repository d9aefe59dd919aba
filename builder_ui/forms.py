"""Forms for the whole scheme language, generated from its JSON Schema (itself from rules/models.py).

A field added to the language appears here with its label, hint, choices and bounds, and without a
second copy of its rules: the form edits a plain JSON document, and every check is the loader's
(`perkflow validate`), whose located errors (rules[0].when) are shown next to the field they name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

from perkflow.rules.errors import SchemeError, format_path
from perkflow.rules.schema import json_schema

from .hints_zh import HINTS_ZH
from .i18n import error_text, field_label, tr

Path = tuple[str | int, ...]
Container = dict[str, Any] | list[Any]
_SKIP = {"perkflow"}  # the language version: fixed, not edited


def _is_null(node: dict[str, Any]) -> bool:
    return node.get("type") == "null"


class SchemeForm:
    """Renders parts of one scheme document and writes every edit back into it."""

    def __init__(self, data: dict[str, Any], locale: str, on_change: Callable[[], None], *, read_only: bool = False) -> None:
        self.schema = json_schema()
        self.defs: dict[str, Any] = self.schema["$defs"]
        self.data, self.locale, self.on_change, self.read_only = data, locale, on_change, read_only
        self.widgets: dict[str, Any] = {}  # path -> element with .error
        self.notes: dict[str, ui.label] = {}  # path -> label for errors about a whole object or list
        self._sections: dict[str, Callable[[], None]] = {}

    # --- public ----------------------------------------------------------------------------------

    def section(self, keys: list[str]) -> None:
        """Render these top-level properties of the scheme (a tab of the editor)."""

        @ui.refreshable
        def body() -> None:
            for table in (self.widgets, self.notes):
                for path in [p for p in table if _top(p) in keys]:
                    del table[path]  # redrawn below
            props = self.schema["properties"]
            for key in keys:
                self._field(self.data, key, props[key], (key,), key in self.schema.get("required", []), owner="Scheme")

        body()
        for key in keys:
            self._sections[key] = body.refresh

    def label_of(self, key: str) -> str:
        """The label of a top-level part of the scheme, in the editor's language."""
        return self._label(key, self.schema["properties"][key])

    def show_errors(self, errors: list[SchemeError]) -> list[SchemeError]:
        """Put each error next to its field; the ones no field can hold are returned."""
        for widget in self.widgets.values():
            widget.error = None
        for note in self.notes.values():
            note.set_text("")
            note.set_visibility(False)
        loose = []
        for err in errors:
            text = error_text(err.code, err.message, self.locale)
            if (widget := self.widgets.get(err.path)) is not None:
                widget.error = text
            elif (note := self._note_for(err.path)) is not None:
                note.set_text((note.text + "\n" if note.text else "") + text)
                note.set_visibility(True)
            else:
                loose.append(err)
        return loose

    # --- rendering -------------------------------------------------------------------------------

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            extra = {k: v for k, v in node.items() if k != "$ref"}
            name = node["$ref"].rsplit("/", 1)[-1]
            node = {**self.defs[name], "x-def": name, **extra}  # x-def: the model, for its Chinese hints
        return node

    def _label(self, name: str | int, node: dict[str, Any]) -> str:
        english = node.get("title") or str(name).replace("_", " ").capitalize()
        return field_label(str(name), english, self.locale) if isinstance(name, str) else english

    def _changed(self, refresh_of: Path | None = None) -> None:
        self.on_change()
        if refresh_of is not None:
            self._sections[str(refresh_of[0])]()

    def _set(self, container: Container, key: str | int, value: Any) -> None:
        if isinstance(container, dict):
            if value is None:
                container.pop(str(key), None)
            else:
                container[str(key)] = value
        else:
            container[int(key)] = value
        self._changed()

    def _note_for(self, path: str) -> ui.label | None:
        while True:
            if path in self.notes:
                return self.notes[path]
            cut = max(path.rfind("."), path.rfind("["))
            if cut <= 0:
                return None
            path = path[:cut]

    def _field(self, container: Container, key: str | int, node: dict[str, Any], path: Path, required: bool, owner: str | None = None) -> None:
        if key in _SKIP:
            return
        node = self._resolve(node)
        value = container.get(str(key)) if isinstance(container, dict) else container[int(key)]
        label = self._label(key, node)
        hint = node.get("description", "")
        if self.locale == "zh-CN" and owner is not None:
            hint = HINTS_ZH.get(f"{owner}.{key}", hint)
        if "default" in node and node["default"] not in (None, [], {}) and not isinstance(node["default"], dict | list):
            hint = f"{hint} ({tr('default', self.locale)}: {node['default']})".strip()
        if node.get("x-perkflow") == "text":
            self._text(container, key, value, label, path)
            return
        options = node.get("anyOf") or node.get("oneOf")
        if options:
            real = [self._resolve(o) for o in options if not _is_null(o)]
            if len(real) < len(options) and len(real) == 1:  # optional
                inner = {**real[0], **{k: v for k, v in node.items() if k in ("title", "description", "default")}}
                if self._is_compound(inner):
                    self._optional_compound(container, key, value, inner, path, label)
                else:
                    self._field(container, key, inner, path, False, owner)
                return
            if all(o.get("type") == "object" and "properties" in o for o in real):
                self._union(container, key, value, real, path, label)
                return
            if {o.get("type") for o in real} == {"number", "string"}:  # a decimal: a number, or its text
                number = next(o for o in real if o.get("type") == "number")
                self._field_scalar(container, key, value, {**node, **number}, path, label, hint)
                return
            self._loose_scalar(container, key, value, path, label, hint)  # number-or-text, as in benefits
            return
        if self._is_compound(node):
            self._compound(container, key, value, node, path, label, required)
            return
        self._field_scalar(container, key, value, node, path, label, hint)

    def _is_compound(self, node: dict[str, Any]) -> bool:
        node = self._resolve(node)
        return node.get("type") in ("object", "array") and not (node.get("type") == "array" and self._scalar_items(node))

    def _scalar_items(self, node: dict[str, Any]) -> bool:
        items = self._resolve(node.get("items", {}))
        return items.get("type") in ("string", "integer", "number")

    def _compound(self, container: Container, key: str | int, value: Any, node: dict[str, Any], path: Path, label: str, required: bool) -> None:
        if node.get("type") == "array":
            self._list(container, key, value, node, path, label)
        elif "properties" in node:
            if value is None:
                value = {}
                if isinstance(container, dict):
                    container[str(key)] = value
            self._object(value, node, path, label)
        else:
            self._mapping(container, key, value, node, path, label)

    def _object(self, value: dict[str, Any], node: dict[str, Any], path: Path, label: str) -> None:
        with ui.card().classes("w-full q-pa-sm").props("flat bordered"):
            ui.label(label).classes("text-subtitle2 text-primary")
            self._note(path)
            required = node.get("required", [])
            for name, sub in node.get("properties", {}).items():
                self._field(value, name, sub, (*path, name), name in required, node.get("x-def"))

    def _note(self, path: Path) -> None:
        note = ui.label("").classes("text-negative text-caption whitespace-pre-line")
        note.set_visibility(False)
        self.notes[format_path(path)] = note

    def _optional_compound(self, container: Container, key: str | int, value: Any, node: dict[str, Any], path: Path, label: str) -> None:
        if value is None:
            with ui.row().classes("items-center"):
                ui.label(label).classes("text-caption")
                if not self.read_only:
                    _address(ui.button(f"{tr('add', self.locale)} {label}", icon="add", on_click=lambda: self._start(container, key, node, path)).props("flat dense no-caps"), "add", path)
            return
        with ui.column().classes("w-full gap-0"):
            self._compound(container, key, value, node, path, label, False)
            if not self.read_only:
                ui.button(f"{tr('remove', self.locale)} {label}", icon="delete", on_click=lambda: self._drop(container, key, path)).props("flat dense no-caps color=negative")

    def _start(self, container: Container, key: str | int, node: dict[str, Any], path: Path) -> None:
        self._set(container, key, [] if node.get("type") == "array" else {})
        self._changed(path)

    def _drop(self, container: Container, key: str | int, path: Path) -> None:
        if isinstance(container, dict):
            container.pop(str(key), None)
        else:
            del container[int(key)]
        self._changed(path)

    def _list(self, container: Container, key: str | int, value: Any, node: dict[str, Any], path: Path, label: str) -> None:
        items = value if isinstance(value, list) else []
        if not isinstance(value, list) and isinstance(container, dict):
            container[str(key)] = items
        item_node = self._resolve(node.get("items", {}))
        with ui.expansion(f"{label} ({len(items)})", value=True).classes("w-full").props("dense header-class=text-subtitle2"):
            self._note(path)
            for i in range(len(items)):
                with ui.row().classes("w-full items-start no-wrap"):
                    with ui.column().classes("grow gap-1"):
                        self._field(items, i, {**item_node, "title": _item_title(items[i], i, item_node)}, (*path, i), True)
                    if not self.read_only:
                        ui.button(icon="delete", on_click=lambda i=i: self._drop(items, i, path)).props("flat round dense color=negative").tooltip(tr("remove", self.locale))
            if not self.read_only:
                self._adder(items, item_node, path, label)

    def _adder(self, items: list[Any], item_node: dict[str, Any], path: Path, label: str) -> None:
        options = [self._resolve(o) for o in item_node.get("oneOf") or item_node.get("anyOf") or []]
        if options:
            names = {self._tag(o): o for o in options}
            with ui.row().classes("items-center"):
                pick = ui.select(list(names), label=tr("kind", self.locale), value=next(iter(names))).props("dense outlined").classes("min-w-[12rem]")
                _address(pick, "addkind", path)
                add = ui.button(f"{tr('add', self.locale)}", icon="add", on_click=lambda: self._append(items, self._blank(names[pick.value], pick.value), path)).props("flat dense no-caps")
                _address(add, "add", path)
            return
        add = ui.button(f"{tr('add', self.locale)} {label}", icon="add", on_click=lambda: self._append(items, self._blank(item_node, None), path)).props("flat dense no-caps")
        _address(add, "add", path)

    def _append(self, items: list[Any], value: Any, path: Path) -> None:
        items.append(value)
        self._changed(path)

    def _tag(self, node: dict[str, Any]) -> str:
        """What tells members of a union apart: a `kind` constant, or the one key of an action."""
        props = node.get("properties", {})
        if "kind" in props and "const" in self._resolve(props["kind"]):
            return str(self._resolve(props["kind"])["const"])
        return next(iter(props), node.get("title", "?"))

    def _blank(self, node: dict[str, Any], tag: str | None) -> Any:
        node = self._resolve(node)
        if node.get("type") != "object":
            return "" if node.get("type") == "string" else 0
        props = node.get("properties", {})
        if tag is not None and "kind" in props:
            return {"kind": tag}
        if tag is not None and tag in props:  # an action: {award: {...}}
            inner = self._resolve(props[tag])
            return {tag: {} if inner.get("type") == "object" else ""}
        return {}

    def _union(self, container: Container, key: str | int, value: Any, options: list[dict[str, Any]], path: Path, label: str) -> None:
        names = {self._tag(o): o for o in options}
        current = next((t for t, o in names.items() if isinstance(value, dict) and (value.get("kind") == t or t in value)), None)
        with ui.card().classes("w-full q-pa-sm").props("flat bordered"):
            with ui.row().classes("items-center"):
                ui.label(label).classes("text-subtitle2 text-primary")

                def switch(e: Any) -> None:
                    self._set(container, key, self._blank(names[e.value], e.value))
                    self._changed(path)

                kind = ui.select(list(names), value=current, label=tr("kind", self.locale), on_change=switch).props("dense outlined").classes("min-w-[12rem]")
                kind.set_enabled(not self.read_only)
                _address(kind, "kind", path)
            self._note(path)
            if current is not None and isinstance(value, dict):
                node = names[current]
                props = node.get("properties", {})
                if "kind" in props:
                    for name, sub in props.items():
                        if name != "kind":
                            self._field(value, name, sub, (*path, name), name in node.get("required", []), node.get("x-def"))
                else:
                    self._field(value, current, props[current], (*path, current), True, node.get("x-def"))

    def _mapping(self, container: Container, key: str | int, value: Any, node: dict[str, Any], path: Path, label: str) -> None:
        entries = value if isinstance(value, dict) else {}
        if not isinstance(value, dict) and isinstance(container, dict):
            container[str(key)] = entries
        value_node = node.get("additionalProperties") or next(iter(node.get("patternProperties", {}).values()), {"type": "string"})
        value_node = self._resolve(value_node) if isinstance(value_node, dict) else {"type": "string"}
        keys_enum = (node.get("propertyNames") or {}).get("enum")
        with ui.expansion(f"{label} ({len(entries)})", value=True).classes("w-full").props("dense header-class=text-subtitle2"):
            self._note(path)
            for name in list(entries):
                with ui.row().classes("w-full items-start no-wrap"):
                    with ui.column().classes("grow gap-1"):
                        if self._is_compound(value_node) or value_node.get("anyOf") and any(self._is_compound(o) for o in value_node["anyOf"]):
                            ui.label(name).classes("text-bold font-mono")
                            self._field(entries, name, value_node, (*path, name), True)
                        else:
                            self._field(entries, name, {**value_node, "title": name}, (*path, name), True)
                    if not self.read_only:
                        ui.button(icon="delete", on_click=lambda name=name: self._drop(entries, name, path)).props("flat round dense color=negative").tooltip(tr("remove", self.locale))
            if not self.read_only:
                with ui.row().classes("items-center"):
                    if keys_enum:
                        new = ui.select(keys_enum, label=tr("new_key", self.locale)).props("dense outlined").classes("min-w-[10rem]")
                    else:
                        new = ui.input(tr("new_key", self.locale)).props("dense outlined")

                    def add() -> None:
                        name = str(new.value or "").strip()
                        if name and name not in entries:
                            entries[name] = self._blank(value_node, None)
                            self._changed(path)

                    _address(new, "newkey", path)
                    _address(ui.button(f"{tr('add', self.locale)} {label}", icon="add", on_click=add).props("flat dense no-caps"), "add", path)

    # --- scalars ---------------------------------------------------------------------------------

    def _register(self, widget: Any, path: Path) -> Any:
        widget.without_auto_validation()  # the loader validates; NiceGUI would clear its errors
        self.widgets[format_path(path)] = widget
        _address(widget, "path", path)
        if self.read_only:
            widget.props("readonly")
        return widget

    def _field_scalar(self, container: Container, key: str | int, value: Any, node: dict[str, Any], path: Path, label: str, hint: str) -> None:
        kind = node.get("type")
        choices = node.get("enum") or ([node["const"]] if "const" in node else None)
        item_choices = self._resolve(node.get("items", {})).get("enum") if kind == "array" else None
        if item_choices:  # of fixed names (audience segments): pick any of them
            widget = ui.select(list(item_choices), label=label, value=list(value or []), multiple=True, clearable=True, on_change=lambda e: self._set(container, key, list(e.value or []) or None))
            widget.props("use-chips")
        elif kind == "array":  # of names or text: chips
            widget = ui.input_chips(label, value=list(value or []), new_value_mode="add-unique", on_change=lambda e: self._set(container, key, list(e.value) or None))
        elif choices:
            widget = ui.select(list(choices), label=label, value=value, clearable=True, on_change=lambda e: self._set(container, key, e.value))
        elif kind == "boolean":
            default = node.get("default", False)
            switch = ui.switch(label, value=default if value is None else bool(value), on_change=lambda e: self._set(container, key, e.value))
            switch.set_enabled(not self.read_only)
            _address(switch, "path", path)
            return
        elif kind in ("integer", "number"):
            def number(e: Any) -> None:
                if e.value is None or e.value == "":
                    self._set(container, key, None)
                else:
                    self._set(container, key, int(e.value) if kind == "integer" else float(e.value))

            widget = ui.number(label, value=value, on_change=number, precision=0 if kind == "integer" else None)
        else:
            expression = node.get("x-perkflow") == "expression"
            widget = ui.input(label, value="" if value is None else str(value), on_change=lambda e: self._set(container, key, e.value if e.value != "" else None))
            if expression:
                widget.classes("font-mono").props("spellcheck=false")
            elif node.get("format") in ("date", "date-time"):
                widget.props(f"placeholder={'2026-12-01' if node['format'] == 'date' else '2026-12-01T00:00:00'}")
        widget.classes("w-full").props("dense outlined")
        if hint:
            widget.props["hint"] = hint
        self._register(widget, path)

    def _loose_scalar(self, container: Container, key: str | int, value: Any, path: Path, label: str, hint: str) -> None:
        """A value that may be a number, true/false or text (a tier benefit): typed as text, read back as the value it looks like."""

        def parse(text: Any) -> Any:
            text = str(text or "").strip()
            if text in ("true", "false"):
                return text == "true"
            try:
                return int(text)
            except ValueError:
                pass
            try:
                return float(text)
            except ValueError:
                return text or None

        shown = "" if value is None else ("true" if value is True else "false" if value is False else str(value))
        widget = ui.input(label, value=shown, on_change=lambda e: self._set(container, key, parse(e.value)))
        widget.classes("w-full").props("dense outlined")
        self._register(widget, path)

    def _text(self, container: Container, key: str | int, value: Any, label: str, path: Path) -> None:
        """Text for people: one box per language; a plain string stays a plain string until the
        Chinese box is filled."""
        en = value if isinstance(value, str) else (value or {}).get("en", "")
        zh = (value or {}).get("zh-CN", "") if isinstance(value, dict) else ""
        boxes: dict[str, Any] = {}

        def write() -> None:
            e, z = boxes["en"].value or "", boxes["zh"].value or ""
            self._set(container, key, (e or None) if not z else ({"en": e, "zh-CN": z} if e else {"zh-CN": z}))

        with ui.row().classes("w-full no-wrap"):
            boxes["en"] = ui.input(f"{label} · {tr('text_en', self.locale)}", value=en, on_change=write).classes("grow").props("dense outlined")
            boxes["zh"] = ui.input(f"{label} · {tr('text_zh', self.locale)}", value=zh, on_change=write).classes("grow").props("dense outlined")
        self._register(boxes["en"], path)
        _address(boxes["zh"], "zh", path)
        if self.read_only:
            boxes["zh"].props("readonly")


def _item_title(value: Any, index: int, node: dict[str, Any]) -> str:
    """A list item's heading: its id or kind when it has one, else its place in the list."""
    if isinstance(value, dict):
        for key in ("id", "kind"):
            if isinstance(value.get(key), str) and value[key]:
                return f"#{index + 1} · {value[key]}"
    return f"#{index + 1}"


def _address(element: Any, role: str, path: Path) -> Any:
    """Name an element by what it edits, for tests: a NiceGUI marker (`path:rules[0].when`) and,
    for the browser, a data attribute on the element (`data-path="rules[0].when"`)."""
    where = format_path(path)
    element.mark(f"{role}:{where}")
    element.props[f"data-{role}"] = where
    return element


def _top(path: str) -> str:
    """The top-level part of the scheme a path is in: rules[0].when -> rules."""
    for i, char in enumerate(path):
        if char in ".[":
            return path[:i]
    return path
