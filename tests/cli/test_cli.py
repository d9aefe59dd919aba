"""The `perkflow` command as its users meet it: each test is a command line, its exit status and
what it prints.

Broken scheme files live in tests/cli/broken/, each with a golden `.expected` file holding the exact
stderr of `perkflow validate`, so any change of wording is deliberate. After changing a message on
purpose, regenerate them and review the diff:

    PERKFLOW_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/cli
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer.main
from typer.testing import CliRunner, Result

from perkflow.cli import docs, main
from perkflow.cli.main import app
from perkflow.rules.load import parse_document
from perkflow.rules.schema import json_schema

REPO = Path(__file__).resolve().parents[2]
BROKEN = Path(__file__).parent / "broken"
COFFEE = REPO / "examples" / "coffee" / "scheme.yaml"

runner = CliRunner()


def perkflow(*args: object) -> Result:
    return runner.invoke(app, [str(a) for a in args], prog_name="perkflow")


def assert_golden(path: Path, text: str) -> None:
    if os.environ.get("PERKFLOW_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run with PERKFLOW_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(tmp_path: Path, events: list[dict[str, Any]], name: str = "events.jsonl") -> Path:
    return write(tmp_path, name, "".join(json.dumps(e) + "\n" for e in events))


TEA = """\
perkflow: 1
id: tiny-tea
name: Tiny Tea
balances:
  points: {}
tiers:
  metric: {balance: points}
  levels:
    - {id: member, name: Member, threshold: 0, benefits: {multiplier: 1}}
    - {id: gold, name: Gold, threshold: 100, benefits: {multiplier: 2}}
rules:
  - id: earn
    on: purchase
    then:
      - award: {balance: points, amount: "event.amount / 100 * tier.multiplier"}
  - id: welcome
    on: signup
    then:
      - issue_coupon: {coupon: hello}
coupons:
  hello:
    name: Hello
    benefit: {kind: amount_off, amount: 300}
    min_spend: 1000
    validity: {days: 30}
