# One entry point for every chore; the README's two commands and .ci/run call these targets.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: install run test check bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

run: install  ## the API and the editor on a SQLite file, with the example scheme published
	$(VENV)/bin/perkflow serve --demo

test: install  ## the whole suite; PostgreSQL too when PERKFLOW_TEST_POSTGRES_URL is set
	$(PY) -m pytest

bench: install  ## figures printed, never asserted
	$(PY) benchmarks/engine.py
