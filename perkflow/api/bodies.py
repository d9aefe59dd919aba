"""Reading requests and writing answers: JSON bodies, pydantic models, query values, results.

Service functions answer with a value or a `Problem`; `reply` turns either into a response.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.convertors import IntegerConvertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from perkflow.service.core import Service
from perkflow.service.events import Applied
from perkflow.service.problems import FieldError, Problem, invalid

from .problems import ApiError, problem_response

M = TypeVar("M", bound=BaseModel)
MAX_DEPTH = 32  # nesting of arrays and objects in a body: events and schemes need far less
MAX_ID = 10**18 - 1  # the largest number an `{name:id}` path segment matches: fits every 64-bit column


class IdConvertor(IntegerConvertor):
    """`{name:id}`: a row number of at most 18 digits. Starlette's `int` matches any length, and a
    number past 64 bits reached the database as an overflow (a 500); this one is a 404 instead."""

    regex = "[0-9]{1,18}"


register_url_convertor("id", IdConvertor())
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
    """The body as JSON; a 400 problem that says where it stops being JSON, or that it nests
    deeper than MAX_DEPTH."""
    raw = await request.body()
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:  # deeper than the parser itself goes
        raise ApiError(too_deep()) from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno} (byte {exc.pos})"
        raise ApiError(
            Problem(
                400,
                "malformed_json",
                "Malformed JSON",
                f"the body is not valid JSON: {exc.msg} at {where}",
                (FieldError("", "malformed_json", f"{exc.msg} at {where}"),),
                extra={"line": exc.lineno, "column": exc.colno, "position": exc.pos},
            )
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(
            Problem(
                400,
                "malformed_json",
                "Malformed JSON",
                f"the body is not valid JSON: {exc}",
                (FieldError("", "malformed_json", str(exc)),),
            )
        ) from None
    if _deeper_than(data, MAX_DEPTH):
        raise ApiError(too_deep())
    return data


def too_deep() -> Problem:
    message = f"arrays and objects may be nested {MAX_DEPTH} deep at most"
    return Problem(400, "nested_too_deeply", "JSON nested too deeply", message, (FieldError("", "nested_too_deeply", message),))


def _deeper_than(data: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` deep; without recursion, so a hostile
    body cannot exhaust the stack here or in the code that would walk it later."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return False


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
