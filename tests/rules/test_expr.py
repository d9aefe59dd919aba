"""The expression language of conditions and amounts, stated as examples.

Every expression here is compiled against ENV and, where it runs, evaluated on DATA by both
engines: the compiled closure and the simpleeval reference. `value_of` and `failure_of` assert
that the two agree, so each example pins the semantics of both.
"""

from __future__ import annotations

import decimal
import functools
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perkflow.rules.expr import (
    MAX_SOURCE_LENGTH,
    EvalError,
    Expr,
    ExprError,
    Type,
    compile_expr,
    evaluate_reference,
    functions_for,
)

SHANGHAI = functions_for("Asia/Shanghai")
UTC_FUNCTIONS = functions_for("UTC")

ENV: dict[str, Type] = {
    "event.amount": Type.NUMBER,
    "event.type": Type.STR,
    "event.store": Type.STR,
    "event.channel": Type.STR,
    "event.occurred_at": Type.INSTANT,
    "event.items": Type.ITEMS,
    "event.coupon": Type.STR,
    "member.tier": Type.STR,
    "member.tags": Type.STR_LIST,
    "member.joined_at": Type.INSTANT,
    "member.is_staff": Type.BOOL,
    "tier.points_multiplier": Type.NUMBER,
    "counters.visits_30d": Type.NUMBER,
    "counters.zero": Type.NUMBER,
    "campaign.code": Type.STR,
    "now": Type.INSTANT,
}

DAY = 86_400
# 2026-11-22T16:30:00Z is 00:30 on Monday 23 November in Shanghai (UTC+8), still Sunday in UTC.
MONDAY_0030_SHANGHAI = int(datetime(2026, 11, 22, 16, 30, tzinfo=UTC).timestamp())
ITEMS = (
    {"sku": "B-250", "category": "beans", "quantity": 2, "amount": 3000},
    {"sku": "B-500", "category": "beans", "quantity": 1, "amount": 2000},
    {"sku": "M-1", "category": "milk", "quantity": 1, "amount": 500},
)
DATA: dict[str, Any] = {
    "event": {
        "amount": 3500,
        "items": ITEMS,
        "type": "purchase",
        "store": "S001",
        "channel": "pos",
        "occurred_at": MONDAY_0030_SHANGHAI,
    },
    "member": {
        "tier": "gold",
        "tags": ("vip", "staff-friend"),
        "joined_at": MONDAY_0030_SHANGHAI - 10 * DAY,
        "is_staff": False,
    },
    "tier": {"points_multiplier": Decimal("1.5")},
    "counters": {"visits_30d": 4, "zero": 0},
    "campaign": {"code": "XMAS"},
    "now": MONDAY_0030_SHANGHAI,
}
ERROR_CODES = {
    "syntax_error",
    "forbidden_syntax",
    "unknown_name",
    "unknown_function",
    "type_mismatch",
    "too_long",
    "too_deep",
    "bad_arguments",
    "not_boolean",
    "not_number",
}


def compiled(source: str, functions: Any = SHANGHAI, env: dict[str, Type] = ENV, **kwargs: Any) -> Expr:
    expr, errors = compile_expr(source, env, functions, **kwargs)
    assert errors == []
    assert expr is not None
    return expr


def value_of(source: str, data: dict[str, Any] = DATA, functions: Any = SHANGHAI) -> Any:
    """The value of an expression, after checking that both engines agree on it, type included."""
    expr = compiled(source, functions)
    value = expr(data)
    reference = evaluate_reference(expr, data, functions)
    assert (type(value), value) == (type(reference), reference)
    return value


def failure_of(source: str, data: dict[str, Any] = DATA, functions: Any = SHANGHAI) -> str:
    """The EvalError message of an expression that compiles but fails, the same in both engines."""
    expr = compiled(source, functions)
    with pytest.raises(EvalError) as compiled_failure:
        expr(data)
    with pytest.raises(EvalError) as reference_failure:
        evaluate_reference(expr, data, functions)
    assert str(compiled_failure.value) == str(reference_failure.value)
    return str(compiled_failure.value)


def errors_of(source: str, **kwargs: Any) -> list[ExprError]:
    expr, errors = compile_expr(source, ENV, SHANGHAI, **kwargs)
    assert expr is None
    assert errors
    return errors