"""


def event(n: int, kind: str, member: str, day: int, **attributes: Any) -> dict[str, Any]:
    return {
        "id": f"e{n}",
        "type": kind,
        "member_id": member,
        "occurred_at": f"2026-03-{day:02d}T10:00:00+08:00",
        **({"attributes": attributes} if attributes else {}),
    }


EVENTS = [
    event(1, "signup", "m1", 1),
    event(2, "purchase", "m1", 2, amount=20000),  # 200 points at member: reaches gold
    event(3, "purchase", "m1", 3, amount=5000),  # 50 x 2 = 100 points at gold
    event(4, "signup", "m2", 3),
    event(5, "purchase", "m9", 4, amount=1000),  # nobody signed up as m9: refused
]


# --- validate ----------------------------------------------------------------------------------


def test_validate_accepts_the_coffee_example() -> None:
    result = perkflow("validate", COFFEE)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: bean-club (sha256-v1:")
    assert result.stderr == ""


def test_validate_json_gives_programs_the_hash_and_no_errors() -> None:
    result = perkflow("validate", COFFEE, "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["hash"].startswith("sha256-v1:")
    assert report["errors"] == [] and report["warnings"] == []


def errors_of(result: Result) -> list[tuple[str, str, int, int]]:
    """(code, path, line, column) of each error of `perkflow validate --json`."""
    return [(e["code"], e["path"], e["line"], e["column"]) for e in json.loads(result.stdout)["errors"]]


@pytest.fixture
def in_broken(monkeypatch: pytest.MonkeyPatch) -> None:
    # Run from the fixtures' folder so that messages name `typo_field.yaml`, wherever the repo is.
    monkeypatch.chdir(BROKEN)


@pytest.mark.usefixtures("in_broken")
def test_an_unknown_field_is_located_and_the_right_name_suggested() -> None:
    result = perkflow("validate", "typo_field.yaml")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert (
        "typo_field.yaml:7:5: balances.points.expirey: unknown field 'expirey' (did you mean 'expiry'?)"
        in result.stderr
    )
    assert errors_of(perkflow("validate", "typo_field.yaml", "--json")) == [
        ("unknown_field", "balances.points.expirey", 7, 5)
    ]


@pytest.mark.usefixtures("in_broken")
def test_a_misspelt_name_in_an_expression_is_pointed_at_inside_the_expression() -> None:
    result = perkflow("validate", "bad_expression.yaml")
    assert result.exit_code == 1
    # Column 32 is where `member.teir` starts inside `when: event.amount > 0 and member.teir == "gold"`.
    assert (
        "bad_expression.yaml:16:32: rules[0].when: unknown name 'member.teir' (did you mean 'member.tier'?)"
        in result.stderr
    )
    assert errors_of(perkflow("validate", "bad_expression.yaml", "--json")) == [
        ("unknown_name", "rules[0].when", 16, 32)
    ]


@pytest.mark.usefixtures("in_broken")
def test_a_bare_on_key_is_the_text_on_and_a_duplicate_key_is_an_error(tmp_path: Path) -> None:
    result = perkflow("validate", "yaml_traps.yaml")
    assert result.exit_code == 1
    # YAML 1.1 would read `on:` as the boolean true and keep the last of the two silently.
    assert "yaml_traps.yaml:15:5: rules[1].on: 'on' is given twice; the first is at line 14" in result.stderr
    assert errors_of(perkflow("validate", "yaml_traps.yaml", "--json")) == [
        ("duplicate_key", "rules[1].on", 15, 5)
    ]
    # Without the duplicate, the same file is valid: every `on:` was read as the key "on".
    lines = (BROKEN / "yaml_traps.yaml").read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines[13] == "    on: checkin\n"
    fixed = write(tmp_path, "fixed.yaml", "".join(lines[:13] + lines[14:]))
    assert perkflow("validate", fixed).exit_code == 0


@pytest.mark.usefixtures("in_broken")
def test_every_error_of_a_file_is_reported_at_once_in_file_order() -> None:
    result = perkflow("validate", "many_errors.yaml")
    assert result.exit_code == 1
    assert result.stderr.endswith("6 errors in many_errors.yaml\n")
    assert errors_of(perkflow("validate", "many_errors.yaml", "--json")) == [
        ("invalid_format", "id", 3, 5),
        ("invalid_format", "currency", 5, 11),
        ("invalid_format", "balances.points.expiry.after", 8, 36),
        ("invalid_choice", "balances.points.rounding", 9, 15),
        ("missing_field", "rules[0].then", 11, 5),
        ("unknown_action", "rules[1].then[0]", 17, 9),
    ]


@pytest.mark.usefixtures("in_broken")
def test_an_unknown_coupon_policy_is_named_with_the_closest_declared_one() -> None:
    result = perkflow("validate", "bad_reference.yaml")
    assert result.exit_code == 1
    assert "no coupon policy 'welcom-gift' (did you mean 'welcome-gift'?) [unknown_coupon]" in result.stderr
    assert errors_of(perkflow("validate", "bad_reference.yaml", "--json")) == [
        ("unknown_coupon", "rules[0].then[0].issue_coupon.coupon", 12, 32),
        ("unknown_balance", "rules[1].then[0].award.balance", 16, 26),
    ]


@pytest.mark.usefixtures("in_broken")
@pytest.mark.parametrize("name", sorted(p.name for p in BROKEN.glob("*.yaml")))
def test_broken_files_print_exactly_their_golden_messages(name: str) -> None:
    result = perkflow("validate", name)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert_golden(BROKEN / name.replace(".yaml", ".expected"), result.stderr)


def test_a_missing_file_is_an_input_error() -> None:
    result = perkflow("validate", "no/such/scheme.yaml")
    assert result.exit_code == 1
    assert result.stderr == (
        "no/such/scheme.yaml: no such file: no/such/scheme.yaml [file_not_found]\n"
        "1 error in no/such/scheme.yaml\n"
    )


def test_usage_errors_exit_2() -> None:
    assert perkflow("validate").exit_code == 2
    assert perkflow("validate", COFFEE, "--no-such-option").exit_code == 2
    assert perkflow("no-such-command").exit_code == 2


def test_validate_prints_warnings_but_exits_0(tmp_path: Path) -> None:
    scheme = write(tmp_path, "double.yaml", TEA.replace("* tier.multiplier", "* 2"))
    result = perkflow("validate", scheme)
    assert result.exit_code == 0
    assert result.stdout.startswith("ok: tiny-tea")
    assert f"{scheme}:15:42: rules[0].then[0].award.amount: warning: rule 'earn' multiplies" in result.stderr
    assert "[unbounded_award]" in result.stderr


# --- lint --------------------------------------------------------------------------------------


def test_lint_lists_warnings_and_exits_0_unless_strict(tmp_path: Path) -> None:
    scheme = write(tmp_path, "double.yaml", TEA.replace("* tier.multiplier", "* 2"))
    result = perkflow("lint", scheme)
    assert result.exit_code == 0
    assert "warning: rule 'earn' multiplies an award by 2 with no cap and no campaign budget" in result.stdout
    assert result.stdout.endswith("tiny-tea: 1 warning\n")

    strict = perkflow("lint", scheme, "--strict", "--json")
    assert strict.exit_code == 1
    report = json.loads(strict.stdout)
    assert report["ok"] is False
    assert [(w["code"], w["path"], w["severity"]) for w in report["warnings"]] == [
        ("unbounded_award", "rules[0].then[0].award.amount", "warning")
    ]


def test_lint_of_a_clean_scheme_says_so() -> None:
    result = perkflow("lint", COFFEE, "--strict")
    assert result.exit_code == 0
    assert result.stdout == "bean-club: no warnings\n"


@pytest.mark.usefixtures("in_broken")
def test_lint_of_a_broken_scheme_reports_its_errors_and_exits_1() -> None:
    result = perkflow("lint", "typo_field.yaml")
    assert result.exit_code == 1
    assert "[unknown_field]" in result.stderr
    assert result.stdout == ""


# --- schema ------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """Loaded YAML data as jsonschema sees JSON: Decimals become floats."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return float(value) if isinstance(value, Decimal) else value


