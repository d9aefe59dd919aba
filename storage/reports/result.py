"""What every report returns: typed tables with their columns' labels in English and Chinese and
the filters that were applied, so the API, the CLI and a dashboard page render any report alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Cell = str | int | float | None


@dataclass(frozen=True)
class Column:
    key: str
    en: str
    zh: str

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": {"en": self.en, "zh-CN": self.zh}}


@dataclass(frozen=True)
class Table:
    name: str
    en: str
    zh: str
    columns: tuple[Column, ...]
    rows: tuple[dict[str, Cell], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": {"en": self.en, "zh-CN": self.zh},
            "columns": [c.to_dict() for c in self.columns],
            "rows": [dict(r) for r in self.rows],
        }


@dataclass(frozen=True)
class Report:
    name: str
    en: str
    zh: str
    filters: dict[str, Any]  # what was applied, resolved: the period's days, the stores, the as-of instant
    tables: tuple[Table, ...]
    notes: tuple[str, ...] = ()  # method statements a reader needs, such as how an interval was computed

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "report": self.name,
            "title": {"en": self.en, "zh-CN": self.zh},
            "filters": self.filters,
            "tables": [t.to_dict() for t in self.tables],
            "notes": list(self.notes),
        }


def columns(*spec: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*s) for s in spec)