# --------------------------------------------------------------------------------------------------
# What each construct means


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # literals
        ("42", 42),
        ("1_000", 1000),
        ('"gold"', "gold"),
        ("'金卡'", "金卡"),
        ("True", True),
        ("None", None),
        ("2.50", Decimal("2.50")),
        (".5", Decimal("0.5")),
        ("1e3", Decimal("1e3")),
        # names: one level of namespace, or a top-level name
        ("event.amount", 3500),
        ("member.tier", "gold"),
        ("member.tags", ("vip", "staff-friend")),
        ("tier.points_multiplier", Decimal("1.5")),
        ("now", MONDAY_0030_SHANGHAI),
        # arithmetic: ints stay ints, anything with a Decimal is a Decimal, nothing is a float
        ("event.amount + 500", 4000),
        ("event.amount - 4000", -500),
        ("event.amount * tier.points_multiplier", Decimal("5250.0")),
        ("2 ** 10", 1024),
        ("2 ** -1", Decimal("0.5")),
        ("1.5 ** 2", Decimal("2.25")),
        ("-event.amount", -3500),
        ("+2.5", Decimal("2.5")),
        ("True + True", 2),
        ('"ab" + "cd"', "abcd"),
        ('"ab" * 3', "ababab"),
        ('3 * "ab"', "ababab"),
        # `/` divides as Decimal with 28 significant digits
        ("7 / 2", Decimal("3.5")),
        ("10 / 5", Decimal("2")),
        ("1 / 3", Decimal("0.3333333333333333333333333333")),
        ("2 / 3", Decimal("0.6666666666666666666666666667")),
        # `//` and `%` floor, for ints and Decimals alike
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("-7.5 // 2", Decimal("-4")),
        ("7 % 3", 1),
        ("-7 % 3", 2),
        ("-7.5 % 2", Decimal("0.5")),
        ("7.5 % -2", Decimal("-0.5")),
        # comparisons, chained as in Python
        ("event.amount >= 3000", True),
        ("1000 <= event.amount < 5000", True),
        ("1 < 2 > 3", False),
        ("event.amount == 3500.0", True),
        ("member.tier != 'silver'", True),
        ("'apple' < 'banana'", True),
        ("member.joined_at < now", True),
        ('now >= date("2026-11-23")', True),
        ("member.is_staff == 0", True),
        # membership: a literal list, a str_list or a text
        ('member.tier in ("gold", "platinum")', True),
        ('member.tier in ["silver"]', False),
        ("weekday(now) in (6, 7)", False),
        ("weekday(now) not in (6, 7)", True),
        ('"vip" in member.tags', True),
        ('"vip" not in member.tags', False),
        ('"ol" in member.tier', True),
        ("event.amount in (event.amount + 0, 1)", True),
        # and / or / not short-circuit and return an operand, as in Python
        ("event.amount > 1000 and member.tier == 'gold'", True),
        ("event.amount > 1000 and member.tier", "gold"),
        ("member.is_staff or event.amount", 3500),
        ("member.is_staff and event.coupon", False),
        ("not member.is_staff", True),
        ("not event.amount", False),
        # conditional
        ("5 if member.tier == 'gold' else 1", 5),
        ("5 if member.is_staff else 'none'", "none"),
        ("event.coupon if member.is_staff else 0", 0),
        # functions
        ("min(3, 1.5, 2)", Decimal("1.5")),
        ("max(event.amount, 5000)", 5000),
        ("abs(-2.5)", Decimal("2.5")),
        ("abs(-3)", 3),
        ("len(member.tags)", 2),
        ("len(event.items)", 3),
        ('len("金卡")', 2),
        ('items_amount(event.items, "category", "beans")', 5000),
        ('items_amount(event.items, "category", "tea")', 0),
        ('items_quantity(event.items, "sku", "B-250")', 2),
        ('has_item(event.items, "sku", "M-1")', True),
        ('has_item(event.items, "category", "tea")', False),
        ("floor(event.amount / 100 * tier.points_multiplier)", 52),
    ],
)
def test_each_construct_has_the_value_python_would_give_without_floats(source: str, expected: Any) -> None:
    value = value_of(source)
    assert (type(value), value) == (type(expected), expected)