def test_schema_is_valid_json_schema_and_accepts_every_example() -> None:
    result = perkflow("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema == json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    examples = sorted((REPO / "examples").glob("*/scheme.yaml"))
    assert examples
    for path in examples:
        data, _, errors = parse_document(path.read_text(encoding="utf-8"), str(path))
        assert errors == []
        problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(plain(data))]
        assert problems == [], path


def test_schema_output_writes_a_file(tmp_path: Path) -> None:
    target = tmp_path / "scheme.schema.json"
    result = perkflow("schema", "--output", target)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert (
        json.loads(target.read_text(encoding="utf-8"))["$schema"]
        == "https://json-schema.org/draft/2020-12/schema"
    )


# --- diff --------------------------------------------------------------------------------------

TEA_V2 = TEA.replace("benefits: {multiplier: 2}", "benefits: {multiplier: 3}").replace(
    """  - id: welcome
    on: signup
    then:
      - issue_coupon: {coupon: hello}
coupons:
  hello:
    name: Hello
    benefit: {kind: amount_off, amount: 300}
    min_spend: 1000
    validity: {days: 30}
""",
    """  - id: visit
    on: checkin
    then:
      - award: {balance: points, amount: "5"}
""",
)


def test_diff_shows_added_removed_and_changed_with_old_and_new_values(tmp_path: Path) -> None:
    old, new = write(tmp_path, "old.yaml", TEA), write(tmp_path, "new.yaml", TEA_V2)
    result = perkflow("diff", old, new)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"--- {old} (sha256-v1:")
    assert lines[1].startswith(f"+++ {new} (sha256-v1:")
    assert lines[2:] == [
        "coupons:",
        "  - hello (removed)",
        "rules:",
        "  - welcome (removed)",
        "  + visit (added)",
        "tiers.levels:",
        "  ~ gold",
        "      benefits.multiplier: 2 -> 3",
    ]


def test_diff_json_lists_the_changes(tmp_path: Path) -> None:
    result = perkflow("diff", write(tmp_path, "old.yaml", TEA), write(tmp_path, "new.yaml", TEA_V2), "--json")
    assert result.exit_code == 0
    changes = json.loads(result.stdout)
    assert {
        "kind": "changed",
        "section": "tiers.levels",
        "id": "gold",
        "fields": [{"path": "benefits.multiplier", "old": 2, "new": 3}],
    } in changes
    assert [(c["kind"], c["section"], c["id"]) for c in changes if c["kind"] != "changed"] == [
        ("removed", "coupons", "hello"),
        ("removed", "rules", "welcome"),
        ("added", "rules", "visit"),
    ]


def test_diff_of_a_scheme_with_itself_prints_no_differences() -> None:
    result = perkflow("diff", COFFEE, COFFEE)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[2:] == ["no differences"]
    assert json.loads(perkflow("diff", COFFEE, COFFEE, "--json").stdout) == []


