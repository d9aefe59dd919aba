"""requirements.lock pins, with hashes, every runtime and test dependency that pyproject.toml
names, so `make install` (pip --require-hashes) installs what was tested. `make lock` regenerates it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _pins() -> dict[str, list[str]]:
    """Each pinned name with its hashes, from the lock file's `name==version \\` blocks."""
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    pins: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        if match := re.match(r"([A-Za-z0-9._-]+)==\S+", block):
            pins[canonicalize_name(match.group(1))] = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
    return pins


def test_every_dependency_of_pyproject_is_pinned_with_hashes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["test"]]]
    pins = _pins()
    missing = [str(r) for r in wanted if canonicalize_name(r.name) not in pins]
    assert not missing, f"not in requirements.lock: {missing}: run `make lock`"
    assert all(pins.values()), [name for name, hashes in pins.items() if not hashes]
    assert "perkflow" not in pins  # the project itself is installed editable, without dependencies


def test_make_install_installs_from_the_lock_with_hashes_required():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "pip install --quiet --require-hashes -r $(LOCK)" in makefile
    assert "pip install --quiet --no-deps -e ." in makefile