def test_float_literals_are_read_as_decimals_from_their_source_text() -> None:
    assert value_of("0.1 + 0.2 == 0.3") is True
    assert value_of("0.1 * 3") == Decimal("0.3")
    assert value_of("7 / 2 == 3.5") is True
    assert value_of("1e400 > 10 ** 399") is True  # a float would be infinity


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("floor(2.5)", 2),
        ("floor(-2.5)", -3),
        ("ceil(2.1)", 3),
        ("ceil(-2.1)", -2),
        ("floor(7)", 7),
        # round: half away from zero ("commercial"), never half-even as Python's round()
        ("round(2.5)", 3),
        ("round(3.5)", 4),
        ("round(-2.5)", -3),
        ("round(2.4999)", 2),
        ("round(7)", 7),
        ("round(2.675, 2)", Decimal("2.68")),
        ("round(2.665, 2)", Decimal("2.67")),
        ("round(-0.125, 2)", Decimal("-0.13")),
        ("round(1250, -2)", 1300),
        ("round(-1250, -2)", -1300),
        ("round(1249, -2)", 1200),
        ("round(12.5, 0)", Decimal("13")),
    ],
)
def test_floor_ceil_and_round_give_ints_and_round_half_up(source: str, expected: Any) -> None:
    value = value_of(source)
    assert (type(value), value) == (type(expected), expected)


def test_division_does_not_depend_on_the_hosts_decimal_context() -> None:
    with decimal.localcontext() as context:
        context.prec = 5
        context.rounding = decimal.ROUND_DOWN
        assert value_of("2 / 3") == Decimal("0.6666666666666666666666666667")
        assert value_of("1.00001 * 3") == Decimal("3.00003")


# --------------------------------------------------------------------------------------------------
# Time: instants are epoch seconds; calendar helpers read them in the scheme's timezone


@pytest.mark.parametrize(
    ("source", "in_shanghai", "in_utc"),
    [
        ("weekday(now)", 1, 7),  # ISO: Monday is 1, Sunday is 7
        ("hour(now)", 0, 16),
        ("day(now)", 23, 22),
        ("month(now)", 11, 11),
        ("year(now)", 2026, 2026),
        ("weekday(event.occurred_at) in (6, 7)", False, True),
    ],
)
def test_calendar_helpers_read_instants_in_the_scheme_timezone(
    source: str, in_shanghai: Any, in_utc: Any
) -> None:
    assert value_of(source, functions=SHANGHAI) == in_shanghai
    assert value_of(source, functions=UTC_FUNCTIONS) == in_utc


def test_date_is_local_midnight_of_that_day() -> None:
    assert value_of('date("2026-11-23")') == int(datetime(2026, 11, 22, 16, 0, tzinfo=UTC).timestamp())
    assert value_of('date("2026-11-23")', functions=UTC_FUNCTIONS) == int(
        datetime(2026, 11, 23, tzinfo=UTC).timestamp()
    )


def test_date_in_a_midnight_dst_gap_is_the_first_instant_of_that_day() -> None:
    # São Paulo skipped from 00:00 to 01:00 on 4 November 2018.
    sao_paulo = functions_for("America/Sao_Paulo")
    first = int(datetime(2018, 11, 4, 3, 0, tzinfo=UTC).timestamp())
    assert value_of('date("2018-11-04")', functions=sao_paulo) == first
    assert value_of('hour(date("2018-11-04"))', functions=sao_paulo) == 1


def test_days_between_counts_local_calendar_days_not_24_hour_periods() -> None:
    sunday_2359 = int(datetime(2026, 11, 22, 15, 59, tzinfo=UTC).timestamp())  # Shanghai
    monday_0001 = sunday_2359 + 120
    data = {**DATA, "member": {**DATA["member"], "joined_at": sunday_2359}, "now": monday_0001}
    assert value_of("days_between(member.joined_at, now)", data) == 1
    assert value_of("days_between(now, member.joined_at)", data) == -1
    assert value_of("days_between(member.joined_at, now)", data, functions=UTC_FUNCTIONS) == 0
    assert value_of("days_between(member.joined_at, now) <= 30") is True


def test_an_unknown_timezone_is_refused_when_the_functions_are_built() -> None:
    with pytest.raises(ValueError, match="unknown timezone 'Mars/Olympus'"):
        functions_for("Mars/Olympus")


# --------------------------------------------------------------------------------------------------
# What a compiled expression tells its caller


def test_names_are_the_dotted_names_read_in_first_read_order() -> None:
    expr = compiled(
        "days_between(member.joined_at, now) <= 30 and event.amount > 0 and now > member.joined_at"
    )
    assert expr.names == ("member.joined_at", "now", "event.amount")
    assert compiled("1 if member.is_staff else event.amount").names == ("member.is_staff", "event.amount")
    assert compiled("2 + 2").names == ()


def test_result_type_is_inferred() -> None:
    assert compiled("event.amount >= 3000 and member.tier == 'gold'").result_type is Type.BOOL
    assert compiled("floor(event.amount / 100)").result_type is Type.NUMBER
    assert compiled("member.tier + '!'").result_type is Type.STR
    assert compiled('date("2026-12-24")').result_type is Type.INSTANT
    assert compiled("1 if member.is_staff else 'x'").result_type is Type.ANY
    assert compiled("event.amount > 0 or member.tier").result_type is Type.ANY