def test_diff_reports_load_errors_and_exits_1() -> None:
    result = perkflow("diff", COFFEE, BROKEN / "typo_field.yaml")
    assert result.exit_code == 1
    assert "[unknown_field]" in result.stderr
    assert result.stdout == ""


# --- simulate ----------------------------------------------------------------------------------


def test_simulate_json_reports_the_totals(tmp_path: Path) -> None:
    result = perkflow("simulate", write(tmp_path, "tea.yaml", TEA), jsonl(tmp_path, EVENTS), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["scheme"] == "tiny-tea"
    assert report["events"] == {"applied": 4, "rejected": 1, "system": 0}
    assert report["totals"]["balances"]["points"] == {
        "issued": 300,
        "redeemed": 0,
        "expired": 0,
        "clawed_back": 0,
        "outstanding": 300,
    }
    assert report["totals"]["tiers"] == {"gold": 1, "member": 1}
    assert report["totals"]["coupons"] == {"hello": {"issued": 2, "active": 2}}
    assert report["rules"] == {"earn": {"fired": 2}, "welcome": {"fired": 2}}
    assert report["rejections"] == [{"event_id": "e5", "code": "unknown_member", "message": "no member 'm9'"}]
    assert report["members"]["m1"]["balances"] == {"points": 300}


@pytest.mark.parametrize("name", ["salon"])
def test_simulate_replays_an_example_to_its_expected_state_achievements_included(name: str) -> None:
    folder = REPO / "examples" / name
    result = perkflow("simulate", folder / "scheme.yaml", folder / "events.jsonl", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads((folder / "expected.json").read_text(encoding="utf-8"))


def test_simulate_prints_plain_tables_for_people(tmp_path: Path) -> None:
    result = perkflow("simulate", write(tmp_path, "tea.yaml", TEA), jsonl(tmp_path, EVENTS))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "events: 4 applied, 1 rejected, 0 system (expiry, tier reviews)" in out
    assert "| balance | issued | redeemed | expired | clawed back | outstanding |" in out
    assert "| points  |    300 |        0 |       0 |           0 |         300 |" in out
    # Tiers are listed from the lowest to the highest, as the scheme orders them.
    assert out.index("| member |") < out.index("| gold   |")
    assert "| earn    |     2 |       0 |" in out
    assert "rejections: 1\n  e5: no member 'm9' [unknown_member]\n" in out
    assert "\x1b[" not in out  # no colour when stdout is not a terminal
    assert "members:" not in out
    assert (
        "| m1     | gold   | points 300 | 1 active of 1 |"
        in perkflow("simulate", tmp_path / "tea.yaml", tmp_path / "events.jsonl", "--members").stdout
    )


def test_simulate_until_applies_expiry_due_by_then(tmp_path: Path) -> None:
    expiring = TEA.replace("  points: {}", "  points: {expiry: {kind: rolling, after: 30d}}")
    result = perkflow(
        "simulate",
        write(tmp_path, "tea.yaml", expiring),
        jsonl(tmp_path, EVENTS),
        "--json",
        "--until",
        "2026-06-01T00:00:00+08:00",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["as_of"] == "2026-06-01T00:00:00+08:00"
    assert report["totals"]["balances"]["points"]["expired"] == 300
    assert report["totals"]["balances"]["points"]["outstanding"] == 0


def test_simulate_until_must_be_a_time_with_an_offset(tmp_path: Path) -> None:
    result = perkflow(
        "simulate", write(tmp_path, "tea.yaml", TEA), jsonl(tmp_path, EVENTS), "--until", "2026-06-01"
    )
    assert result.exit_code == 2
    assert "Invalid value for '--until'" in result.stderr


def test_simulate_compare_shows_what_a_changed_multiplier_does(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", TEA)
    b = write(tmp_path, "b.yaml", TEA.replace("benefits: {multiplier: 2}", "benefits: {multiplier: 3}"))
    events = jsonl(tmp_path, EVENTS)
    result = perkflow("simulate", a, events, "--compare", b, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["a"]["totals"]["balances"]["points"]["issued"] == 300
    assert report["b"]["totals"]["balances"]["points"]["issued"] == 350
    assert report["differences"] == [
        {"metric": "balances.points.issued", "a": 300, "b": 350, "difference": 50},
        {"metric": "balances.points.outstanding", "a": 300, "b": 350, "difference": 50},
    ]

    table = perkflow("simulate", a, events, "--compare", b).stdout
    assert "| metric                      |   A |   B | difference |" in table
    assert "| balances.points.issued      | 300 | 350 |        +50 |" in table


def test_simulate_compare_of_a_scheme_with_itself_finds_no_difference(tmp_path: Path) -> None:
    scheme = write(tmp_path, "tea.yaml", TEA)
    result = perkflow("simulate", scheme, jsonl(tmp_path, EVENTS), "--compare", scheme)
    assert result.exit_code == 0
    assert "no differences in balances, tiers, coupons, rewards or rule firings" in result.stdout


def test_a_malformed_event_line_is_an_error_naming_the_file_and_line(tmp_path: Path) -> None:
    events = jsonl(tmp_path, EVENTS[:2])
    with events.open("a", encoding="utf-8") as handle:
        handle.write('{"id": "e3", "type": "purchase",\n')
    result = perkflow("simulate", write(tmp_path, "tea.yaml", TEA), events, "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: {events}:3:")
    assert "not valid JSON" in result.stderr


def test_a_line_that_is_not_an_object_is_an_error_naming_the_line(tmp_path: Path) -> None:
    events = write(tmp_path, "events.jsonl", json.dumps(EVENTS[0]) + "\n\n[1, 2]\n")
    result = perkflow("simulate", write(tmp_path, "tea.yaml", TEA), events)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {events}:3: an event is a JSON object, got a list\n"


def test_a_missing_events_file_is_an_input_error(tmp_path: Path) -> None:
    result = perkflow("simulate", write(tmp_path, "tea.yaml", TEA), tmp_path / "none.jsonl")
    assert result.exit_code == 1
    assert result.stderr == f"Error: no such file: {tmp_path / 'none.jsonl'}\n"


def test_simulate_with_a_broken_scheme_reports_its_errors(tmp_path: Path) -> None:
    result = perkflow("simulate", BROKEN / "typo_field.yaml", jsonl(tmp_path, EVENTS))
    assert result.exit_code == 1
    assert "[unknown_field]" in result.stderr


def test_progress_goes_to_stderr_and_never_into_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(main, "PLAIN_PROGRESS_EVERY", 1000)
    many = [event(1, "signup", "m1", 1)] + [event(n, "checkin", "m1", 1) for n in range(2, 2001)]
    result = perkflow(
        "simulate", write(tmp_path, "tea.yaml", TEA), jsonl(tmp_path, many), "--json", "--no-trace"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["events"]["applied"] == 2000
    assert result.stderr.splitlines() == [
        "replaying tea.yaml: 1000 events (49%)",
        "replaying tea.yaml: 2000 events (100%)",
    ]


# --- the command itself and its documentation --------------------------------------------------


def test_python_m_perkflow_runs_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "perkflow", "validate", str(COFFEE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: bean-club")


def _commands(group: Any, prefix: str = "perkflow") -> dict[str, Any]:
    """Every command by its command line, those of groups (`perkflow db upgrade`) included."""
    out: dict[str, Any] = {}
    for name, command in group.commands.items():
        out[f"{prefix} {name}"] = command
        if hasattr(command, "commands"):
            out |= _commands(command, f"{prefix} {name}")
    return out


def test_every_command_is_documented() -> None:
    commands = _commands(typer.main.get_command(app))
    assert set(commands) >= {
        f"perkflow {name}"
        for name in (
            "validate",
            "lint",
            "schema",
            "diff",
            "simulate",
            "publish",
            "approve",
            "versions",
            "rollback",
            "import",
            "export",
            "backup",
            "restore",
            "db",
            "db upgrade",
            "db status",
            "keys",
            "keys create",
            "keys revoke",
            "users",
            "users create",
        )
    }
    reference = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    for name, command in commands.items():
        assert command.help and command.help.strip(), f"`{name}` has no help text"
        assert f"## {name}\n" in reference, f"`{name}` is missing from docs/cli.md"
        for param in command.params:
            if param.name != "help":
                assert getattr(param, "help", None), f"`{name}`: {param.name} has no help text"
    assert reference == docs.render(), "docs/cli.md is stale: run `python -m perkflow.cli.docs > docs/cli.md`"
