"""A pytest plugin: every log record of the whole test run is kept, and at the end none may hold
a phone number or email address that any test gave a member (issue 9: personal data never
reaches the logs).

The values are collected where all personal data goes in: `DataKeys.encrypt`, wrapped for the
session. Records are caught by a handler on the root logger, whatever formatter the application
installs; `sqlalchemy` stays at WARNING so that statements are not logged. The tests' HTTP client
(httpx or httpx2 on http://testserver/) is not the application: its request lines are left out. Processes started by
tests (servers, benchmarks) log elsewhere and are not covered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import pytest

from perkflow.service import crypto

_PERSONAL = ("phone", "email")


class Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name in ("httpx", "httpx2") and "http://testserver/" in record.getMessage():
            return  # the tests' own HTTP client, logging the URLs the tests chose to send
        try:
            text = record.getMessage()
        except Exception:  # a record whose arguments do not format: keep what it has
            text = f"{record.msg!r} {record.args!r}"
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.texts.append(text)


def forms(value: str, context: str) -> Iterator[str]:
    """The ways a stored value could be written: as stored, and a phone without its country code."""
    yield value
    if context == "phone" and value.startswith("+86"):
        yield value[3:]


def leaks(texts: Iterable[str], values: Iterable[str]) -> dict[str, str]:
    """Every value found in the texts, with the first text holding it."""
    wanted = set(values)
    found: dict[str, str] = {}
    for text in texts:
        for value in wanted - found.keys():
            if value in text:
                found[value] = text[:300]
    return found


_collector = Collector()
_values: set[str] = set()
_original_encrypt = crypto.DataKeys.encrypt


def _encrypt(self: crypto.DataKeys, text: str, context: str, kid: str | None = None) -> bytes:
    if context in _PERSONAL:
        _values.update(forms(text, context))
    return _original_encrypt(self, text, context, kid)


def pytest_sessionstart(session: pytest.Session) -> None:
    root = logging.getLogger()
    root.addHandler(_collector)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    sql = logging.getLogger("sqlalchemy")
    if sql.level == logging.NOTSET:
        sql.setLevel(logging.WARNING)
    crypto.DataKeys.encrypt = _encrypt  # type: ignore[method-assign]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    crypto.DataKeys.encrypt = _original_encrypt  # type: ignore[method-assign]
    logging.getLogger().removeHandler(_collector)
    found = leaks(_collector.texts, _values)
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"personal data in the logs: {value!r} in: {text}" for value, text in sorted(found.items())]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_line(
        f"log guard: {len(_collector.texts)} log records checked against {len(_values)} personal values"
    )
