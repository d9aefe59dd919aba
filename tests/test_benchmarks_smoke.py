"""The engine benchmark runs. Its figures are printed, never asserted: this only checks that the
script still works against the current engine (benchmarks/engine.py --quick)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "engine.py"


def test_the_engine_benchmark_runs_and_prints_its_table():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for heading in (
        "Perkflow engine benchmark",
        "1. Coffee workload",
        "2. Examples",
        "3. Scale",
        "4. Loading the",
        "5. Evaluation groups",
    ):
        assert heading in done.stdout, f"{heading!r} missing from:\n{done.stdout[-3000:]}"


HTTP_SCRIPT = SCRIPT.parent / "http.py"


def test_the_http_benchmark_runs_and_prints_its_table():
    """benchmarks/http.py --quick on SQLite: the servers start, the load runs, the table prints.
    Figures are never asserted."""
    done = subprocess.run(
        [sys.executable, str(HTTP_SCRIPT), "--quick", "--sqlite-only"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for heading in ("Perkflow HTTP benchmark", "SQLite, 1 worker", "SQLite, 2 workers", "events/s"):
        assert heading in done.stdout, f"{heading!r} missing from:\n{done.stdout[-3000:]}"


PRIVACY_SCRIPT = SCRIPT.parent / "privacy.py"


def test_the_personal_data_benchmark_runs_and_prints_its_table():
    """benchmarks/privacy.py --quick: SQLite only, a few operations; figures are never asserted."""
    done = subprocess.run([sys.executable, str(PRIVACY_SCRIPT), "--quick"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for heading in ("Perkflow personal-data benchmark", "POST event (purchase)", "PUT member (phone, email)", "encryption on"):
        assert heading in done.stdout, f"{heading!r} missing from:\n{done.stdout[-3000:]}"


METRICS_SCRIPT = SCRIPT.parent / "metrics.py"


def test_the_metrics_benchmark_runs_and_prints_its_table():
    """benchmarks/metrics.py --quick: each part is timed with metrics on and off. Figures are
    never asserted."""
    done = subprocess.run(
        [sys.executable, str(METRICS_SCRIPT), "--quick"], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for line in ("Perkflow metrics cost per event", "count the event", "time the request", "added to one posted event"):
        assert line in done.stdout, f"{line!r} missing from:\n{done.stdout[-3000:]}"


CODES_SCRIPT = SCRIPT.parent / "codes.py"


def test_the_coupon_code_benchmark_runs_and_prints_its_figures():
    """benchmarks/codes.py --quick: codes drawn and stored on SQLite, collisions counted."""
    done = subprocess.run(
        [sys.executable, str(CODES_SCRIPT), "--quick"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for heading in ("Perkflow coupon-code benchmark", "codes/s", "collisions: 0"):
        assert heading in done.stdout, f"{heading!r} missing from:\n{done.stdout[-3000:]}"


REPORTS_SCRIPT = SCRIPT.parent / "reports.py"


def test_the_reports_benchmark_fills_a_database_and_times_every_report():
    """benchmarks/reports.py --quick: a few hundred members filled from the engine's decisions into
    SQLite, then every report timed once. Figures are never asserted."""
    done = subprocess.run([sys.executable, str(REPORTS_SCRIPT), "--quick"], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Perkflow reports benchmark: sqlite, 300 members" in done.stdout
    for name in ("liability", "flows", "tiers", "coupons", "rewards", "campaigns", "retention", "rfm"):
        assert f"\n{name} " in done.stdout, f"{name!r} missing from:\n{done.stdout[-3000:]}"
