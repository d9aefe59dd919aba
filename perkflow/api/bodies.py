"""Reading requests and writing answers: JSON bodies, pydantic models, query values, results.

Service functions answer with a value or a `Problem`; `reply` turns either into a response.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from perkflow.service.core import Service
from perkflow.service.events import Applied
from perkflow.service.problems import FieldError, Problem, invalid

from .problems import ApiError, problem_response

M = TypeVar("M", bound=BaseModel)
Outcome = tuple[int, Any] | Problem

_CODES = {
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "greater_than_equal": "out_of_range",
    "greater_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "too_long": "too_long",
    "too_short": "too_short",
    "string_too_short": "too_short",
    "string_too_long": "too_long",
}


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def json_body(request: Request) -> Any:
    """The body as JSON; a 400 problem that says where it stops being JSON."""
    raw = await request.body()
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno} (byte {exc.pos})"
        problem = Problem(
            400,
            "malformed_json",
            "Malformed JSON",
            f"the body is not valid JSON: {exc.msg} at {where}",
            (FieldError("", "malformed_json", f"{exc.msg} at {where}"),),
            extra={"line": exc.lineno, "column": exc.colno, "position": exc.pos},
        )
    except (UnicodeDecodeError, ValueError) as exc:
        problem = Problem(
            400,
            "malformed_json",
            "Malformed JSON",
            f"the body is not valid JSON: {exc}",
            (FieldError("", "malformed_json", str(exc)),),
        )
    raise ApiError(problem)


def model_problem(exc: ValidationError) -> Problem:
    errors = []
    for error in exc.errors(include_url=False):
        pointer = "".join(f"/{part}" for part in error["loc"] if part != "__root__")
        kind = error["type"]
        code = _CODES.get(kind, "wrong_type" if kind.endswith(("_type", "_parsing")) else kind)
        errors.append(FieldError(pointer, code, error["msg"]))
    return invalid(
        errors[0].message if len(errors) == 1 else f"{len(errors)} fields are not valid",
        errors,
        code=errors[0].code,
    )


def parse(model: type[M], data: Any) -> M:
    """The body as a pydantic model; a 422 problem naming every wrong field by JSON pointer."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(model_problem(exc)) from None


def query_flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise ApiError(
            invalid(
                f"bad '{name}'",
                [FieldError("", "wrong_type", f"?{name}= takes true or false")],
                code="wrong_type",
            )
        )
    return value in ("true", "1")


def query_int(request: Request, name: str, default: int | None) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise ApiError(
            invalid(
                f"bad '{name}'",
                [FieldError("", "wrong_type", f"?{name}= takes a whole number")],
                code="wrong_type",
            )
        )
    return int(value)


def outcome(result: Any, status: int = 200) -> Outcome:
    """A service result as (status, body), or the Problem it is."""
    if isinstance(result, Problem):
        return result
    if isinstance(result, Applied):
        return result.status, result.body
    if isinstance(result, tuple):  # (status, body) already, as MemberService.put answers
        return result[0], result[1]
    if hasattr(result, "to_dict"):  # a Version
        return status, result.to_dict()
    return status, result


def reply(result: Outcome, request: Request, headers: dict[str, str] | None = None) -> Response:
    if isinstance(result, Problem):
        return problem_response(result, request, headers)
    status, body = result
    return JSONResponse(body, status_code=status, headers=headers)


async def answer(request: Request, call: Callable[[], Any], status: int = 200) -> Response:
    """Run a service call in a worker thread (the service is synchronous) and answer its result."""
    return reply(outcome(await run_in_threadpool(call), status), request)
