"""Errors as values: every refusal of the service is a Problem, turned into RFC 9457 at the API edge."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    pointer: str  # RFC 6901 pointer into the request body, "" for the whole body
    code: str
    message: str


@dataclass(frozen=True)
class Problem:
    status: int
    code: str  # stable snake_case, what programs match on
    title: str
    detail: str
    errors: tuple[FieldError, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://perkflow.dev/problems/{self.code.replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors:
            body["errors"] = [{"pointer": e.pointer, "code": e.code, "message": e.message} for e in self.errors]
        body.update(self.extra)
        return body


def invalid(detail: str, errors: list[FieldError] | tuple[FieldError, ...], code: str = "validation_failed") -> Problem:
    return Problem(422, code, "The request is not valid", detail, tuple(errors))


def not_found(what: str, key: str) -> Problem:
    return Problem(404, f"unknown_{what}", f"No such {what}", f"no {what} '{key}'")


def conflict(code: str, detail: str, **extra: Any) -> Problem:
    return Problem(409, code, "Conflict", detail, extra=extra)


def forbidden(detail: str) -> Problem:
    return Problem(403, "forbidden", "Not allowed", detail)
