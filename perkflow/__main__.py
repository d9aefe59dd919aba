"""`python -m perkflow` runs the `perkflow` command."""

from perkflow.cli.main import run

run()
