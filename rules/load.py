"""Loading a scheme from YAML or JSON, one file or a folder, with every error located.

`load(path)` and `loads(text, filename)` never raise for bad input: they return the scheme (or
None) and *all* the errors found, each with file, line, column and field path.

YAML is read with two traps removed (pinned by tests): YAML 1.1 reads a bare `on:` key, and
`yes`/`no`/`off`, as booleans, and dates as date objects. Here only `true`/`false` are booleans,
dates stay text for the models to parse, and decimal numbers load as `Decimal` from their source
text, never through a float. Duplicate keys are errors.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .errors import SchemeError, format_path
from .models import Scheme

Loc = tuple[str | int, ...]
_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DROPPED = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp"}


class _SchemeLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    pass


_SchemeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_SchemeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal | str:
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    return value if value.is_finite() else text


_SchemeLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


@dataclass
class SourceMap:
    """Where each value of the loaded data came from: path -> (file, line, column)."""

    values: dict[Loc, tuple[str, int, int]] = field(default_factory=dict)
    keys: dict[Loc, tuple[str, int, int]] = field(default_factory=dict)
    # Column of the first character of a scalar's text, for pointing inside expressions.
    text_start: dict[Loc, tuple[str, int, int]] = field(default_factory=dict)

    def locate(self, loc: Loc, *, prefer_key: bool = False) -> tuple[str, int, int]:
        """The place of `loc`, or of its nearest ancestor that is in the file."""
        probe = loc
        while True:
            if prefer_key and probe in self.keys:
                return self.keys[probe]
            if probe in self.values:
                return self.values[probe]
            if not probe:
                return ("", 0, 0)
            probe = probe[:-1]


@dataclass
class Loaded:
    scheme: Scheme | None
    errors: list[SchemeError]
    source: SourceMap
    warnings: list[SchemeError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.scheme is not None and not self.errors


def load(path: str | Path) -> Loaded:
    """Load a scheme file (.yaml, .yml, .json) or a folder of them."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json") and p.is_file())
        if not files:
            return _failed(str(path), "empty_folder", "the folder holds no .yaml, .yml or .json file")
        parts = []
        for file in files:
            data, source, errors = parse_document(_read(file), str(file))
            if errors:
                return Loaded(None, errors, source)
            parts.append((str(file), data, source))
        data, source, errors = _merge(parts)
        if errors:
            return Loaded(None, errors, source)
        return _validate(data, source)
    if not path.exists():
        return _failed(str(path), "file_not_found", f"no such file: {path}")
    return loads(_read(path), str(path))


def loads(text: str, filename: str = "<scheme>") -> Loaded:
    """Load a scheme from YAML or JSON text."""
    data, source, errors = parse_document(text, filename)
    if errors:
        return Loaded(None, errors, source)
    return _validate(data, source)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return "\x00" + f"not UTF-8 text: {exc}"


def _failed(file: str, code: str, message: str) -> Loaded:
    return Loaded(None, [SchemeError(code, message, file, 0, 0, "")], SourceMap())


def parse_document(text: str, filename: str) -> tuple[Any, SourceMap, list[SchemeError]]:
    """Parse YAML/JSON text into plain data and a source map."""
    source = SourceMap()
    if text.startswith("\x00"):
        return None, source, [SchemeError("not_text", text[1:], filename, 0, 0, "")]
    loader = _SchemeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or exc.context or "cannot be parsed"
        return None, source, [SchemeError("syntax_error", f"not valid YAML or JSON: {problem}", filename, line, column, "")]
    except yaml.YAMLError as exc:
        return None, source, [SchemeError("syntax_error", f"not valid YAML or JSON: {exc}", filename, 0, 0, "")]
    finally:
        loader.dispose()
    if node is None:
        return None, source, [SchemeError("empty_file", "the file is empty", filename, 1, 1, "")]
    errors: list[SchemeError] = []
    data = _build(loader, node, (), filename, source, errors)
    return data, source, errors