def test_the_same_source_compiles_to_equal_expressions() -> None:
    assert compiled("event.amount > 1") == compiled("event.amount > 1")
    assert compiled("event.amount > 1") != compiled("event.amount > 2")


def test_the_reference_engine_reads_event_items_from_the_data_not_dict_methods() -> None:
    expr = compiled("len(event.items)")
    assert evaluate_reference(expr, DATA, SHANGHAI) == 3


def test_leading_and_trailing_blanks_are_ignored() -> None:
    assert value_of("  event.amount > 1 \n") is True
    assert errors_of("  member.teir")[0].column == 3


def test_conditions_accept_any_and_amounts_accept_numbers() -> None:
    compiled("member.is_staff or event.coupon", expect=Type.BOOL)
    compiled("event.coupon if member.is_staff else None", expect=Type.BOOL)
    compiled("floor(event.amount / 100)", expect=Type.NUMBER)


# --------------------------------------------------------------------------------------------------
# What fails at run time: EvalError only, with the same message from both engines


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("event.amount / counters.zero", "division by zero"),
        ("counters.zero / counters.zero", "division by zero"),
        ("event.amount // counters.zero", "division by zero"),
        ("event.amount % counters.zero", "division by zero"),
        ("tier.points_multiplier / counters.zero", "division by zero"),
        ("tier.points_multiplier % counters.zero", "division by zero"),
        ("counters.zero ** -1", "division by zero"),
        ("event.amount ** (counters.visits_30d * 1000001)", "power too large"),
        ("event.amount ** counters.visits_30d ** 12", "power too large"),  # 3500 ** 16777216
        ("event.amount ** 1000", "power too large"),  # the exponent is fine, the result is not
        ("member.tier * event.amount * 1000", "text too long: more than 100000 characters"),
        ("member.tier * 25000 + member.tier", "text too long: more than 100000 characters"),
        ("event.coupon == 'XMAS'", "missing value 'event.coupon'"),
        ("(member.tier if not member.is_staff else 1) < 2", "'<' not supported between str and int"),
        ("(member.tier if not member.is_staff else 1) - 2", "'-' not supported between str and int"),
        ("floor(member.tier if not member.is_staff else 1)", "floor() needs a number, got str"),
        ("round(2.5, tier.points_multiplier)", "round() needs a whole number of digits, -28 to 28"),
        ("round(2.5, counters.visits_30d * 10)", "round() needs a whole number of digits, -28 to 28"),
    ],
)
def test_runtime_failures_are_eval_errors(source: str, message: str) -> None:
    assert failure_of(source) == message


def test_a_missing_namespace_or_value_names_what_is_missing() -> None:
    assert (
        failure_of("campaign.code == 'XMAS'", {**DATA, "campaign": None}) == "missing value 'campaign.code'"
    )
    no_campaign = {k: v for k, v in DATA.items() if k != "campaign"}
    assert (
        failure_of("event.amount > 1 and campaign.code == 'X'", no_campaign)
        == "missing value 'campaign.code'"
    )
    no_now = {k: v for k, v in DATA.items() if k != "now"}
    assert failure_of("weekday(now) == 1", no_now) == "missing value 'now'"


def test_malformed_data_is_an_eval_error_too() -> None:
    broken_items = {**DATA, "event": {**DATA["event"], "items": ({"sku": "A"},)}}
    assert failure_of('items_amount(event.items, "sku", "A")', broken_items) == (
        "items_amount(): every line item needs a numeric 'amount'"
    )
    float_amount = {**DATA, "event": {**DATA["event"], "amount": 1.5}}
    assert failure_of("event.amount * tier.points_multiplier", float_amount) == (
        "'*' not supported between float and Decimal"
    )
    huge = {**DATA, "tier": {"points_multiplier": Decimal("1e999999")}}
    assert failure_of("floor(tier.points_multiplier)", huge) == "number too large"
    assert failure_of("tier.points_multiplier * 10", huge) == "number too large"


# --------------------------------------------------------------------------------------------------
# What fails at load: every error at once, with a stable code, a column and a helpful message


