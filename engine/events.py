"""Events: the envelope, and checking a raw event against the event types of a scheme.

`parse_event` never raises for bad input: it returns the event or every problem found, each with
a JSON pointer to the wrong field, so the API can answer a problem+json that says where.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from perkflow.rules.builtins import ENVELOPE_FIELDS
from perkflow.rules.models import Attribute, EventType

MAX_ID_LENGTH = 200
_DEFAULTS: dict[str, Any] = {
    "int": 0,
    "money": 0,
    "decimal": Decimal(0),
    "str": "",
    "bool": False,
    "instant": 0,
    "str_list": (),
    "items": (),
}
_ITEM_FIELDS = {"sku", "category", "quantity", "amount"}


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    member_id: str
    occurred_at: datetime  # timezone-aware
    store: str = ""
    channel: str = ""
    attributes: Mapping[str, Any] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.attributes is None:
            object.__setattr__(self, "attributes", {})


class EventError(NamedTuple):
    code: str
    message: str
    pointer: str  # RFC 6901, e.g. "/attributes/amount"


def parse_instant(value: Any) -> datetime | None:
    """An ISO 8601 time with an offset (or Z); None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _check_value(attribute: Attribute, value: Any, pointer: str, errors: list[EventError]) -> Any:
    kind = attribute.type
    if kind in ("int", "money"):
        if isinstance(value, bool) or not isinstance(value, int):
            what = "whole number of minor units (fen, cents)" if kind == "money" else "whole number"
            errors.append(EventError("wrong_type", f"expected a {what}, got {value!r}", pointer))
            return None
        if kind == "money" and value < 0:
            errors.append(EventError("negative_amount", f"an amount of money cannot be negative, got {value}", pointer))
            return None
        return value
    if kind == "decimal":
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
            errors.append(EventError("wrong_type", f"expected a number, got {value!r}", pointer))
            return None
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            errors.append(EventError("wrong_type", f"expected a number, got {value!r}", pointer))
            return None
        if not number.is_finite():
            errors.append(EventError("wrong_type", f"expected a finite number, got {value!r}", pointer))
            return None
        return number
    if kind == "str":
        if not isinstance(value, str):
            errors.append(EventError("wrong_type", f"expected text, got {value!r}", pointer))
            return None
        if attribute.values is not None and value not in attribute.values:
            errors.append(EventError("invalid_choice", f"expected one of {attribute.values}, got {value!r}", pointer))
            return None
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            errors.append(EventError("wrong_type", f"expected true or false, got {value!r}", pointer))
            return None
        return value
    if kind == "instant":
        instant = parse_instant(value)
        if instant is None:
            errors.append(EventError("wrong_type", f"expected a time with an offset such as 2026-11-20T10:00:00+08:00, got {value!r}", pointer))
            return None
        return int(instant.timestamp())
    if kind == "str_list":
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            errors.append(EventError("wrong_type", f"expected a list of texts, got {value!r}", pointer))
            return None
        return tuple(value)
    return _check_items(value, pointer, errors)


def _check_items(value: Any, pointer: str, errors: list[EventError]) -> Any:
    if not isinstance(value, list):
        errors.append(EventError("wrong_type", "expected a list of line items", pointer))
        return None
    items = []
    for i, item in enumerate(value):
        here = f"{pointer}/{i}"
        if not isinstance(item, dict):
            errors.append(EventError("wrong_type", "a line item is an object with sku, category, quantity, amount", here))
            continue
        for key in item:
            if key not in _ITEM_FIELDS:
                errors.append(EventError("unknown_field", f"unknown line item field '{key}' (expected sku, category, quantity, amount)", f"{here}/{key}"))
        sku, category = item.get("sku"), item.get("category", "")
        quantity, amount = item.get("quantity", 1), item.get("amount")
        if not isinstance(sku, str) or not sku:
            errors.append(EventError("missing_field" if sku is None else "wrong_type", "a line item needs a 'sku' text", f"{here}/sku"))
        if not isinstance(category, str):
            errors.append(EventError("wrong_type", "'category' must be text", f"{here}/category"))
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            errors.append(EventError("wrong_type", f"'quantity' must be a whole number of at least 1, got {quantity!r}", f"{here}/quantity"))
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            errors.append(EventError("wrong_type", f"'amount' must be whole minor units, not negative, got {amount!r}", f"{here}/amount"))
        items.append({"sku": sku, "category": category, "quantity": quantity, "amount": amount})
    return tuple(items)


def parse_event(raw: Any, event_types: Mapping[str, EventType]) -> tuple[Event | None, list[EventError]]:
    """Check a raw event (decoded JSON) against the scheme's event types."""
    if not isinstance(raw, dict):
        return None, [EventError("wrong_type", "an event is a JSON object", "")]
    errors: list[EventError] = []
    for key in raw:
        if key not in ENVELOPE_FIELDS:
            errors.append(EventError("unknown_field", f"unknown field '{key}': attributes go under 'attributes'", f"/{key}"))
    texts: dict[str, str] = {}
    for key, required in (("id", True), ("type", True), ("member_id", True), ("store", False), ("channel", False)):
        value = raw.get(key)
        if value is None:
            if required:
                errors.append(EventError("missing_field", f"the event needs '{key}'", f"/{key}"))
            texts[key] = ""
        elif not isinstance(value, str) or (required and not value.strip()) or len(value) > MAX_ID_LENGTH:
            errors.append(EventError("wrong_type", f"'{key}' must be non-empty text of at most {MAX_ID_LENGTH} characters", f"/{key}"))
            texts[key] = ""
        else:
            texts[key] = value
    occurred_at = parse_instant(raw.get("occurred_at"))
    if occurred_at is None:
        errors.append(
            EventError(
                "missing_field" if raw.get("occurred_at") is None else "wrong_type",
                "'occurred_at' must be a time with an offset, such as 2026-11-20T10:00:00+08:00",
                "/occurred_at",
            )
        )
    declared = event_types.get(texts["type"]) if texts["type"] else None
    if texts["type"] and declared is None:
        errors.append(EventError("unknown_event_type", f"unknown event type '{texts['type']}' (known: {', '.join(sorted(event_types))})", "/type"))
    raw_attributes = raw.get("attributes", {})
    attributes: dict[str, Any] = {}
    if not isinstance(raw_attributes, dict):
        errors.append(EventError("wrong_type", "'attributes' must be an object", "/attributes"))
    elif declared is not None:
        for key in raw_attributes:
            if key not in declared.attributes:
                known = ", ".join(declared.attributes) or "none"
                errors.append(EventError("unknown_attribute", f"'{texts['type']}' has no attribute '{key}' (known: {known})", f"/attributes/{key}"))
        for name, attribute in declared.attributes.items():
            pointer = f"/attributes/{name}"
            if name not in raw_attributes or raw_attributes[name] is None:
                if attribute.required:
                    errors.append(EventError("missing_attribute", f"'{texts['type']}' needs attribute '{name}' ({attribute.type})", pointer))
                attributes[name] = _DEFAULTS[attribute.type]
                continue
            attributes[name] = _check_value(attribute, raw_attributes[name], pointer, errors)
    if errors or occurred_at is None:
        return None, errors
    return (
        Event(texts["id"], texts["type"], texts["member_id"], occurred_at, texts["store"], texts["channel"], attributes),
        [],
    )
