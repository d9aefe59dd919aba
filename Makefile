# One entry point for every chore; the README's two commands and .ci/run call these targets.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# Every runtime and test dependency, pinned with hashes: what CI tests is what ships (docs/operations.md).
LOCK := requirements.lock
TOOLS := .venv-tools

.PHONY: install lock run test check bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

lock:  ## regenerate requirements.lock from pyproject.toml (run after changing a dependency)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet uv
	$(TOOLS)/bin/uv pip compile pyproject.toml --extra test --generate-hashes --quiet \
		--python-version 3.11 --python-platform x86_64-unknown-linux-gnu --output-file $(LOCK)

run: install  ## the API and the editor on a SQLite file, with the example scheme published
	$(VENV)/bin/perkflow serve --demo

test: install  ## the whole suite; PostgreSQL too when PERKFLOW_TEST_POSTGRES_URL is set
	$(PY) -m pytest

bench: install  ## figures printed, never asserted
	$(PY) benchmarks/engine.py
