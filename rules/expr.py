"""Expressions of the scheme language: parsed and checked once at load, evaluated per event.

Conditions (``event.amount >= 10000 and member.tier == "gold"``) and amounts
(``floor(event.amount / 100 * tier.points_multiplier)``) are a small, typed subset of Python
expressions. ``compile_expr`` parses, checks names and types against a declared environment and
compiles the expression into a closure; it reports every problem as an ``ExprError`` value and never
raises. ``evaluate_reference`` runs the same checked tree through simpleeval, as a second,
independent engine with the very same operator functions.

Semantics an operator can rely on:

* Numbers are ``int`` or ``decimal.Decimal``, never ``float``. A literal such as ``0.1`` becomes
  ``Decimal("0.1")`` from its source text, so ``0.1 + 0.2 == 0.3`` is true.
* ``/`` always divides as Decimal, with 28 significant digits and half-even rounding (Python's
  default context, held privately so the host's context cannot change a result): ``7 / 2 == 3.5``.
  ``//`` and ``%`` round towards minus infinity for Decimals too, as they do for ints.
  Division or modulo by zero is an evaluation error, never infinity.
* ``round(x)`` rounds half away from zero (commercial rounding: 2.5 -> 3, -2.5 -> -3) and gives an
  int; ``round(x, n)`` keeps n decimals the same way. ``floor(x)`` and ``ceil(x)`` give ints.
* Instants (``now``, ``event.occurred_at``) are int seconds since the Unix epoch (UTC). The calendar
  helpers read them in the scheme's timezone: ``weekday`` is ISO (1 = Monday .. 7 = Sunday),
  ``hour``, ``day``, ``month``, ``year``; ``date("2026-12-24")`` is local midnight of that day;
  ``days_between(a, b)`` is b's local date minus a's local date, in days.
* Evaluation raises only ``EvalError``: a missing value, a division by zero, a power or a text that
  would be too large, operands of the wrong kind at run time.
"""

from __future__ import annotations

import ast
import decimal
import difflib
import io
import math
import operator
import re
import tokenize
import types
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date as _calendar_date
from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import simpleeval  # type: ignore[import-untyped]

from .builtins import PERSONAL_FIELDS

__all__ = [
    "EvalError",
    "Expr",
    "ExprError",
    "Function",
    "Functions",
    "Type",
    "compile_expr",
    "evaluate_reference",
    "functions_for",
]

# Limits. They bound the work a single hostile expression can cause at load and per event.
MAX_SOURCE_LENGTH = 1000
MAX_DEPTH = 32
MAX_STRING_LENGTH = 100_000  # same bound as simpleeval.MAX_STRING_LENGTH
MAX_POWER = 4_000_000  # highest exponent, as simpleeval.MAX_POWER
MAX_INT_DIGITS = 1000  # largest int a power or a Decimal-to-int conversion may produce
MAX_ROUND_DIGITS = 28  # round(x, n) needs |n| <= this: finer than the precision means nothing


class Type(str, Enum):  # noqa: UP042 - the agreed API; StrEnum would also change str(Type.X)
    NUMBER = "number"  # int or decimal.Decimal, never float
    BOOL = "bool"
    STR = "str"
    INSTANT = "instant"  # int epoch seconds (UTC); only comparable with another instant
    STR_LIST = "str_list"  # tuple/list/frozenset of str, e.g. member.tags; right side of `in`
    ITEMS = "items"  # tuple of line-item dicts; only an argument of the item functions or len()
    ANY = "any"  # not known at load: a conditional with mixed branches, None


class ExprError(NamedTuple):
    code: str  # stable snake_case code that programs and tests match on
    message: str  # operator-friendly English
    column: int  # 1-based character offset into the expression source (1 if unknown)


class EvalError(Exception):
    """The only exception evaluating an expression may raise."""


@dataclass(frozen=True, slots=True)
class Expr:
    """A checked, compiled expression. Call it with the data; hot loops may call `fn` directly."""

    source: str
    result_type: Type
    names: tuple[str, ...]  # dotted names read, in first-read order
    # Identity of the compiled closure and of the tree says nothing about the expression, so two
    # compilations of the same source in the same environment compare (and hash) equal.
    fn: Callable[[Mapping[str, Any]], Any] = field(compare=False, repr=False)
    # The checked tree (float literals already Decimal) that evaluate_reference runs.
    tree: ast.expr | None = field(default=None, compare=False, repr=False)

    def __call__(self, data: Mapping[str, Any]) -> Any:
        return self.fn(data)


# --------------------------------------------------------------------------------------------------
# Operator semantics. Defined once; the compiled closures and the simpleeval reference both call
# these very functions, so the two engines cannot drift apart.

# Python's default context, but private: another library changing the thread's decimal context
# must not change what a rule awards.
_DECIMAL = decimal.Context(
    prec=28,
    rounding=decimal.ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    capitals=1,
    clamp=0,
    flags=[],
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
_TYPE_NAMES: dict[type, str] = {
    bool: "bool",
    int: "int",
    Decimal: "Decimal",
    str: "str",
    type(None): "None",
    tuple: "list",
    list: "list",
    frozenset: "list",
}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _unsupported(symbol: str, a: Any, b: Any) -> EvalError:
    return EvalError(f"'{symbol}' not supported between {_type_name(a)} and {_type_name(b)}")


def _check_length(length: int) -> None:
    if length > MAX_STRING_LENGTH:
        raise EvalError(f"text too long: more than {MAX_STRING_LENGTH} characters")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal)  # bool is an int, as in Python


# Each operator accepts numbers (int, bool, Decimal) and, for + and *, text; anything else that
# reaches it through an ANY value (None, a list of tags) is refused with the same message shape.
# Ints stay ints; as soon as a Decimal takes part the private context does the arithmetic.


