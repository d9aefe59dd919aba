"""Rewrites each example's expected.json from a replay of its events.jsonl.

Use it deliberately, when the engine's semantics or an example's scheme change on purpose, and
review the diff of expected.json like any other change: tests/engine/test_examples.py compares the
replay with expected.json, and separately recomputes the key figures from the published terms
without the engine, so a wrong expected.json does not go unnoticed.

    .venv/bin/python examples/update_expected.py               # every example
    .venv/bin/python examples/update_expected.py coffee shop   # some of them
    .venv/bin/python examples/update_expected.py --regenerate  # run each generate.py first
    .venv/bin/python examples/update_expected.py --check       # exit 1 if any expected.json is stale

`--regenerate` is needed when a change moves coupon ids (`<event id>#c<n>`): the generators replay
the engine to know which coupons members hold, so the event streams depend on the engine too.
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path
from typing import Any

from perkflow.engine import compile, replay
from perkflow.rules import load

EXAMPLES = Path(__file__).resolve().parent


def folders(names: list[str] | None = None) -> list[Path]:
    """The example folders: those with a scheme.yaml and an events.jsonl (or a generate.py)."""
    found = sorted(p.parent for p in EXAMPLES.glob("*/scheme.yaml"))
    if names:
        unknown = sorted(set(names) - {f.name for f in found})
        if unknown:
            raise SystemExit(
                f"no example named {', '.join(unknown)} (there are: {', '.join(f.name for f in found)})"
            )
        found = [f for f in found if f.name in names]
    return found


def read_events(folder: Path) -> list[dict[str, Any]]:
    with (folder / "events.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def report_of(folder: Path) -> dict[str, Any]:
    """The final state of an example: its scheme replayed over its events, as plain JSON data."""
    loaded = load(folder / "scheme.yaml")
    if loaded.scheme is None or loaded.errors:
        raise SystemExit("\n".join(e.render() for e in loaded.errors))
    run = replay(compile(loaded.scheme), read_events(folder))
    report: dict[str, Any] = json.loads(json.dumps(run.report(), ensure_ascii=False))
    return report


def render(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="example folders to update (default: all)")
    parser.add_argument("--regenerate", action="store_true", help="run each generate.py before replaying")
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if any expected.json is stale"
    )
    args = parser.parse_args(argv)
    stale = []
    for folder in folders(args.names):
        if args.regenerate and not args.check:
            generator = runpy.run_path(str(folder / "generate.py"))
            generator["write"](folder / "events.jsonl")
        text = render(report_of(folder))
        target = folder / "expected.json"
        old = target.read_text(encoding="utf-8") if target.exists() else None
        if old == text:
            print(f"{folder.name}: up to date")
        elif args.check:
            stale.append(folder.name)
            print(f"{folder.name}: expected.json is stale")
        else:
            target.write_text(text, encoding="utf-8")
            print(f"{folder.name}: expected.json rewritten")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