@pytest.mark.parametrize(
    ("source", "code", "column", "message"),
    [
        (
            "member.teir == 'gold'",
            "unknown_name",
            1,
            "unknown name 'member.teir' (did you mean 'member.tier'?)",
        ),
        (
            "event.amount > 1 and member.teir == 'gold'",
            "unknown_name",
            22,
            "unknown name 'member.teir' (did you mean 'member.tier'?)",
        ),
        (
            "'金卡' == membr.tier",
            "unknown_name",
            9,
            "unknown name 'membr.tier' (did you mean 'member.tier'?)",
        ),
        ("amount > 100", "unknown_name", 1, "unknown name 'amount' (did you mean 'event.amount'?)"),
        ("member.tier == tire", "unknown_name", 16, "unknown name 'tire'"),
        (
            "event > 1",
            "unknown_name",
            1,
            "'event' is a namespace, not a value: use one of its attributes, such as 'event.amount'",
        ),
        ("floor > 1", "unknown_name", 1, "'floor' is a function, not a value: call it, as in floor(x)"),
        ("flor(event.amount)", "unknown_function", 1, "unknown function 'flor' (did you mean 'floor'?)"),
        ("getattr(event.amount, 'x')", "unknown_function", 1, "unknown function 'getattr'"),
        ("now(1)", "unknown_function", 1, "'now' is a value, not a function"),
        ("event.amount >", "syntax_error", 15, "invalid syntax"),
        ("member.tier = 'gold'", "syntax_error", 13, "invalid syntax: '=' assigns, use '==' to compare"),
        ("(event.amount", "syntax_error", 1, "'(' was never closed"),
        ("", "syntax_error", 1, "empty expression"),
        ("   ", "syntax_error", 1, "empty expression"),
        ("lambda: 1", "forbidden_syntax", 1, "lambda is not allowed in an expression"),
        ("event.items[0]", "forbidden_syntax", 1, "subscripts such as x[0] are not allowed in an expression"),
        ("f'{event.amount}'", "forbidden_syntax", 1, "f-strings are not allowed in an expression"),
        ("(x := 1)", "forbidden_syntax", 2, "assignment (:=) is not allowed in an expression"),
        (
            "[c for c in member.tags]",
            "forbidden_syntax",
            1,
            "a list comprehension is not allowed in an expression",
        ),
        ("event.__class__", "forbidden_syntax", 1, "'__class__': names starting with '_' are not allowed"),
        (
            "event.items.count",
            "forbidden_syntax",
            1,
            "'.count' is not allowed: attributes can only be read from a namespace, as in event.amount",
        ),
        (
            "member.tier.upper()",
            "forbidden_syntax",
            1,
            "calling '.upper' is not allowed: only the built-in functions can be called, as in floor(x)",
        ),
        (
            "now.year",
            "forbidden_syntax",
            1,
            "'now.year' is not allowed: 'now' is not a namespace, and attributes can only be read from a"
            " namespace, as in event.amount",
        ),
        (
            "event.amount is None",
            "forbidden_syntax",
            1,
            "operator 'is' is not allowed in an expression: use == and !=",
        ),
        ("event.amount & 1", "forbidden_syntax", 1, "operator '&' is not allowed in an expression"),
        (
            "(6, 7)",
            "forbidden_syntax",
            1,
            "a list or tuple is only allowed on the right of 'in', as in weekday(now) in (6, 7)",
        ),
        (
            "round(event.amount, ndigits=2)",
            "forbidden_syntax",
            21,
            "keyword arguments are not allowed: write round(x[, ndigits])",
        ),
        (
            "now > 1700000000",
            "type_mismatch",
            1,
            'cannot compare instant with number: use date("YYYY-MM-DD")',
        ),
        (
            "event.occurred_at == 0",
            "type_mismatch",
            1,
            "cannot compare instant with number using '==': use date(\"YYYY-MM-DD\")",
        ),
        ("member.tier == 5", "type_mismatch", 1, "cannot compare str with number using '=='"),
        ("member.tier < 5", "type_mismatch", 1, "cannot compare str with number"),
        ("member.tier + 1", "type_mismatch", 1, "'+' not supported between str and number"),
        (
            "now + 86400",
            "type_mismatch",
            1,
            "'+' is not supported on instants: compare instants, or use days_between(a, b)",
        ),
        ("-member.tier", "type_mismatch", 1, "unary '-' needs a number, got str"),
        ("floor(member.tier)", "type_mismatch", 7, "floor() needs a number, got str"),
        ("weekday(event.amount)", "type_mismatch", 9, "weekday() needs an instant such as now, got number"),
        ("len(event.amount)", "type_mismatch", 5, "len() needs a str or a list, got number"),
        (
            "has_item(member.tags, 'sku', 'A')",
            "type_mismatch",
            10,
            "has_item() needs line items such as event.items, got str_list",
        ),
        (
            "event.items",
            "type_mismatch",
            1,
            "'event.items' is a list of line items:"
            " use items_amount(...), items_quantity(...), has_item(...) or len(...)",
        ),
        (
            "weekday(now) in ('6', '7')",
            "type_mismatch",
            18,
            "'in' looks for a number in a list that holds a str",
        ),
        (
            "event.amount in member.tags",
            "type_mismatch",
            1,
            "'in' on a str_list needs a str on the left, got number",
        ),
        (
            "'a' in event.amount",
            "type_mismatch",
            8,
            "the right of 'in' must be a list such as (6, 7), a str or a str_list, got number",
        ),
        ("min(event.amount)", "bad_arguments", 1, "min(a, b, ...) cannot take 1 argument"),
        ("round(1, 2, 3)", "bad_arguments", 1, "round(x[, ndigits]) cannot take 3 arguments"),
        ("round(2.5, 1.5)", "bad_arguments", 12, "round() needs a whole number of digits, -28 to 28"),
        (
            'date("2026-13-01")',
            "bad_arguments",
            6,
            "date() needs a literal date such as date(\"2026-12-24\"), got '2026-13-01'",
        ),
        (
            "date(event.type)",
            "bad_arguments",
            6,
            'date() needs a literal date such as date("2026-12-24"), got event.type',
        ),
        (
            'items_amount(event.items, "colour", "red")',
            "bad_arguments",
            27,
            'items_amount() looks items up by "sku" or "category", got \'colour\'',
        ),
        ("1 / 0", "bad_arguments", 1, "division by zero (this part of the expression always fails)"),
        (
            "event.amount + 9 ** 9 ** 9",
            "bad_arguments",
            16,
            "power too large: the exponent is more than 4000000",
        ),
        (
            "event.amount + 9 ** 9 ** 5",
            "bad_arguments",
            16,
            "power too large (this part of the expression always fails)",
        ),
        (
            "event.amount / 0",
            "bad_arguments",
            1,
            "division by zero (this part of the expression always fails)",
        ),
        ("event.amount ** 5000000", "bad_arguments", 1, "power too large: the exponent is more than 4000000"),
        ("x" * (MAX_SOURCE_LENGTH + 1), "too_long", 1, "expression too long: 1001 characters, at most 1000"),
        ("-" * 40 + "1", "too_deep", 33, "expression nested too deeply (at most 32 levels)"),
        ("(" * 33 + "1" + ")" * 33, "too_deep", 33, "expression nested too deeply (at most 32 levels)"),
    ],
)
def test_load_errors_have_a_code_a_column_and_a_message(
    source: str, code: str, column: int, message: str
) -> None:
    assert errors_of(source) == [ExprError(code, message, column)]