def _mark(filename: str, node: yaml.Node) -> tuple[str, int, int]:
    return (filename, node.start_mark.line + 1, node.start_mark.column + 1)


def _build(
    loader: Any, node: yaml.Node, loc: Loc, filename: str, source: SourceMap, errors: list[SchemeError]
) -> Any:
    source.values[loc] = _mark(filename, node)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                errors.append(SchemeError("bad_key", "a key must be plain text", *_mark(filename, key_node), format_path(loc)))
                continue
            try:
                key = loader.construct_object(key_node)
            except yaml.YAMLError:
                key = str(key_node.value)
            if not isinstance(key, str | int) or isinstance(key, bool):
                key = str(key)
            if key in result:
                first = source.keys[(*loc, key)]
                errors.append(
                    SchemeError(
                        "duplicate_key",
                        f"'{key}' is given twice; the first is at line {first[1]}",
                        *_mark(filename, key_node),
                        format_path((*loc, key)),
                    )
                )
                continue
            source.keys[(*loc, key)] = _mark(filename, key_node)
            result[key] = _build(loader, value_node, (*loc, key), filename, source, errors)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*loc, i), filename, source, errors) for i, item in enumerate(node.value)]
    style_offset = 1 if isinstance(node, yaml.ScalarNode) and node.style in ("'", '"') else 0
    source.text_start[loc] = (filename, node.start_mark.line + 1, node.start_mark.column + 1 + style_offset)
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        errors.append(SchemeError("bad_value", f"this value cannot be read: {problem}", *_mark(filename, node), format_path(loc)))
        return None


def _merge(parts: list[tuple[str, Any, SourceMap]]) -> tuple[Any, SourceMap, list[SchemeError]]:
    """Merge the files of a folder: mappings by key, lists one after the other."""
    merged: dict[str, Any] = {}
    source = SourceMap()
    errors: list[SchemeError] = []
    for filename, data, part_source in parts:
        if not isinstance(data, dict):
            errors.append(SchemeError("not_a_mapping", "each file of a scheme folder must be a mapping", filename, 1, 1, ""))
            continue
        for key, value in data.items():
            shift: dict[Loc, Loc] = {}
            if key not in merged:
                merged[key] = value
                shift[(key,)] = (key,)
            elif isinstance(value, list) and isinstance(merged[key], list):
                offset = len(merged[key])
                merged[key] = merged[key] + value
                for i in range(len(value)):
                    shift[(key, i)] = (key, i + offset)
            elif isinstance(value, dict) and isinstance(merged[key], dict):
                for sub in value:
                    if sub in merged[key]:
                        first = source.keys.get((key, sub), ("", 0, 0))
                        errors.append(
                            SchemeError(
                                "duplicate_key",
                                f"'{key}.{sub}' is also defined in {first[0]} at line {first[1]}",
                                *part_source.keys.get((key, sub), (filename, 0, 0)),
                                format_path((key, sub)),
                            )
                        )
                    else:
                        merged[key][sub] = value[sub]
                        shift[(key, sub)] = (key, sub)
            else:
                first = source.keys.get((key,), ("", 0, 0))
                errors.append(
                    SchemeError(
                        "duplicate_key",
                        f"'{key}' is also given in {first[0]} at line {first[1]}",
                        *part_source.keys.get((key,), (filename, 0, 0)),
                        key,
                    )
                )
            for table_name in ("values", "keys", "text_start"):
                table, target = getattr(part_source, table_name), getattr(source, table_name)
                for loc, where in table.items():
                    for old, new in shift.items():
                        if loc[: len(old)] == old:
                            target[new + loc[len(old) :]] = where
                            break
    return merged, source, errors


# --- validation --------------------------------------------------------------------------------


def _field_names() -> list[str]:
    # Every field name of the language, for "did you mean" on an unknown field.
    from . import models

    return sorted(
        {name for value in vars(models).values() if isinstance(value, type) and issubclass(value, BaseModel)
         for name in value.model_fields}
    )


