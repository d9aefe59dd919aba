"""Expressions and traces never carry phone, email, name or birthday: a scheme that would read
them is a load error that says so, where."""

from __future__ import annotations

import pytest

from perkflow.rules import loads

from .test_load import MINIMAL


@pytest.mark.parametrize("expression", ["member.phone == '13800000000'", "member.email != ''", "member.name == 'x'", "member.birthday == now"])
def test_an_expression_that_reads_a_members_personal_data_is_a_load_error(expression: str):
    [error] = loads(MINIMAL.replace("event.amount > 0", expression), "tiny.yaml").errors
    assert (error.code, error.path, error.line, error.column) == ("personal_data", "rules[0].when", 8, 11)
    assert "is personal data, which expressions never read" in error.message


def test_an_event_attribute_or_a_balance_named_like_personal_data_is_refused():
    with_attribute = MINIMAL + "event_types:\n  visit:\n    attributes:\n      phone: {type: str}\n"
    [error] = loads(with_attribute, "tiny.yaml").errors
    assert (error.code, error.path, error.line) == ("personal_data", "event_types.visit.attributes.phone", 14)
    reads = MINIMAL.replace("event.amount > 0", "event.email == ''")
    [error] = loads(reads, "tiny.yaml").errors
    assert error.code == "personal_data"
    balance = MINIMAL.replace("  points: {}\n", "  points: {}\n  email: {}\n")
    [error] = loads(balance, "tiny.yaml").errors
    assert (error.code, error.path) == ("personal_data", "balances.email")


def test_birthdays_are_read_through_month_and_day():
    assert loads(MINIMAL.replace("event.amount > 0", "member.birthday_month == 5 and member.birthday_day == 17"), "tiny.yaml").errors == []
