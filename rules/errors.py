"""One error shape for the loader, the expression checker, the linter and publishing."""

from __future__ import annotations

from typing import Any, NamedTuple


class SchemeError(NamedTuple):
    code: str  # stable, snake_case: what tests and programs match on
    message: str  # what is wrong and what to do, in an operator's words
    file: str
    line: int  # 1-based; 0 when the place is not in a file (a model built in code)
    column: int  # 1-based
    path: str  # "rules[3].when"
    severity: str = "error"  # "error" or "warning" (lint)

    def render(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        label = "" if self.severity == "error" else f"{self.severity}: "
        path = f" {self.path}:" if self.path else ""
        return f"{where}:{path} {label}{self.message} [{self.code}]"

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


def format_path(loc: tuple[str | int, ...]) -> str:
    """('rules', 3, 'when') -> 'rules[3].when'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