def _add(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        return a + b
    if type(a) is Decimal or type(b) is Decimal:
        try:
            return _DECIMAL.add(a, b)  # takes ints and Decimals, refuses everything else
        except TypeError:
            raise _unsupported("+", a, b) from None
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if type(a) is str and type(b) is str:
        _check_length(len(a) + len(b))
        return a + b
    raise _unsupported("+", a, b)


def _sub(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        return a - b
    if type(a) is Decimal or type(b) is Decimal:
        try:
            return _DECIMAL.subtract(a, b)
        except TypeError:
            raise _unsupported("-", a, b) from None
    if isinstance(a, int) and isinstance(b, int):
        return a - b
    raise _unsupported("-", a, b)


def _mul(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        return a * b
    if type(a) is Decimal or type(b) is Decimal:
        try:
            return _DECIMAL.multiply(a, b)
        except TypeError:
            raise _unsupported("*", a, b) from None
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    # Repetition is checked before it allocates: "a" * 10**9 must fail fast, not exhaust memory.
    if type(a) is str and isinstance(b, int):
        _check_length(len(a) * b)
        return a * b
    if type(b) is str and isinstance(a, int):
        _check_length(len(b) * a)
        return a * b
    raise _unsupported("*", a, b)


def _truediv(a: Any, b: Any) -> Decimal:
    try:
        return _DECIMAL.divide(a, b)
    except TypeError:
        raise _unsupported("/", a, b) from None
    except decimal.InvalidOperation:
        # 0 / 0 is "undefined" to decimal; to an operator it is the same mistake as 1 / 0.
        if _is_number(b) and b == 0:
            raise EvalError("division by zero") from None
        raise


def _division_operands(symbol: str, a: Any, b: Any) -> None:
    if not (_is_number(a) and _is_number(b)):
        raise _unsupported(symbol, a, b)  # str % x would be printf-style formatting
    if b == 0:
        raise EvalError("division by zero")


def _decimal_divmod(symbol: str, a: Any, b: Any) -> tuple[Decimal, Decimal]:
    try:
        return _DECIMAL.divmod(a, b)
    except decimal.InvalidOperation:  # the integral quotient would need more than 28 digits
        raise EvalError(f"number too large for '{symbol}'") from None


def _floordiv(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int and b:
        return a // b
    _division_operands("//", a, b)
    if type(a) is Decimal or type(b) is Decimal:
        quotient, remainder = _decimal_divmod("//", a, b)
        # decimal truncates towards zero; floor as ints do, so that a result never depends on
        # whether an operand happened to be a Decimal.
        if remainder and (remainder < 0) != (b < 0):
            quotient = _DECIMAL.subtract(quotient, 1)
        return quotient
    return a // b


def _mod(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int and b:
        return a % b
    _division_operands("%", a, b)
    if type(a) is Decimal or type(b) is Decimal:
        _, remainder = _decimal_divmod("%", a, b)
        if remainder and (remainder < 0) != (b < 0):  # the sign of the divisor, as for ints
            remainder = _DECIMAL.add(remainder, b)
        return remainder
    return a % b


def _pow(a: Any, b: Any) -> Any:
    if not (_is_number(a) and _is_number(b)):
        raise _unsupported("**", a, b)
    if b > MAX_POWER or b < -MAX_POWER:
        raise EvalError("power too large")
    if b < 0 and a == 0:  # decimal answers Infinity without signalling: never let it through
        raise EvalError("division by zero")
    if type(a) is Decimal or type(b) is Decimal or b < 0:
        # Decimal results are bounded by the context (overflow is an error). A negative int
        # exponent goes this way too: 2 ** -1 must be Decimal("0.5"), never the float 0.5.
        try:
            return _DECIMAL.power(a, b)
        except decimal.InvalidOperation:
            raise EvalError("power undefined: a negative number to a fractional power, or 0 ** 0") from None
    # An exponent within MAX_POWER can still build a number with millions of digits
    # (4000000 ** 4000000); estimate the size before computing it.
    if abs(a) > 1 and b * math.log10(abs(a)) > MAX_INT_DIGITS:
        raise EvalError("power too large")
    return a**b


def _neg(a: Any) -> Any:
    if type(a) is Decimal:
        return _DECIMAL.minus(a)
    if not _is_number(a):
        raise EvalError(f"unary '-' not supported for {_type_name(a)}")
    return -a


def _pos(a: Any) -> Any:
    if type(a) is Decimal:
        return _DECIMAL.plus(a)
    if not _is_number(a):
        raise EvalError(f"unary '+' not supported for {_type_name(a)}")
    return +a


def _contains(a: Any, b: Any) -> bool:
    return a in b


def _not_contains(a: Any, b: Any) -> bool:
    return a not in b


def _in_literal(a: Any, choices: frozenset[Any], fallback: tuple[Any, ...]) -> bool:
    # The frozenset is a hash lookup with the same answer as scanning the tuple for hashable
    # values; an unhashable left side (only possible through an ANY value) scans the tuple.
    try:
        return a in choices
    except TypeError:
        return a in fallback


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: _add,
    ast.Sub: _sub,
    ast.Mult: _mul,
    ast.Div: _truediv,
    ast.FloorDiv: _floordiv,
    ast.Mod: _mod,
    ast.Pow: _pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: _neg,
    ast.UAdd: _pos,
    ast.Not: operator.not_,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: _contains,
    ast.NotIn: _not_contains,
}
# simpleeval's DEFAULT_OPERATORS, every entry replaced by the shared functions above, and without
# what the checker forbids anyway (bitwise operators, shifts, `is`): defence in depth.
_REFERENCE_OPERATORS: dict[type[ast.AST], Callable[..., Any]] = {**_BINARY, **_UNARY, **_COMPARE}  # type: ignore[dict-item]


# --------------------------------------------------------------------------------------------------
# Functions


def _bounded(x: Decimal, name: str) -> Decimal:
    if not x.is_finite():
        raise EvalError(f"{name}() needs a finite number")
    if x.adjusted() >= MAX_INT_DIGITS:
        raise EvalError("number too large")
    return x


def _floor(x: Any) -> int:
    if type(x) is Decimal:
        return math.floor(_bounded(x, "floor"))
    if not _is_number(x):
        raise EvalError(f"floor() needs a number, got {_type_name(x)}")
    return int(x)


def _ceil(x: Any) -> int:
    if type(x) is Decimal:
        return math.ceil(_bounded(x, "ceil"))
    if not _is_number(x):
        raise EvalError(f"ceil() needs a number, got {_type_name(x)}")
    return int(x)


def _round(x: Any, ndigits: Any = None) -> Any:
    if not _is_number(x):
        raise EvalError(f"round() needs a number, got {_type_name(x)}")
    if ndigits is None:
        if type(x) is Decimal:
            return int(_bounded(x, "round").to_integral_value(decimal.ROUND_HALF_UP, _DECIMAL))
        return int(x)
    if type(ndigits) is not int or not -MAX_ROUND_DIGITS <= ndigits <= MAX_ROUND_DIGITS:
        raise EvalError(f"round() needs a whole number of digits, -{MAX_ROUND_DIGITS} to {MAX_ROUND_DIGITS}")
    if type(x) is Decimal:
        return x.quantize(Decimal(1).scaleb(-ndigits, _DECIMAL), decimal.ROUND_HALF_UP, _DECIMAL)
    if ndigits >= 0:
        return int(x)
    unit = 10**-ndigits
    magnitude = (abs(x) + unit // 2) // unit * unit  # half away from zero, exactly, in ints
    return magnitude if x >= 0 else -magnitude


def _abs(x: Any) -> Any:
    if type(x) is Decimal:
        return _DECIMAL.abs(x)
    if not _is_number(x):
        raise EvalError(f"abs() needs a number, got {_type_name(x)}")
    return abs(x)


def _min(*args: Any) -> Any:
    try:
        return min(args)
    except TypeError:
        raise EvalError("min() needs numbers") from None


def _max(*args: Any) -> Any:
    try:
        return max(args)
    except TypeError:
        raise EvalError("max() needs numbers") from None


def _len(x: Any) -> int:
    if not isinstance(x, str | tuple | list | frozenset):
        raise EvalError(f"len() needs a str or a list, got {_type_name(x)}")
    return len(x)


_ITEM_FIELDS = ("sku", "category")


def _matching_items(items: Any, field_name: Any, value: Any, function: str) -> list[Mapping[str, Any]]:
    if field_name not in _ITEM_FIELDS:
        raise EvalError(f'{function}() field must be "sku" or "category"')
    try:
        return [item for item in items if item[field_name] == value]
    except (KeyError, TypeError, IndexError):
        raise EvalError(f"{function}(): every line item needs a {field_name!r}") from None


def _sum_items(items: Any, field_name: Any, value: Any, what: str, function: str) -> Any:
    total: Any = 0
    for item in _matching_items(items, field_name, value, function):
        try:
            total = _add(total, item[what])
        except (KeyError, TypeError, EvalError):
            raise EvalError(f"{function}(): every line item needs a numeric {what!r}") from None
    return total


def _items_amount(items: Any, field_name: Any, value: Any) -> Any:
    return _sum_items(items, field_name, value, "amount", "items_amount")


def _items_quantity(items: Any, field_name: Any, value: Any) -> Any:
    return _sum_items(items, field_name, value, "quantity", "items_quantity")


def _has_item(items: Any, field_name: Any, value: Any) -> bool:
    return bool(_matching_items(items, field_name, value, "has_item"))


_DATE_LITERAL = re.compile(r"\d{4}-\d{2}-\d{2}")


def _parse_date(text: Any) -> _calendar_date | None:
    # Stricter than date.fromisoformat, which also takes "20261224" and week dates.
    if not isinstance(text, str) or not _DATE_LITERAL.fullmatch(text):
        return None
    try:
        return _calendar_date.fromisoformat(text)
    except ValueError:
        return None


# Kinds of parameter, checked at load.
_P_NUMBER = "number"
_P_INSTANT = "instant"
_P_STR = "str"
_P_SIZED = "sized"  # str, str_list or items
_P_ITEMS = "items"
_P_DATE = "date_literal"
_P_FIELD = "field_literal"
_P_DIGITS = "digits"


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    impl: Callable[..., Any]
    params: tuple[str, ...]  # kinds of the required parameters
    result: Type
    signature: str  # for messages: "round(x[, ndigits])"
    optional: tuple[str, ...] = ()  # kinds of optional trailing parameters
    variadic: str | None = None  # kind of any number of further parameters

    def accepts(self, count: int) -> bool:
        if count < len(self.params):
            return False
        return self.variadic is not None or count <= len(self.params) + len(self.optional)

    def kind_of(self, index: int) -> str:
        kinds = self.params + self.optional
        if index < len(kinds):
            return kinds[index]
        assert self.variadic is not None
        return self.variadic


@dataclass(frozen=True, slots=True, eq=False)
class Functions:
    """The fixed function set, bound to one scheme's timezone."""

    timezone: str
    table: Mapping[str, Function]

    def get(self, name: str) -> Function | None:
        return self.table.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.table

    def callables(self) -> dict[str, Callable[..., Any]]:
        return {name: function.impl for name, function in self.table.items()}


@lru_cache(maxsize=64)
def functions_for(timezone: str) -> Functions:
    """The function set bound to an IANA timezone. Raises ValueError for an unknown timezone."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown timezone {timezone!r}") from None

    def local(t: Any, function: str) -> datetime:
        if type(t) is not int:
            raise EvalError(f"{function}() needs an instant (seconds since the epoch), got {_type_name(t)}")
        try:
            return datetime.fromtimestamp(t, zone)
        except (OverflowError, OSError, ValueError):
            raise EvalError(f"{function}(): instant out of range") from None

    def weekday(t: Any) -> int:
        return local(t, "weekday").isoweekday()

    def hour(t: Any) -> int:
        return local(t, "hour").hour

    def day(t: Any) -> int:
        return local(t, "day").day

    def month(t: Any) -> int:
        return local(t, "month").month

    def year(t: Any) -> int:
        return local(t, "year").year

    def date(text: Any) -> int:
        parsed = _parse_date(text)
        if parsed is None:
            raise EvalError('date() needs a date like "2026-12-24"')
        # Where midnight falls in a DST gap, fold=0 resolves to the first instant of that day.
        try:
            return int(datetime(parsed.year, parsed.month, parsed.day, tzinfo=zone).timestamp())
        except (OverflowError, OSError, ValueError):
            raise EvalError(f"date {text!r} is out of range") from None

    def days_between(a: Any, b: Any) -> int:
        return (local(b, "days_between").date() - local(a, "days_between").date()).days

    def fn(
        name: str,
        impl: Callable[..., Any],
        params: tuple[str, ...],
        result: Type,
        signature: str,
        optional: tuple[str, ...] = (),
        variadic: str | None = None,
    ) -> tuple[str, Function]:
        return name, Function(name, impl, params, result, signature, optional, variadic)

    table = dict(
        [
            fn("min", _min, (_P_NUMBER, _P_NUMBER), Type.NUMBER, "min(a, b, ...)", variadic=_P_NUMBER),
            fn("max", _max, (_P_NUMBER, _P_NUMBER), Type.NUMBER, "max(a, b, ...)", variadic=_P_NUMBER),
            fn("floor", _floor, (_P_NUMBER,), Type.NUMBER, "floor(x)"),
            fn("ceil", _ceil, (_P_NUMBER,), Type.NUMBER, "ceil(x)"),
            fn("round", _round, (_P_NUMBER,), Type.NUMBER, "round(x[, ndigits])", optional=(_P_DIGITS,)),
            fn("abs", _abs, (_P_NUMBER,), Type.NUMBER, "abs(x)"),
            fn("len", _len, (_P_SIZED,), Type.NUMBER, "len(x)"),
            fn("weekday", weekday, (_P_INSTANT,), Type.NUMBER, "weekday(t)"),
            fn("hour", hour, (_P_INSTANT,), Type.NUMBER, "hour(t)"),
            fn("day", day, (_P_INSTANT,), Type.NUMBER, "day(t)"),
            fn("month", month, (_P_INSTANT,), Type.NUMBER, "month(t)"),
            fn("year", year, (_P_INSTANT,), Type.NUMBER, "year(t)"),
            fn("date", date, (_P_DATE,), Type.INSTANT, 'date("YYYY-MM-DD")'),
            fn("days_between", days_between, (_P_INSTANT, _P_INSTANT), Type.NUMBER, "days_between(a, b)"),
            fn(
                "items_amount",
                _items_amount,
                (_P_ITEMS, _P_FIELD, _P_STR),
                Type.NUMBER,
                'items_amount(items, "sku" or "category", value)',
            ),
            fn(
                "items_quantity",
                _items_quantity,
                (_P_ITEMS, _P_FIELD, _P_STR),
                Type.NUMBER,
                'items_quantity(items, "sku" or "category", value)',
            ),
            fn(
                "has_item",
                _has_item,
                (_P_ITEMS, _P_FIELD, _P_STR),
                Type.BOOL,
                'has_item(items, "sku" or "category", value)',
            ),
        ]
    )
    return Functions(timezone, types.MappingProxyType(table))


# --------------------------------------------------------------------------------------------------
# Load: parse, check, compile

_FORBIDDEN: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda is not allowed in an expression",
    ast.ListComp: "a list comprehension is not allowed in an expression",
    ast.SetComp: "a set comprehension is not allowed in an expression",
    ast.DictComp: "a dict comprehension is not allowed in an expression",
    ast.GeneratorExp: "a generator expression is not allowed in an expression",
    ast.Subscript: "subscripts such as x[0] are not allowed in an expression",
    ast.Slice: "slices are not allowed in an expression",
    ast.Starred: "starred arguments (*x) are not allowed in an expression",
    ast.NamedExpr: "assignment (:=) is not allowed in an expression",
    ast.JoinedStr: "f-strings are not allowed in an expression",
    ast.FormattedValue: "f-strings are not allowed in an expression",
    ast.Await: "await is not allowed in an expression",
    ast.Yield: "yield is not allowed in an expression",
    ast.YieldFrom: "yield is not allowed in an expression",
    ast.Dict: "dict literals are not allowed in an expression",
    ast.Set: "set literals are not allowed in an expression",
    ast.Tuple: "a list or tuple is only allowed on the right of 'in', as in weekday(now) in (6, 7)",
    ast.List: "a list or tuple is only allowed on the right of 'in', as in weekday(now) in (6, 7)",
}
_OPERATOR_SYMBOLS: dict[type[ast.AST], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~",
    ast.USub: "-",
    ast.UAdd: "+",
    ast.Not: "not",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}
_NUMERIC = (Type.NUMBER, Type.BOOL)  # bools do arithmetic as in Python
_ORDERED = (Type.NUMBER, Type.BOOL, Type.STR, Type.INSTANT)
_ITEMS_HINT = "use items_amount(...), items_quantity(...), has_item(...) or len(...)"


def _kind(t: Type) -> Type:
    # For comparisons True == 1, so bool and number are one kind.
    return Type.NUMBER if t is Type.BOOL else t


class _Positions:
    """Turns AST positions (line, UTF-8 byte offset) into 1-based character offsets."""

    def __init__(self, source: str, shift: int) -> None:
        self.source = source
        self.shift = shift  # characters of leading whitespace removed before parsing
        self.starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", source)]

    def _line(self, lineno: int) -> tuple[int, str] | None:
        if not 1 <= lineno <= len(self.starts):
            return None
        start = self.starts[lineno - 1]
        end = self.starts[lineno] if lineno < len(self.starts) else len(self.source)
        return start, self.source[start:end]

    def of_node(self, node: ast.AST) -> int:
        line = self._line(getattr(node, "lineno", 0))
        if line is None:
            return 1
        start, text = line
        prefix = text.encode("utf-8", "surrogatepass")[: getattr(node, "col_offset", 0)]
        return self.shift + start + len(prefix.decode("utf-8", "ignore")) + 1

    def of_char(self, lineno: int, column: int) -> int:
        line = self._line(lineno)
        return self.shift + 1 + (line[0] + column if line else 0)

    def of_syntax_error(self, error: SyntaxError) -> int:
        line = self._line(error.lineno or 0)
        if line is None:
            return self.shift + 1
        start, text = line
        offset = error.offset or 0
        if offset < 1:  # CPython reports 0 when the input ends too early: point at its end
            offset = len(text.rstrip("\r\n")) + 1
        return self.shift + start + offset


def _parse(source: str) -> tuple[ast.Expression | None, ExprError | None]:
    stripped = source.strip()
    if not stripped:
        return None, ExprError("syntax_error", "empty expression", 1)
    # Leading blanks would be an "unexpected indent" to Python; to an operator they are nothing.
    positions = _Positions(stripped, len(source) - len(source.lstrip()))
    try:
        with warnings.catch_warnings():
            # An invalid escape such as "\d" warns; the warning filter (an error under pytest)
            # must not decide whether a scheme loads.
            warnings.simplefilter("ignore")
            tree = ast.parse(stripped, mode="eval")
    except SyntaxError as error:
        if "null bytes" in str(error.msg):
            return None, ExprError("syntax_error", "an expression cannot contain null bytes", 1)
        column = positions.of_syntax_error(error)
        message = str(error.msg)
        at = column - positions.shift - 1
        if message == "invalid syntax" and stripped[at : at + 1] == "=" and stripped[at : at + 2] != "==":
            message = "invalid syntax: '=' assigns, use '==' to compare"
        return None, ExprError("syntax_error", message, column)
    except ValueError:  # null bytes on some versions, lone surrogates
        return None, ExprError(
            "syntax_error", "the expression contains characters that are not valid text", 1
        )
    except (RecursionError, MemoryError):
        return None, ExprError("too_deep", f"expression nested too deeply (at most {MAX_DEPTH} levels)", 1)
    return tree, None


def _deepest_bracket(source: str) -> tuple[int, int] | None:
    """Where brackets first nest deeper than MAX_DEPTH, as (line, column), if they do.

    Redundant parentheses leave no trace in the tree, so `((((1))))` two hundred deep would pass
    the tree's depth check; no operator writes that, a generated attack does.
    """
    if sum(source.count(bracket) for bracket in "([{") <= MAX_DEPTH:
        return None  # too few brackets, strings included, to nest that deep: skip the tokenizer
    depth = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type != tokenize.OP:
                continue
            if token.string in "([{":
                depth += 1
                if depth > MAX_DEPTH:
                    return token.start
            elif token.string in ")]}":
                depth -= 1
    except (tokenize.TokenError, SyntaxError):  # cannot happen for a source ast.parse accepted
        return None
    return None


def _too_deep(tree: ast.Expression) -> ast.AST | None:
    # Iterative on purpose: the tree may be far deeper than Python's recursion limit.
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return node
        for child in ast.iter_child_nodes(node):
            stack.append((child, depth + 1 if isinstance(child, ast.expr) else depth))
    return None


# How a compiled node produces its value; the builder specialises closures on these so the hot
# path reads d["event"]["amount"] inline instead of calling a closure per name or literal.
_CONST, _ATTR, _FN = 0, 1, 2
_Closure = Callable[[Mapping[str, Any]], Any]


class _Code(NamedTuple):
    kind: int
    value: Any  # the constant / (namespace, attribute) / a closure over the data


def _as_fn(code: _Code) -> _Closure:
    if code.kind == _FN:
        return code.value  # type: ignore[no-any-return]
    if code.kind == _ATTR:
        namespace, attr = code.value
        return lambda d: d[namespace][attr]
    value = code.value
    return lambda d: value


# `event.amount >= 3000` is the commonest shape of all: spelled out, its comparison costs no call.
# Python's own operators, so the very same semantics as the operator functions in _COMPARE.
_NAME_VERSUS_CONSTANT: dict[Callable[[Any, Any], Any], Callable[[str, str, Any], _Closure]] = {
    operator.eq: lambda ns, attr, c: lambda d: d[ns][attr] == c,
    operator.ne: lambda ns, attr, c: lambda d: d[ns][attr] != c,
    operator.lt: lambda ns, attr, c: lambda d: d[ns][attr] < c,
    operator.le: lambda ns, attr, c: lambda d: d[ns][attr] <= c,
    operator.gt: lambda ns, attr, c: lambda d: d[ns][attr] > c,
    operator.ge: lambda ns, attr, c: lambda d: d[ns][attr] >= c,
}


def _binary(f: Callable[[Any, Any], Any], left: _Code, right: _Code) -> _Closure:
    # One closure per shape (name, literal, sub-expression) keeps the common cases to a single
    # Python call: `event.amount + 500` is f(d["event"]["amount"], 500).
    if left.kind == _ATTR and right.kind == _CONST:
        (ns, attr), c = left.value, right.value
        inline = _NAME_VERSUS_CONSTANT.get(f)
        if inline is not None:
            return inline(ns, attr, c)
        return lambda d: f(d[ns][attr], c)
    if left.kind == _FN and right.kind == _CONST:
        lf, c = left.value, right.value
        return lambda d: f(lf(d), c)
    if left.kind == _CONST and right.kind == _ATTR:
        c, (ns, attr) = left.value, right.value
        return lambda d: f(c, d[ns][attr])
    if left.kind == _CONST and right.kind == _FN:
        c, rf = left.value, right.value
        return lambda d: f(c, rf(d))
    if left.kind == _ATTR and right.kind == _ATTR:
        (ns1, attr1), (ns2, attr2) = left.value, right.value
        return lambda d: f(d[ns1][attr1], d[ns2][attr2])
    if left.kind == _FN and right.kind == _ATTR:
        lf, (ns, attr) = left.value, right.value
        return lambda d: f(lf(d), d[ns][attr])
    if left.kind == _ATTR and right.kind == _FN:
        (ns, attr), rf = left.value, right.value
        return lambda d: f(d[ns][attr], rf(d))
    lf, rf = _as_fn(left), _as_fn(right)
    return lambda d: f(lf(d), rf(d))


def _call_closure(f: Callable[..., Any], args: list[_Code]) -> _Closure:
    if len(args) == 1:
        (arg,) = args
        if arg.kind == _ATTR:
            ns, attr = arg.value
            return lambda d: f(d[ns][attr])
        af = _as_fn(arg)
        return lambda d: f(af(d))
    if len(args) == 2:
        return _binary(f, args[0], args[1])
    if len(args) == 3 and args[1].kind == _CONST:  # the item functions: (items, "category", value)
        af, c, cf = _as_fn(args[0]), args[1].value, _as_fn(args[2])
        return lambda d: f(af(d), c, cf(d))
    fns = tuple(_as_fn(arg) for arg in args)
    return lambda d: f(*[g(d) for g in fns])


_RUNTIME_ERRORS = (
    ArithmeticError,
    TypeError,
    ValueError,
    KeyError,
    IndexError,
    OSError,
    RecursionError,
    MemoryError,
    AttributeError,
)


def _missing(data: Any, names: tuple[str, ...]) -> str | None:
    for name in names:
        namespace, _, attr = name.partition(".")
        try:
            value = data[namespace]
            if attr:
                _ = value[attr]
        except (KeyError, TypeError, IndexError):
            return f"missing value '{name}'"
    return None


# Python's wording, reduced to the operator's: "'<' not supported between str and int".
_BETWEEN_INSTANCES = re.compile(r"between instances of '([\w.]+)' and '([\w.]+)'")


def _short(type_name: str) -> str:
    return {"decimal.Decimal": "Decimal", "NoneType": "None", "tuple": "list", "frozenset": "list"}.get(
        type_name, type_name
    )


def _describe(error: BaseException) -> str:
    if isinstance(error, EvalError):
        return str(error)
    if isinstance(error, ZeroDivisionError | decimal.DivisionByZero | decimal.DivisionUndefined):
        return "division by zero"
    if isinstance(error, decimal.Overflow | OverflowError):
        return "number too large"
    if isinstance(error, decimal.InvalidOperation):
        return "invalid decimal operation"
    if isinstance(error, RecursionError | MemoryError):
        return "expression too large to evaluate"
    if isinstance(error, KeyError):
        return f"missing value {error}"
    if isinstance(error, TypeError):
        return _BETWEEN_INSTANCES.sub(lambda m: f"between {_short(m[1])} and {_short(m[2])}", str(error))
    return str(error) or type(error).__name__


def _failure(error: BaseException, data: Any, names: tuple[str, ...]) -> str:
    # A lookup that failed (a key missing, or a namespace that is None) is named for what is
    # missing; any other failure is described as it is.
    lookup = isinstance(error, KeyError) or (isinstance(error, TypeError) and "subscriptable" in str(error))
    return (_missing(data, names) if lookup else None) or _describe(error)


def _guarded(inner: _Closure, names: tuple[str, ...]) -> _Closure:
    # One try around the whole expression costs nothing until something fails, so name lookups
    # stay plain subscripts; a KeyError or TypeError is then traced back to the missing name.
    def run(data: Mapping[str, Any]) -> Any:
        try:
            return inner(data)
        except EvalError:
            raise
        except _RUNTIME_ERRORS as error:
            raise EvalError(_failure(error, data, names)) from error

    return run


class _Compiler:
    def __init__(self, source: str, env: Mapping[str, Type], functions: Functions, positions: _Positions):
        self.source = source
        self.env = env
        self.functions = functions
        self.positions = positions
        self.namespaces = {key.partition(".")[0] for key in env if "." in key}
        self.errors: list[ExprError] = []
        self.names: dict[str, None] = {}  # an ordered set
        self.constants: set[int] = set()  # ids of built nodes whose value is known at load
        self.checks: dict[type[ast.AST], Callable[[Any], Type]] = {
            ast.Constant: self._constant,
            ast.Name: self._name,
            ast.Attribute: self._attribute,
            ast.BoolOp: self._bool_op,
            ast.UnaryOp: self._unary_op,
            ast.BinOp: self._bin_op,
            ast.Compare: self._compare,
            ast.IfExp: self._if_exp,
            ast.Call: self._call,
        }

    # ---- errors and suggestions

    def error(self, code: str, message: str, node: ast.AST) -> Type:
        self.errors.append(ExprError(code, message, self.positions.of_node(node)))
        return Type.ANY

    def unknown(self, code: str, what: str, name: str, node: ast.AST, candidates: list[str]) -> Type:
        message = f"unknown {what} '{name}'"
        suggestion = self.suggest(name, candidates)
        if suggestion:
            message += f" (did you mean '{suggestion}'?)"
        return self.error(code, message, node)

    def suggest(self, name: str, candidates: list[str]) -> str | None:
        # "amount" for "event.amount": the attribute without its namespace is a common slip, and
        # closer to the intent than whatever else happens to be spelled alike ("month").
        owners = [key for key in candidates if key.endswith("." + name)]
        if len(owners) == 1:
            return owners[0]
        matches = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        return matches[0] if matches else None

    # ---- checking: returns the node's type, records errors, converts float literals to Decimal

    def check(self, node: ast.AST) -> Type:
        check = self.checks.get(type(node))
        if check is None:
            return self.forbid(node)
        return check(node)

    def value(self, node: ast.AST) -> Type:
        """Check a node used as a value: everywhere except as an item function's argument."""
        t = self.check(node)
        if t is Type.ITEMS:
            return self.error(
                "type_mismatch", f"'{ast.unparse(node)}' is a list of line items: {_ITEMS_HINT}", node
            )
        return t

    def forbid(self, node: ast.AST) -> Type:
        message = _FORBIDDEN.get(type(node), f"{type(node).__name__} is not allowed in an expression")
        return self.error("forbidden_syntax", message, node)

    def forbid_operator(self, op: ast.AST, node: ast.AST) -> Type:
        symbol = _OPERATOR_SYMBOLS.get(type(op), type(op).__name__)
        hint = ": use == and !=" if isinstance(op, ast.Is | ast.IsNot) else ""
        return self.error(
            "forbidden_syntax", f"operator '{symbol}' is not allowed in an expression{hint}", node
        )

    def _constant(self, node: ast.Constant) -> Type:
        value = node.value
        if isinstance(value, bool):
            return Type.BOOL
        if isinstance(value, int):
            return Type.NUMBER
        if isinstance(value, float):
            # From the source text, never through the float: 0.1 must be exactly one tenth.
            text = ast.get_source_segment(self.source, node) or repr(value)
            try:
                decimal_value: Any = Decimal(text)  # ast's annotation does not know Decimal
            except decimal.InvalidOperation:
                return self.error("syntax_error", f"cannot read the number {text!r}", node)
            node.value = decimal_value
            return Type.NUMBER
        if isinstance(value, str):
            return Type.STR
        if value is None:
            return Type.ANY
        what = {complex: "complex numbers are", bytes: "bytes literals are"}.get(type(value), "'...' is")
        return self.error("forbidden_syntax", f"{what} not allowed in an expression", node)

    def read(self, name: str) -> Type:
        self.names.setdefault(name)
        return self.env[name]

    def _name(self, node: ast.Name) -> Type:
        name = node.id
        if name.startswith("_"):
            return self.error("forbidden_syntax", f"'{name}': names starting with '_' are not allowed", node)
        if name in self.env:
            return self.read(name)
        if name in self.functions:
            return self.error(
                "unknown_name",
                f"'{name}' is a function, not a value: call it, as in {self.functions.table[name].signature}",
                node,
            )
        if name in self.namespaces:
            example = next(key for key in self.env if key.startswith(name + "."))
            return self.error(
                "unknown_name",
                f"'{name}' is a namespace, not a value: use one of its attributes, such as '{example}'",
                node,
            )
        return self.unknown("unknown_name", "name", name, node, [*self.env, *self.functions.table])

    def _attribute(self, node: ast.Attribute) -> Type:
        attr, owner = node.attr, node.value
        if attr.startswith("_"):
            return self.error("forbidden_syntax", f"'{attr}': names starting with '_' are not allowed", node)
        if not isinstance(owner, ast.Name):
            return self.error(
                "forbidden_syntax",
                f"'.{attr}' is not allowed: attributes can only be read from a namespace, as in event.amount",
                node,
            )
        if owner.id.startswith("_"):
            return self.error(
                "forbidden_syntax", f"'{owner.id}': names starting with '_' are not allowed", node
            )
        dotted = f"{owner.id}.{attr}"
        if dotted in self.env:
            return self.read(dotted)
        if owner.id not in self.namespaces and (owner.id in self.env or owner.id in self.functions):
            return self.error(
                "forbidden_syntax",
                f"'{dotted}' is not allowed: '{owner.id}' is not a namespace, and attributes can only be"
                " read from a namespace, as in event.amount",
                node,
            )
        if owner.id in ("member", "event") and attr in PERSONAL_FIELDS:
            return self.error(
                "personal_data",
                f"'{dotted}' is personal data, which expressions never read (so no decision or trace"
                " holds it); for birthdays use member.birthday_month and member.birthday_day",
                node,
            )
        return self.unknown("unknown_name", "name", dotted, node, list(self.env))

    def _bool_op(self, node: ast.BoolOp) -> Type:
        kinds = [self.value(v) for v in node.values]
        return Type.BOOL if all(t is Type.BOOL for t in kinds) else Type.ANY

    def _unary_op(self, node: ast.UnaryOp) -> Type:
        if isinstance(node.op, ast.Not):
            self.value(node.operand)
            return Type.BOOL
        if not isinstance(node.op, ast.USub | ast.UAdd):
            return self.forbid_operator(node.op, node)
        t = self.value(node.operand)
        if t in _NUMERIC or t is Type.ANY:
            return Type.NUMBER
        symbol = _OPERATOR_SYMBOLS[type(node.op)]
        return self.error("type_mismatch", f"unary '{symbol}' needs a number, got {t.value}", node)

    def _bin_op(self, node: ast.BinOp) -> Type:
        if type(node.op) not in _BINARY:
            return self.forbid_operator(node.op, node)
        left, right = self.value(node.left), self.value(node.right)
        symbol = _OPERATOR_SYMBOLS[type(node.op)]
        is_add, is_mult = isinstance(node.op, ast.Add), isinstance(node.op, ast.Mult)
        numeric_or_any = (*_NUMERIC, Type.ANY)
        if left in numeric_or_any and right in numeric_or_any:
            # An ANY operand may turn out to be text: then * repeats it and + of two ANYs joins.
            if (is_mult and Type.ANY in (left, right)) or (is_add and left is right is Type.ANY):
                return Type.ANY
            return Type.NUMBER
        if is_add and {left, right} <= {Type.STR, Type.ANY}:
            return Type.STR
        if (
            is_mult
            and Type.STR in (left, right)
            and {left, right} <= {Type.STR, *numeric_or_any}
            and left is not right
        ):
            return Type.STR
        if Type.INSTANT in (left, right):
            return self.error(
                "type_mismatch",
                f"'{symbol}' is not supported on instants: compare instants, or use days_between(a, b)",
                node,
            )
        return self.error(
            "type_mismatch", f"'{symbol}' not supported between {left.value} and {right.value}", node
        )

    def _compare(self, node: ast.Compare) -> Type:
        left = self.value(node.left)
        last = len(node.ops) - 1
        for index, (op, right_node) in enumerate(zip(node.ops, node.comparators, strict=True)):
            if type(op) not in _COMPARE:
                self.forbid_operator(op, node)
                right = Type.ANY
            elif isinstance(op, ast.In | ast.NotIn):
                right = self.membership(left, right_node, node, is_last=index == last)
            else:
                right = self.value(right_node)
                self.comparison(op, left, right, node)
            left = right
        return Type.BOOL

    def membership(self, left: Type, right_node: ast.AST, node: ast.AST, *, is_last: bool) -> Type:
        if isinstance(right_node, ast.Tuple | ast.List):
            if not is_last:
                self.forbid(right_node)
            clashed = False
            for element in right_node.elts:
                t = self.value(element)
                if self.clash(left, t) and not clashed:  # once per list is enough
                    clashed = True
                    self.error(
                        "type_mismatch",
                        f"'in' looks for a {left.value} in a list that holds a {t.value}",
                        element,
                    )
            return Type.ANY
        right = self.value(right_node)
        if right in (Type.STR, Type.STR_LIST):
            if left not in (Type.STR, Type.ANY):
                self.error(
                    "type_mismatch",
                    f"'in' on a {right.value} needs a str on the left, got {left.value}",
                    node,
                )
        elif right is not Type.ANY:
            self.error(
                "type_mismatch",
                f"the right of 'in' must be a list such as (6, 7), a str or a str_list, got {right.value}",
                right_node,
            )
        return right

    def clash(self, a: Type, b: Type) -> bool:
        return Type.ANY not in (a, b) and _kind(a) is not _kind(b)

    def comparison(self, op: ast.cmpop, left: Type, right: Type, node: ast.AST) -> None:
        symbol = _OPERATOR_SYMBOLS[type(op)]
        hint = (
            ': use date("YYYY-MM-DD")' if {_kind(left), _kind(right)} == {Type.INSTANT, Type.NUMBER} else ""
        )
        if isinstance(op, ast.Eq | ast.NotEq):
            if self.clash(left, right):
                self.error(
                    "type_mismatch",
                    f"cannot compare {left.value} with {right.value} using '{symbol}'{hint}",
                    node,
                )
            return
        if Type.ANY in (left, right):
            if left in (*_ORDERED, Type.ANY) and right in (*_ORDERED, Type.ANY):
                return
        elif left in _ORDERED and right in _ORDERED and _kind(left) is _kind(right):
            return
        self.error("type_mismatch", f"cannot compare {left.value} with {right.value}{hint}", node)

    def _if_exp(self, node: ast.IfExp) -> Type:
        self.value(node.test)
        body, orelse = self.value(node.body), self.value(node.orelse)
        return body if body is orelse else Type.ANY

    def _call(self, node: ast.Call) -> Type:
        func = node.func
        if not isinstance(func, ast.Name):
            what = (
                f"calling '.{func.attr}'"
                if isinstance(func, ast.Attribute)
                else "calling the result of an expression"
            )
            return self.error(
                "forbidden_syntax",
                f"{what} is not allowed: only the built-in functions can be called, as in floor(x)",
                node,
            )
        name = func.id
        if name.startswith("_"):
            return self.error("forbidden_syntax", f"'{name}': names starting with '_' are not allowed", node)
        function = self.functions.get(name)
        if function is None:
            if name in self.env:
                self.error("unknown_function", f"'{name}' is a value, not a function", node)
            else:
                self.unknown("unknown_function", "function", name, node, list(self.functions.table))
            for arg in node.args:
                self.value(arg)
            return Type.ANY
        if node.keywords:
            return self.error(
                "forbidden_syntax",
                f"keyword arguments are not allowed: write {function.signature}",
                node.keywords[0],
            )
        if not function.accepts(len(node.args)):
            s = "" if len(node.args) == 1 else "s"
            return self.error(
                "bad_arguments", f"{function.signature} cannot take {len(node.args)} argument{s}", node
            )
        for index, arg in enumerate(node.args):
            self.argument(function, function.kind_of(index), arg)
        return function.result

    def argument(self, function: Function, kind: str, arg: ast.expr) -> None:
        name = function.name
        if kind == _P_DATE:
            if not (isinstance(arg, ast.Constant) and _parse_date(arg.value) is not None):
                self.error(
                    "bad_arguments",
                    f'date() needs a literal date such as date("2026-12-24"), got {ast.unparse(arg)[:40]}',
                    arg,
                )
            return
        if kind == _P_FIELD:
            if not (isinstance(arg, ast.Constant) and arg.value in _ITEM_FIELDS):
                self.error(
                    "bad_arguments",
                    f'{name}() looks items up by "sku" or "category", got {ast.unparse(arg)[:40]}',
                    arg,
                )
            return
        if kind in (_P_SIZED, _P_ITEMS):
            t = self.check(arg)
            allowed: tuple[Type, ...] = (
                (Type.ITEMS,) if kind == _P_ITEMS else (Type.STR, Type.STR_LIST, Type.ITEMS, Type.ANY)
            )
            if t not in allowed:
                wanted = "line items such as event.items" if kind == _P_ITEMS else "a str or a list"
                self.error("type_mismatch", f"{name}() needs {wanted}, got {t.value}", arg)
            return
        t = self.value(arg)
        if t is Type.ANY:
            return
        if kind in (_P_NUMBER, _P_DIGITS):
            if t not in _NUMERIC:
                self.error("type_mismatch", f"{name}() needs a number, got {t.value}", arg)
            elif kind == _P_DIGITS and _is_literal(arg):
                digits = _literal_int(arg)
                if digits is None or not -MAX_ROUND_DIGITS <= digits <= MAX_ROUND_DIGITS:
                    self.error(
                        "bad_arguments",
                        f"round() needs a whole number of digits, -{MAX_ROUND_DIGITS} to {MAX_ROUND_DIGITS}",
                        arg,
                    )
        elif kind == _P_INSTANT and t is not Type.INSTANT:
            self.error("type_mismatch", f"{name}() needs an instant such as now, got {t.value}", arg)
        elif kind == _P_STR and t is not Type.STR:
            self.error("type_mismatch", f"{name}() needs a str, got {t.value}", arg)

    # ---- building closures from a tree the checker accepted

    def build(self, node: ast.AST) -> _Code:
        reported = len(self.errors)
        code = self._build(node)
        if len(self.errors) > reported:  # already reported below: do not report it again
            return code
        if code.kind != _CONST:
            children = (
                node.args
                if isinstance(node, ast.Call)
                else [child for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr)]
            )
            if children and all(id(child) in self.constants for child in children):
                # Everything below is constant: evaluate now, so `9 ** 9 ** 9` or `1 / 0` is an
                # error at load rather than on every event, and constants cost nothing per event.
                try:
                    code = _Code(_CONST, code.value({}))
                except Exception as error:  # any failure of a constant part is reported
                    self.error(
                        "bad_arguments",
                        f"{_describe(error)} (this part of the expression always fails)",
                        node,
                    )
                    return _Code(_CONST, None)
        if code.kind == _CONST:
            self.constants.add(id(node))
        return code

    def _build(self, node: ast.AST) -> _Code:
        if isinstance(node, ast.Constant):
            return _Code(_CONST, node.value)
        if isinstance(node, ast.Name):
            key = node.id
            return _Code(_FN, lambda d: d[key])
        if isinstance(node, ast.Attribute):
            assert isinstance(node.value, ast.Name)
            return _Code(_ATTR, (node.value.id, node.attr))
        if isinstance(node, ast.BoolOp):
            return _Code(_FN, self._build_bool_op(node))
        if isinstance(node, ast.UnaryOp):
            operand, f = _as_fn(self.build(node.operand)), _UNARY[type(node.op)]
            return _Code(_FN, lambda d: f(operand(d)))
        if isinstance(node, ast.BinOp):
            left, right = self.build(node.left), self.build(node.right)
            if right.kind == _CONST and _is_number(right.value):  # fails whatever the left side is
                if isinstance(node.op, ast.Pow) and not -MAX_POWER <= right.value <= MAX_POWER:
                    self.error(
                        "bad_arguments", f"power too large: the exponent is more than {MAX_POWER}", node
                    )
                elif isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod) and right.value == 0:
                    self.error(
                        "bad_arguments", "division by zero (this part of the expression always fails)", node
                    )
            return _Code(_FN, _binary(_BINARY[type(node.op)], left, right))
        if isinstance(node, ast.Compare):
            return _Code(_FN, self._build_compare(node))
        if isinstance(node, ast.IfExp):
            test, body, orelse = (_as_fn(self.build(n)) for n in (node.test, node.body, node.orelse))
            return _Code(_FN, lambda d: body(d) if test(d) else orelse(d))
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            impl = self.functions.table[node.func.id].impl
            return _Code(_FN, _call_closure(impl, [self.build(arg) for arg in node.args]))
        raise AssertionError(f"unchecked node {type(node).__name__}")  # the checker rejects the rest

    def _build_bool_op(self, node: ast.BoolOp) -> _Closure:
        fns = [_as_fn(self.build(v)) for v in node.values]
        if isinstance(node.op, ast.And):
            if len(fns) == 2:
                a, b = fns
                return lambda d: a(d) and b(d)

            def all_of(d: Mapping[str, Any]) -> Any:
                value = None
                for f in fns:
                    value = f(d)
                    if not value:
                        return value
                return value

            return all_of
        if len(fns) == 2:
            a, b = fns
            return lambda d: a(d) or b(d)

        def any_of(d: Mapping[str, Any]) -> Any:
            value = None
            for f in fns:
                value = f(d)
                if value:
                    return value
            return value

        return any_of

    def _operand(self, op: ast.cmpop, node: ast.AST) -> tuple[Callable[[Any, Any], Any], _Code]:
        """The comparison function and compiled right side; a literal list on the right of `in`
        becomes a frozenset probe when all its elements are constants."""
        if isinstance(node, ast.Tuple | ast.List):
            codes = [self.build(e) for e in node.elts]
            if all(code.kind == _CONST for code in codes):
                self.constants.add(id(node))
                values = tuple(code.value for code in codes)
                try:
                    choices = frozenset(values)
                except TypeError:
                    return _COMPARE[type(op)], _Code(_CONST, values)
                if isinstance(op, ast.In):
                    return (lambda a, _: _in_literal(a, choices, values)), _Code(_CONST, values)
                return (lambda a, _: not _in_literal(a, choices, values)), _Code(_CONST, values)
            fns = tuple(_as_fn(code) for code in codes)
            return _COMPARE[type(op)], _Code(_FN, lambda d: tuple(f(d) for f in fns))
        return _COMPARE[type(op)], self.build(node)

    def _build_compare(self, node: ast.Compare) -> _Closure:
        left = self.build(node.left)
        if len(node.ops) == 1:
            f, right = self._operand(node.ops[0], node.comparators[0])
            return _binary(f, left, right)
        steps = [
            self._operand(op, comparator) for op, comparator in zip(node.ops, node.comparators, strict=True)
        ]
        first = _as_fn(left)
        links = tuple((f, _as_fn(code)) for f, code in steps)

        def chain(d: Mapping[str, Any]) -> Any:
            # As Python: each middle operand is evaluated once, and the chain stops at the first
            # false link, returning it.
            a = first(d)
            result: Any = True
            for f, right in links:
                b = right(d)
                result = f(a, b)
                if not result:
                    return result
                a = b
            return result

        return chain


def _is_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return _is_literal(node.operand)
    return isinstance(node, ast.Constant)


def _literal_int(node: ast.AST) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _literal_int(node.operand)
        if inner is None:
            return None
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


_NOT_WHAT = {
    Type.BOOL: ("not_boolean", "a condition must be true or false"),
    Type.NUMBER: ("not_number", "an amount must be a number"),
}


def compile_expr(
    source: str, env: Mapping[str, Type], functions: Functions, *, expect: Type | None = None
) -> tuple[Expr | None, list[ExprError]]:
    """Parse, check and compile an expression.

    Never raises for any input string; returns (None, errors) on any error, every error found.
    `expect` is Type.BOOL for conditions ("not_boolean" when the result is definitely not a bool;
    ANY is accepted) and Type.NUMBER for amounts ("not_number").

    The result is a pure function of the arguments, so it is remembered: loading a scheme checks
    its expressions and compiling it for the engine asks for the same ones again, as does the next
    version of a scheme for every expression it keeps.
    """
    if not isinstance(source, str) or len(source) > MAX_SOURCE_LENGTH:
        return _compile_expr(source, env, functions, expect=expect)
    try:
        key = (source, tuple(env.items()), functions, expect)
        hash(key)
    except TypeError:  # an environment that cannot be a key is compiled every time
        return _compile_expr(source, env, functions, expect=expect)
    expr, errors = _compile_remembered(key)
    return expr, list(errors)


def clear_compiled() -> None:
    """Forget the expressions compiled so far (to measure a cold load)."""
    _compile_remembered.cache_clear()


_Key = tuple[str, tuple[tuple[str, Type], ...], Functions, Type | None]


@lru_cache(maxsize=4096)  # a few MiB at most; a 1,000-rule scheme has some hundreds of different texts
def _compile_remembered(key: _Key) -> tuple[Expr | None, tuple[ExprError, ...]]:
    source, env, functions, expect = key
    expr, errors = _compile_expr(source, dict(env), functions, expect=expect)
    return expr, tuple(errors)


def _compile_expr(
    source: str, env: Mapping[str, Type], functions: Functions, *, expect: Type | None = None
) -> tuple[Expr | None, list[ExprError]]:
    if not isinstance(source, str):
        return None, [
            ExprError("syntax_error", f"an expression must be text, got {type(source).__name__}", 1)
        ]
    if len(source) > MAX_SOURCE_LENGTH:
        return None, [
            ExprError(
                "too_long", f"expression too long: {len(source)} characters, at most {MAX_SOURCE_LENGTH}", 1
            )
        ]
    tree, parse_error = _parse(source)
    if parse_error is not None or tree is None:
        return None, [parse_error or ExprError("syntax_error", "invalid syntax", 1)]
    stripped = source.strip()
    positions = _Positions(stripped, len(source) - len(source.lstrip()))
    too_deep = f"expression nested too deeply (at most {MAX_DEPTH} levels)"
    deep = _too_deep(tree)
    if deep is not None:
        return None, [ExprError("too_deep", too_deep, positions.of_node(deep))]
    bracket = _deepest_bracket(stripped)
    if bracket is not None:
        line, column = bracket
        return None, [ExprError("too_deep", too_deep, positions.of_char(line, column))]

    types_by_name = {name: t if type(t) is Type else Type(t) for name, t in env.items()}
    compiler = _Compiler(stripped, types_by_name, functions, positions)
    result = compiler.value(tree.body)
    if not compiler.errors and expect is not None and result is not Type.ANY and result is not expect:
        code, what = _NOT_WHAT.get(expect, ("type_mismatch", f"the expression must give a {expect.value}"))
        compiler.error(code, f"{what}, but this gives a {result.value}", tree.body)
    if compiler.errors:
        return None, compiler.errors

    root = compiler.build(tree.body)
    if compiler.errors:
        return None, compiler.errors
    names = tuple(compiler.names)
    if root.kind == _CONST:
        value = root.value
        fn: _Closure = lambda d: value  # noqa: E731
    else:
        fn = _guarded(_as_fn(root), names)
    return Expr(source, result, names, fn, tree.body), []


# --------------------------------------------------------------------------------------------------
# Reference evaluator


class _ReferenceEval(simpleeval.SimpleEval):  # type: ignore[misc]
    """simpleeval, with literal lists for `x in (6, 7)` and nothing else added."""

    def __init__(
        self, functions: dict[str, Callable[..., Any]], names: dict[str, Any], attrs: frozenset[str]
    ):
        super().__init__(
            operators=_REFERENCE_OPERATORS,
            functions=functions,
            names=names,
            # Attribute access only on our namespaces, and only to attributes the checker allowed.
            allowed_attrs={types.SimpleNamespace: attrs},
        )
        self.nodes[ast.Tuple] = self._eval_literal_list
        self.nodes[ast.List] = self._eval_literal_list

    def _eval_literal_list(self, node: ast.Tuple | ast.List) -> tuple[Any, ...]:
        return tuple(self._eval(element) for element in node.elts)


def evaluate_reference(expr: Expr, data: Mapping[str, Any], functions: Functions) -> Any:
    """Evaluate with simpleeval instead of the compiled closure. Raises only EvalError."""
    if expr.tree is None:
        raise EvalError("this expression was not made by compile_expr")
    # Namespaces become SimpleNamespaces holding only the attributes the expression reads, so
    # `event.items` is the event's line items and never dict.items.
    names: dict[str, Any] = {}
    attrs: set[str] = set()
    for name in expr.names:
        head, _, attr = name.partition(".")
        try:
            value = data[head]
        except (KeyError, TypeError):
            continue
        if not attr:
            names[head] = value
            continue
        attrs.add(attr)
        if not isinstance(value, Mapping):
            continue
        namespace = names.setdefault(head, types.SimpleNamespace())
        if attr in value:
            setattr(namespace, attr, value[attr])
    evaluator = _ReferenceEval(functions.callables(), names, frozenset(attrs))
    try:
        return evaluator.eval(expr.source, previously_parsed=expr.tree)
    except EvalError:
        raise
    except simpleeval.InvalidExpression as error:
        raise EvalError(_missing(data, expr.names) or str(error)) from error
    except _RUNTIME_ERRORS as error:
        raise EvalError(_failure(error, data, expr.names)) from error