_FIELD_NAMES = _field_names()
_PATTERN_HELP = {
    r"^[a-z][a-z0-9_]{0,39}$": "use lower case letters, digits and _, starting with a letter (at most 40)",
    r"^[a-z0-9][a-z0-9_-]{0,63}$": "use lower case letters, digits, - and _ (at most 64)",
    r"^[1-9][0-9]{0,4}(min|h|d|w|mo|y)$": "write a duration such as 30d, 2w, 12mo or 1y",
    r"^[A-Z]{3}$": "write an ISO 4217 code such as CNY",
}
_CODES = {
    "extra_forbidden": "unknown_field",
    "missing": "missing_field",
    "literal_error": "invalid_choice",
    "enum": "invalid_choice",
    "string_pattern_mismatch": "invalid_format",
    "unknown_action": "unknown_action",
    "union_tag_invalid": "invalid_choice",
    "union_tag_not_found": "missing_field",
    "value_error": "invalid_value",
    "assertion_error": "invalid_value",
}


def _message(err: Any, real_loc: Loc) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    last = real_loc[-1] if real_loc else ""
    if kind == "extra_forbidden":
        field_name = str(err["loc"][-1])
        hint = difflib.get_close_matches(field_name, _FIELD_NAMES, n=1)
        return f"unknown field '{field_name}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
    if kind == "missing":
        return f"missing required field '{err['loc'][-1]}'"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}, got {value!r}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return f"{value!r} is not allowed here: {_PATTERN_HELP.get(pattern, 'it must match ' + pattern)}"
    if kind in ("value_error", "assertion_error"):
        return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "union_tag_invalid":
        return f"{ctx.get('tag')!r} is not one of {ctx.get('expected_tags')}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number for '{last}', got {value!r}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping (key: value) for '{last}', got {value!r}"
    if kind == "list_type":
        return f"expected a list for '{last}', got {value!r}"
    if kind in ("string_type",):
        return f"expected text for '{last}', got {value!r}"
    return f"{err['msg']} (got {value!r})" if "input" in err and not isinstance(value, dict | list) else str(err["msg"])


def _real_loc(data: Any, loc: tuple[Any, ...]) -> Loc:
    """Drop the parts of a pydantic location that are not in the data (union tags, [key])."""
    real: list[str | int] = []
    current = data
    for part in loc:
        if isinstance(current, dict) and part in current:
            real.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            real.append(part)
            current = current[part]
    return tuple(real)


def validation_errors(exc: ValidationError, data: Any, source: SourceMap, filename: str) -> list[SchemeError]:
    errors = []
    for err in exc.errors():
        real = _real_loc(data, err["loc"])
        prefer_key = err["type"] in ("extra_forbidden", "missing")
        where = source.locate(real, prefer_key=prefer_key)
        path_loc = real
        if err["type"] == "missing":
            path_loc = (*real, err["loc"][-1]) if err["loc"] and err["loc"][-1] not in real[-1:] else real
        errors.append(
            SchemeError(
                _CODES.get(err["type"], "invalid_value"),
                _message(err, real),
                where[0] or filename,
                where[1],
                where[2],
                format_path(path_loc),
            )
        )
    return errors


def _validate(data: Any, source: SourceMap) -> Loaded:
    filename = next(iter(source.values.values()), ("<data>", 0, 0))[0]
    if not isinstance(data, dict):
        return Loaded(None, [SchemeError("not_a_mapping", "a scheme is a mapping of keys such as id, name, balances", filename, 1, 1, "")], source)
    try:
        scheme = Scheme.model_validate(data)
    except ValidationError as exc:
        errors = validation_errors(exc, data, source, filename)
        return Loaded(None, sorted(errors, key=lambda e: (e.file, e.line, e.column)), source)
    from .check import check_scheme

    errors, warnings = check_scheme(scheme, source, filename)
    errors.sort(key=lambda e: (e.file, e.line, e.column))
    return Loaded(None if errors else scheme, errors, source, warnings)
