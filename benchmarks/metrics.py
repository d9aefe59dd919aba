"""What metrics add to each event, in CPU µs: the parts timed alone, metrics on and off interleaved.

    .venv/bin/python benchmarks/metrics.py           # 15 rounds
    .venv/bin/python benchmarks/metrics.py --quick   # 3 rounds, for the smoke test

On a busy two-core machine an end-to-end comparison (benchmarks/http.py --metrics) cannot see a
difference this small under the noise, so each piece an event meets when PERKFLOW_METRICS_TOKEN
is set is timed on its own, against the same work without it, in alternating rounds (median of
the rounds, CPU time of this process):
- counting the event: `Metrics.event_result` on a real decision of the coffee scheme (its trace
  has every rule of a purchase);
- timing the request: the ASGI stack with `RequestTimer` around an endpoint that answers at once,
  against the same stack without it;
- timing transactions: an empty `engine.begin()` on SQLite with the begin/commit listeners,
  against an engine without them.
Figures are printed, never asserted.
"""

from __future__ import annotations

import os
import sys

# benchmarks/http.py sits beside this file: run as a script, this folder comes first on sys.path and
# that file would shadow the standard library's `http` package, which Starlette imports.
if sys.path and os.path.realpath(sys.path[0] or os.getcwd()) == os.path.dirname(os.path.realpath(__file__)):
    del sys.path[0]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from perkflow.api.metrics import Metrics, RequestTimer  # noqa: E402
from perkflow.service.core import open_service  # noqa: E402
from perkflow.service.events import Applied  # noqa: E402
from perkflow.storage.db import open_engine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCHEME = ROOT / "examples" / "coffee" / "scheme.yaml"


def cpu_per_call(call: Callable[[], object], n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - started) / n * 1e6


def decision(folder: Path) -> tuple[Metrics, dict[str, object], Applied]:
    service = open_service(f"sqlite:///{folder / 'perkflow.sqlite'}", folder / "data")
    version = service.versions.submit(SCHEME.read_text(), author="bench-author")
    service.versions.approve(version.id, approver="bench-approver")  # type: ignore[union-attr]
    service.events.post({"id": "s1", "type": "signup", "member_id": "m1", "occurred_at": "2026-01-05T10:00:00+08:00", "store": "sh-jingan"})
    raw = {
        "id": "p1", "type": "purchase", "member_id": "m1", "occurred_at": "2026-01-06T10:00:00+08:00", "store": "sh-jingan",
        "channel": "pos", "attributes": {"amount": 3800, "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": 3800}]},
    }
    applied = service.events.post(raw)
    assert isinstance(applied, Applied) and applied.status == 201, applied
    return Metrics(service.engine), raw, applied


def asgi_round(app: object, n: int) -> float:
    scope = {"type": "http", "method": "POST", "path": "/api/v1/events", "raw_path": b"/api/v1/events", "query_string": b"",
             "headers": [], "root_path": "", "scheme": "http", "server": ("x", 80), "client": ("127.0.0.1", 1)}

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        return None

    async def run() -> float:
        started = time.process_time()
        for _ in range(n):
            await app(dict(scope), receive, send)  # type: ignore[operator]
        return (time.process_time() - started) / n * 1e6

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 rounds of fewer calls: a smoke test")
    args = parser.parse_args(argv)
    rounds, n = (3, 500) if args.quick else (args.rounds, 5000)
    with tempfile.TemporaryDirectory(prefix="perkflow-metrics-bench-") as tmp:
        folder = Path(tmp)
        metrics, raw, applied = decision(folder)

        async def endpoint(request: Request) -> JSONResponse:
            return JSONResponse({}, status_code=201)

        routes = [Route("/api/v1/events", endpoint, methods=["POST"])]
        bare = Starlette(routes=routes)
        timed = Starlette(routes=routes)
        timed.add_middleware(RequestTimer, metrics=metrics)
        plain = open_engine(f"sqlite:///{folder / 'plain.sqlite'}")
        hooked = open_engine(f"sqlite:///{folder / 'hooked.sqlite'}")
        Metrics(hooked)  # attaches the transaction listeners to this engine only

        def transaction(engine: object) -> Callable[[], None]:
            def once() -> None:
                with engine.begin():  # type: ignore[attr-defined]
                    pass

            return once

        sides: dict[str, tuple[Callable[[], float], Callable[[], float]]] = {
            f"count the event (trace of {len(applied.body['trace'])} rules)": (
                lambda: cpu_per_call(lambda: metrics.event_result(raw, applied), n),
                lambda: cpu_per_call(lambda: None, n),
            ),
            "time the request (RequestTimer)": (lambda: asgi_round(timed, n), lambda: asgi_round(bare, n)),
            "time the transaction (begin/commit hooks)": (
                lambda: cpu_per_call(transaction(hooked), n // 5),
                lambda: cpu_per_call(transaction(plain), n // 5),
            ),
        }
        figures: dict[str, tuple[float, float]] = {}
        for label, (on, off) in sides.items():
            ons, offs = [], []
            for r in range(rounds):
                first, second = (on, off) if r % 2 == 0 else (off, on)
                a, b = first(), second()
                ons.append(a if first is on else b)
                offs.append(b if first is on else a)
            figures[label] = (statistics.median(ons), statistics.median(offs))
        plain.dispose()
        hooked.dispose()
    print("Perkflow metrics cost per event (benchmarks/metrics.py)")
    print(f"Python {sys.version.split()[0]}; {rounds} rounds, sides alternating; CPU µs per call, median of the rounds")
    print(f"  {'part':<44} {'on':>8} {'off':>8} {'added':>8}")
    for label, (on_us, off_us) in figures.items():
        print(f"  {label:<44} {on_us:>8.1f} {off_us:>8.1f} {on_us - off_us:>8.1f}")
    # An event meets the counting and the request timer once, and two transactions (its own and
    # the API key's look-up): the figure below adds them up that way.
    added = [on - off for on, off in figures.values()]
    per_event = added[0] + added[1] + 2 * added[2]
    print(f"  added to one posted event: {per_event:.1f} µs of CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