def test_conditions_must_be_boolean_and_amounts_numbers() -> None:
    assert errors_of("event.amount", expect=Type.BOOL) == [
        ExprError("not_boolean", "a condition must be true or false, but this gives a number", 1)
    ]
    assert errors_of("event.amount > 100", expect=Type.NUMBER) == [
        ExprError("not_number", "an amount must be a number, but this gives a bool", 1)
    ]
    assert errors_of("member.tier", expect=Type.NUMBER)[0].code == "not_number"


def test_every_error_is_reported_at_once() -> None:
    errors = errors_of("member.teir == 'gold' and evnt.amount > floor('x')")
    assert [(e.code, e.column) for e in errors] == [
        ("unknown_name", 1),
        ("unknown_name", 27),
        ("type_mismatch", 47),
    ]
    assert "did you mean 'event.amount'" in errors[1].message


def test_invalid_escape_sequences_do_not_depend_on_warning_filters() -> None:
    assert value_of(r"'\d' == '\\d'") is True


def test_lone_surrogates_are_a_syntax_error() -> None:
    assert errors_of("'\ud800'")[0].code == "syntax_error"


def test_a_non_text_source_is_an_error_value() -> None:
    assert errors_of(None)[0].code == "syntax_error"  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Hostile expressions never compile, and never raise


def _corpus() -> list[str]:
    lines = Path(__file__).with_name("hostile_expressions.txt").read_text(encoding="utf-8").splitlines()
    return [line.replace("<NUL>", "\0") for line in lines if line.strip() and not line.startswith("# ")]


@pytest.mark.parametrize("source", _corpus())
def test_known_sandbox_escapes_are_rejected_at_load(source: str) -> None:
    expr, errors = compile_expr(source, ENV, SHANGHAI)
    assert expr is None
    assert errors
    assert {error.code for error in errors} <= ERROR_CODES


