"""Plain-text views of a replay report for `perkflow simulate`: tables a person reads.

The report itself (a dict) comes from `engine.Replay.report()`; this module only lays it out, and
lines two reports up metric by metric for `--compare`. Tables are Markdown-style pipes, with no
colour unless stdout is a terminal, so the output is stable enough to paste into a ticket.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from perkflow.engine import Program

REJECTIONS_SHOWN = 5
COUPON_STATES = ("issued", "redeemed", "expired", "active", "void")
BALANCE_FLOWS = ("issued", "redeemed", "expired", "clawed_back", "outstanding")


@dataclass
class Out:
    console: Console

    @classmethod
    def stdout(cls) -> Out:
        console = Console(highlight=False, markup=False, emoji=False)
        if not console.is_terminal:
            console = Console(highlight=False, markup=False, emoji=False, width=200, no_color=True)
        return cls(console)

    def line(self, text: str = "") -> None:
        self.console.print(text, soft_wrap=True)

    def table(self, title: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        rows = [list(row) for row in rows]
        table = Table(box=box.MARKDOWN, show_edge=True, pad_edge=True)
        for i, name in enumerate(header):
            numbers = all(_is_number(row[i]) for row in rows)  # numbers right, text left
            table.add_column(name, justify="right" if numbers else "left", no_wrap=True)
        for row in rows:
            table.add_row(*("-" if cell is None else str(cell) for cell in row))
        self.line()
        self.line(f"{title}:")
        if self.console.is_terminal:
            self.console.print(table)
            return
        with self.console.capture() as captured:
            self.console.print(table)
        for text in captured.get().splitlines():
            if text.strip():  # the Markdown box pads the table with a blank line above and below
                self.line(text.rstrip())


def _is_number(cell: Any) -> bool:
    return cell is None or isinstance(cell, int) or (isinstance(cell, str) and cell.lstrip("+-").isdigit())


def tier_order(program: Program) -> list[str]:
    """Tier ids from the lowest to the highest, as the scheme lists them."""
    return [level.id for level in program.levels]


def _label(flow: str) -> str:
    return flow.replace("_", " ")


def report(out: Out, data: dict[str, Any], *, tiers: Sequence[str] = (), show_members: bool = False) -> None:
    events = data["events"]
    totals = data["totals"]
    out.line(f"scheme {data['scheme']} ({data['version']})")
    out.line(f"as of {data['as_of'] or '-'}")
    out.line(
        f"events: {events['applied']} applied, {events['rejected']} rejected, "
        f"{events['system']} system (expiry, tier reviews)"
    )

    balances = totals["balances"]
    # The usual flows in their usual order, then any other the engine reports (in its order).
    present = dict.fromkeys(f for values in balances.values() for f in values)
    flows = [f for f in BALANCE_FLOWS if f in present] + [f for f in present if f not in BALANCE_FLOWS]
    out.table(
        "balances",
        ["balance", *(_label(f) for f in flows)],
        ([name, *(values.get(f, 0) for f in flows)] for name, values in balances.items()),
    )
    if totals["tiers"]:
        order = [t for t in tiers if t in totals["tiers"]] + [t for t in totals["tiers"] if t not in tiers]
        out.table("tiers", ["tier", "members"], ([tier or "(none)", totals["tiers"][tier]] for tier in order))
    if totals["coupons"]:
        out.table(
            "coupons",
            ["policy", *COUPON_STATES],
            (
                [policy, *(counts.get(s, 0) for s in COUPON_STATES)]
                for policy, counts in totals["coupons"].items()
            ),
        )
    if totals["rewards"]:
        out.table("rewards", ["reward", "granted"], totals["rewards"].items())
    if data["rules"]:
        out.table(
            "rules",
            ["rule", "fired", "skipped"],
            (_rule_row(rule, counts) for rule, counts in data["rules"].items()),
        )
    else:
        out.line()
        out.line("rules: no trace recorded (run without --no-trace to count firings)")

    rejections = data["rejections"]
    out.line()
    out.line(f"rejections: {len(rejections)}")
    for rejection in rejections[:REJECTIONS_SHOWN]:
        out.line(f"  {rejection['event_id'] or '(no id)'}: {rejection['message']} [{rejection['code']}]")
    if len(rejections) > REJECTIONS_SHOWN:
        out.line(f"  ... and {len(rejections) - REJECTIONS_SHOWN} more (--json lists them all)")

    if show_members:
        out.table("members", ["member", "tier", "balances", "coupons", "tags"], _member_rows(data["members"]))


def _rule_row(rule: str, counts: dict[str, int]) -> list[Any]:
    skipped = ", ".join(f"{key.removeprefix('skipped:')} {n}" for key, n in counts.items() if key != "fired")
    return [rule, counts.get("fired", 0), skipped or 0]


def _member_rows(members: dict[str, Any]) -> Iterable[list[Any]]:
    for member_id, member in members.items():
        balances = ", ".join(f"{name} {amount}" for name, amount in member["balances"].items())
        active = sum(1 for c in member["coupons"] if c["status"] == "active")
        coupons = f"{active} active of {len(member['coupons'])}" if member["coupons"] else ""
        yield [member_id, member["tier"], balances, coupons, ", ".join(member["tags"])]


# --- comparing two reports ---------------------------------------------------------------------


def metrics(data: dict[str, Any]) -> dict[str, int]:
    """A report as flat, named numbers: balances.points.issued, tiers.gold, rules.<id>.fired, ..."""
    totals = data["totals"]
    out: dict[str, int] = {f"events.{k}": v for k, v in data["events"].items()}
    for name, flows in totals["balances"].items():
        out.update({f"balances.{name}.{flow}": value for flow, value in flows.items()})
    out.update({f"tiers.{tier}": n for tier, n in totals["tiers"].items()})
    for policy, counts in totals["coupons"].items():
        out.update({f"coupons.{policy}.{state}": n for state, n in counts.items()})
    out.update({f"rewards.{reward}": n for reward, n in totals["rewards"].items()})
    for rule, counts in data["rules"].items():
        out.update({f"rules.{rule}.{outcome}": n for outcome, n in counts.items()})
    return out


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Every metric whose value differs between two reports, A's order first. A count that one
    side lacks is 0 there (no member in a tier, a rule that never fired); a balance that only
    one scheme has is null on the other side, and so is its difference."""
    left, right = metrics(a), metrics(b)
    names = list(left) + [name for name in right if name not in left]
    rows = []
    for name in names:
        x, y = left.get(name), right.get(name)
        if name.startswith(("tiers.", "coupons.", "rewards.", "rules.")):
            x, y = x or 0, y or 0
        if x != y:
            rows.append(
                {
                    "metric": name,
                    "a": x,
                    "b": y,
                    "difference": y - x if x is not None and y is not None else None,
                }
            )
    return rows


def comparison(
    out: Out, a: dict[str, Any], b: dict[str, Any], rows: list[dict[str, Any]], *, names: tuple[str, str]
) -> None:
    out.line(f"A: {names[0]} {a['scheme']} ({a['version']})")
    out.line(f"B: {names[1]} {b['scheme']} ({b['version']})")
    out.line(f"events: A {a['events']['applied']} applied, B {b['events']['applied']} applied")
    if not rows:
        out.line()
        out.line("no differences in balances, tiers, coupons, rewards or rule firings")
        return
    out.table(
        "differences",
        ["metric", "A", "B", "difference"],
        ([r["metric"], r["a"], r["b"], _signed(r["difference"])] for r in rows),
    )


def _signed(value: int | None) -> str | None:
    return None if value is None else f"{value:+d}"
