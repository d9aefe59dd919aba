"""Loading a scheme: every error at once, each with file, line, column and field path."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from perkflow.rules import content_hash, load, loads, to_yaml

MINIMAL = """\
id: tiny
name: Tiny
balances:
  points: {}
rules:
  - id: earn
    on: purchase
    when: event.amount > 0
    then:
      - award: {balance: points, amount: "event.amount / 100"}
"""


def test_a_minimal_scheme_loads():
    loaded = loads(MINIMAL, "tiny.yaml")
    assert loaded.errors == []
    assert loaded.scheme is not None
    assert loaded.scheme.rules[0].on == "purchase"


def test_bare_on_key_is_text_not_a_yaml_boolean():
    # YAML 1.1 reads `on:` as True; the loader must not.
    loaded = loads(MINIMAL, "tiny.yaml")
    assert loaded.scheme is not None and loaded.scheme.rules[0].on == "purchase"


def test_yes_and_no_are_not_booleans_and_dates_stay_text():
    loaded = loads(MINIMAL + "    name: yes\n", "tiny.yaml")
    assert loaded.scheme is not None
    assert loaded.scheme.rules[0].name == "yes"


def test_decimals_load_from_their_text_not_through_a_float():
    text = MINIMAL.replace("points: {}", "points: {value: 0.1}")
    loaded = loads(text, "tiny.yaml")
    assert loaded.scheme is not None
    assert loaded.scheme.balances["points"].value == Decimal("0.1")


def test_a_duplicate_key_is_an_error_with_both_places():
    text = MINIMAL.replace("name: Tiny\n", "name: Tiny\nname: Again\n")
    loaded = loads(text, "tiny.yaml")
    assert [(e.code, e.line, e.column, e.path) for e in loaded.errors] == [("duplicate_key", 3, 1, "name")]
    assert "line 2" in loaded.errors[0].message


def test_an_unknown_field_is_located_and_suggests_the_right_one():
    text = MINIMAL.replace("points: {}", "points: {expirey: {kind: never}}")
    loaded = loads(text, "tiny.yaml")
    [error] = loaded.errors
    assert (error.code, error.path, error.line, error.column) == ("unknown_field", "balances.points.expirey", 4, 12)
    assert "did you mean 'expiry'" in error.message
    assert error.render() == (
        "tiny.yaml:4:12: balances.points.expirey: unknown field 'expirey' (did you mean 'expiry'?) [unknown_field]"
    )


def test_every_error_of_a_file_is_reported_at_once():
    text = """\
id: Bad Id
name: Bad
balances:
  points: {unit: coins}
rules:
  - id: earn
    on: purchase
    then:
      - awrd: {balance: points, amount: "1"}
"""
    loaded = loads(text, "bad.yaml")
    assert loaded.scheme is None
    got = {(e.code, e.path, e.line) for e in loaded.errors}
    assert got == {
        ("invalid_format", "id", 1),
        ("invalid_choice", "balances.points.unit", 4),
        ("unknown_action", "rules[0].then[0]", 9),
    }


def test_an_expression_error_points_into_the_expression():
    text = MINIMAL.replace("event.amount > 0", "member.teir == 'gold'")
    loaded = loads(text, "tiny.yaml")
    [error] = loaded.errors
    assert (error.code, error.path, error.line) == ("unknown_name", "rules[0].when", 8)
    assert error.column == 11  # where `member.teir` starts on the line
    assert "did you mean 'member.tier'" in error.message


def test_an_attribute_the_event_type_does_not_declare_is_a_load_error():
    text = MINIMAL.replace("event.amount > 0", "event.coupon_code == 'X'")
    [error] = loads(text, "tiny.yaml").errors
    assert error.code == "unknown_name" and error.path == "rules[0].when"


def test_references_to_missing_parts_are_errors_with_suggestions():
    text = MINIMAL + "      - issue_coupon: {coupon: welcom}\ncoupons:\n  welcome:\n    name: W\n    benefit: {kind: amount_off, amount: 100}\n    min_spend: 1000\n    validity: {days: 7}\n"
    [error] = loads(text, "tiny.yaml").errors
    assert (error.code, error.path) == ("unknown_coupon", "rules[0].then[1].issue_coupon.coupon")
    assert "did you mean 'welcome'" in error.message


def test_an_attribute_named_like_an_envelope_field_is_refused():
    text = MINIMAL + "event_types:\n  visit:\n    attributes:\n      store: {type: str}\n"
    [error] = loads(text, "tiny.yaml").errors
    assert (error.code, error.path, error.line) == ("name_taken", "event_types.visit.attributes.store", 14)


def test_syntax_errors_are_located():
    loaded = loads("id: x\nname: [unclosed\n", "broken.yaml")
    [error] = loaded.errors
    assert error.code == "syntax_error" and error.line >= 2


def test_a_folder_merges_its_files_and_keeps_each_files_lines(tmp_path: Path):
    (tmp_path / "scheme.yaml").write_text("id: split\nname: Split\nbalances:\n  points: {}\n")
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  - id: earn\n    on: purchas\n    then:\n      - award: {balance: points, amount: '1'}\n"
    )
    [error] = load(tmp_path).errors
    assert error.file.endswith("rules.yaml") and (error.line, error.path) == (3, "rules[0].on")


def test_json_loads_like_yaml():
    data = {"id": "j", "name": "J", "balances": {"points": {"value": 0.5}}}
    loaded = loads(json.dumps(data), "scheme.json")
    assert loaded.scheme is not None and loaded.scheme.balances["points"].value == Decimal("0.5")


def test_the_hash_ignores_comments_key_order_and_written_defaults():
    a = loads(MINIMAL, "a.yaml").scheme
    b = loads("# a comment\nname: Tiny\nid: tiny\n" + MINIMAL.split("name: Tiny\n", 1)[1].replace("points: {}", "points: {rounding: floor}"), "b.yaml").scheme
    assert a is not None and b is not None
    assert content_hash(a) == content_hash(b)
    assert content_hash(a).startswith("sha256-v1:")


def test_a_scheme_round_trips_through_its_yaml():
    scheme = load("examples/coffee/scheme.yaml").scheme
    assert scheme is not None
    again = loads(to_yaml(scheme), "again.yaml")
    assert again.errors == []
    assert again.scheme == scheme


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_loading_any_text_never_raises(text: str):
    loaded = loads(text, "fuzz.yaml")
    assert loaded.scheme is None or loaded.errors == []


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["id", "name", "balances", "rules", "tiers", "coupons", "campaigns", "timezone", "bogus"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
            max_leaves=8,
        ),
    )
)
def test_loading_any_structure_never_raises(data: dict):
    loaded = loads(json.dumps(data), "fuzz.json")
    assert loaded.scheme is None or loaded.errors == []