def test_a_twenty_thousand_term_sum_is_too_long() -> None:
    assert errors_of("+".join(["1"] * 20_000)) == [
        ExprError("too_long", "expression too long: 39999 characters, at most 1000", 1)
    ]


def test_a_sum_that_fits_the_length_but_not_the_depth_is_too_deep() -> None:
    assert errors_of("+".join(["1"] * 500))[0].code == "too_deep"


@pytest.mark.parametrize("source", ["\0", "event.amount\0", "1 + \0 2", "'\0'"])
def test_null_bytes_are_a_syntax_error(source: str) -> None:
    assert errors_of(source) == [ExprError("syntax_error", "an expression cannot contain null bytes", 1)]


# --------------------------------------------------------------------------------------------------
# Properties

PROPERTIES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTIES
@given(st.text())
def test_compile_never_raises_on_arbitrary_text(source: str) -> None:
    _returns_a_result_or_errors(source)


@PROPERTIES
@given(st.text(alphabet="()[]{}.,:;+-*/%<>=!~&|^@ abenotrvwxyz_019'\"\\\n\t#", max_size=60))
def test_compile_never_raises_on_python_like_text(source: str) -> None:
    _returns_a_result_or_errors(source)


def _returns_a_result_or_errors(source: str) -> None:
    expr, errors = compile_expr(source, ENV, SHANGHAI, expect=Type.BOOL)
    assert (expr is None) == bool(errors)
    assert all(error.code in ERROR_CODES and error.column >= 1 for error in errors)


# A smaller world for generated expressions: a name of each type, data with awkward values.
NUMBER_NAMES = ("event.amount", "tier.points_multiplier", "counters.visits_30d")
STR_NAMES = ("member.tier", "event.store")
INSTANT_NAMES = ("now", "member.joined_at")
numbers = st.one_of(
    st.sampled_from([0, 1, -1, 2, 100, Decimal("0"), Decimal("-0.00"), Decimal("0.5"), Decimal("-2.5")]),
    st.integers(-(10**6), 10**6),
    st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False, allow_infinity=False),
)
texts = st.one_of(st.sampled_from(["gold", "silver", "", "S001", "金卡"]), st.text(max_size=4))
instants = st.integers(0, 4_000_000_000)
generated_data = st.builds(
    lambda amount, multiplier, visits, tier, store, now, joined, staff, tags: {
        "event": {"amount": amount, "store": store, "items": ITEMS},
        "tier": {"points_multiplier": multiplier},
        "counters": {"visits_30d": visits},
        "member": {"tier": tier, "joined_at": joined, "is_staff": staff, "tags": tags},
        "now": now,
    },
    numbers,
    numbers,
    numbers,
    texts,
    texts,
    instants,
    instants,
    st.booleans(),
    st.lists(texts, max_size=3).map(tuple),
)


def _form(template: str, *parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map(lambda values: template.format(*values))


@functools.cache
def expressions(kind: str, depth: int) -> st.SearchStrategy[str]:
    """Well-typed expression text of a kind (number, bool, str, instant, any)."""
    number_literals = st.sampled_from(["0", "1", "-1", "2", "3", "100", "0.0", "0.1", "2.5", "-0.5", "1e3"])
    leaves = {
        "number": st.one_of(st.sampled_from(NUMBER_NAMES), number_literals),
        "bool": st.sampled_from(["member.is_staff", "True", "False"]),
        "str": st.one_of(st.sampled_from(STR_NAMES), st.sampled_from(['"gold"', '""', '"金卡"'])),
        "instant": st.one_of(st.sampled_from(INSTANT_NAMES), st.just('date("2026-11-23")')),
    }
    if depth == 0:
        if kind == "any":
            return _form("({} if {} else {})", leaves["number"], leaves["bool"], leaves["str"])
        return leaves[kind]

    def sub(k: str) -> st.SearchStrategy[str]:
        return expressions(k, depth - 1)

    n, b, s, i, a = sub("number"), sub("bool"), sub("str"), sub("instant"), sub("any")
    if kind == "number":
        return st.one_of(
            leaves["number"],
            _form("({} {} {})", n, st.sampled_from(["+", "-", "*", "/", "//", "%"]), n),
            _form(
                "({} ** {})",
                n,
                st.sampled_from(["0", "1", "2", "3", "-1", "-2", "0.5", "counters.visits_30d"]),
            ),
            _form("{}({})", st.sampled_from(["floor", "ceil", "round", "abs", "-", "+"]), n),
            _form("round({}, {})", n, st.sampled_from(["0", "1", "2", "-1", "-2"])),
            _form("{}({}, {})", st.sampled_from(["min", "max"]), n, n),
            _form("len({})", st.one_of(s, st.sampled_from(["member.tags", "event.items"]))),
            _form("{}({})", st.sampled_from(["weekday", "hour", "day", "month", "year"]), i),
            _form("days_between({}, {})", i, i),
            _form('items_amount(event.items, "{}", {})', st.sampled_from(["sku", "category"]), s),
            _form("({} if {} else {})", n, b, n),
            _form("({} + {})", a, n),  # fails at run time when the ANY is a str
            _form("({} {} {})", a, st.sampled_from(["*", "-", "/", "%"]), n),
        )
    if kind == "bool":
        return st.one_of(
            leaves["bool"],
            _form("({} {} {})", n, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), n),
            _form("({} {} {})", s, st.sampled_from(["<", "==", "!=", "in", "not in"]), s),
            _form("({} {} {})", i, st.sampled_from(["<", ">=", "=="]), i),
            _form("({} < {} <= {})", n, n, n),
            _form("({} in (0, 1, 2.5, {}))", n, n),
            _form('({} in ("gold", "", {}))', s, s),
            _form("({} in member.tags)", s),
            _form("({} {} {})", b, st.sampled_from(["and", "or"]), b),
            _form("(not {})", b),
            _form('has_item(event.items, "sku", {})', s),
            _form("({} == {})", a, st.one_of(n, s)),
            _form("({} < {})", a, n),  # fails at run time when the ANY is a str
        )
    if kind == "str":
        return st.one_of(
            leaves["str"],
            _form("({} + {})", s, s),
            _form("({} * {})", s, n),  # a huge or Decimal count fails, in both engines alike
            _form("({} if {} else {})", s, b, s),
        )
    if kind == "instant":
        return st.one_of(leaves["instant"], _form("({} if {} else {})", i, b, i))
    return st.one_of(
        _form("({} if {} else {})", n, b, s),
        _form("({} {} {})", n, st.sampled_from(["and", "or"]), s),
        _form("({} if {} else None)", a, b),
    )


@PROPERTIES
@given(
    st.sampled_from(["number", "bool", "str", "instant", "any"]).flatmap(lambda k: expressions(k, 3)),
    generated_data,
)
def test_compiled_and_reference_engines_agree_on_well_typed_expressions(
    source: str, data: dict[str, Any]
) -> None:
    expr, errors = compile_expr(source, ENV, SHANGHAI)
    if expr is None:
        # Only what generated text cannot avoid: a constant part that always fails (1 / 0),
        # or nesting beyond the limits.
        assert {e.code for e in errors} <= {"bad_arguments", "too_long", "too_deep"}, errors
        return
    assert _outcome(expr, data) == _outcome(lambda d: evaluate_reference(expr, d, SHANGHAI), data)


def _outcome(evaluate: Any, data: dict[str, Any]) -> tuple[Any, ...]:
    """A value with its type (int and Decimal are not interchangeable), or the failure message."""
    try:
        value = evaluate(data)
    except EvalError as error:
        return ("EvalError", str(error))
    return ("value", type(value), value)


HOSTILE_BASES = (
    "event",
    "member.tier",
    "event.amount",
    "now",
    "()",
    "''",
    "(1)",
    "floor",
    "min",
    "event.items",
)
HOSTILE_SUFFIXES = (
    ".__class__",
    ".__globals__",
    ".__subclasses__()",
    ".__mro__",
    ".mro()",
    ".__base__",
    ".__bases__[0]",
    ".__dict__",
    ".__builtins__",
    ".__init__",
    ".__getattribute__('x')",
    ".gi_frame",
    ".f_back",
    ".f_globals",
    ".format(1)",
    ".format_map({})",
    "[0]",
    "()",
    ".__call__()",
)


@PROPERTIES
@given(
    st.sampled_from(
        ["", "event.amount > 0 and ", "1 if member.is_staff else ", "floor(", "len(", "member.tier in "]
    ),
    st.sampled_from(HOSTILE_BASES),
    st.lists(st.sampled_from(HOSTILE_SUFFIXES), min_size=1, max_size=4),
)
def test_attribute_chains_to_interpreter_internals_never_compile(
    prefix: str, base: str, suffixes: list[str]
) -> None:
    source = prefix + base + "".join(suffixes) + (")" if prefix.endswith("(") else "")
    expr, errors = compile_expr(source, ENV, SHANGHAI)
    assert expr is None
    assert errors
    assert {error.code for error in errors} <= ERROR_CODES
