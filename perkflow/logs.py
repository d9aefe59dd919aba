"""Logs as one JSON object a line, each carrying the request id and event id it was written under.

`perkflow serve` configures this for its own loggers and uvicorn's (`PERKFLOW_LOG_FORMAT=text` for
people at a terminal). The ids travel in context variables: the API's RequestId middleware sets the
request id, EventService.post the event id, and Starlette's thread pool copies both into the
thread that does the work. Access lines lose their query string: a lookup by phone or email
(`/api/v1/members?phone=...`) must not write personal data to the log.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id: ContextVar[str] = ContextVar("perkflow_request_id", default="")
event_id: ContextVar[str] = ContextVar("perkflow_event_id", default="")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if rid := request_id.get():
            out["request_id"] = rid
        if eid := event_id.get():
            out["event_id"] = eid
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{k}={v}" for k, v in (("request", request_id.get()), ("event", event_id.get())) if v)
        return super().format(record) + (f" [{ids}]" if ids else "")


class NoQuery(logging.Filter):
    """Cut the query string from uvicorn's access lines (args: client, method, path, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], args[2].partition("?")[0], args[3], args[4])
        return True


def config(log_format: str) -> dict[str, Any]:
    """A logging.config dictionary for uvicorn's `log_config`: Perkflow's and uvicorn's loggers
    through one handler on stderr, at INFO."""
    formatter = (
        {"()": JsonFormatter}
        if log_format == "json"
        else {"()": TextFormatter, "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"perkflow": formatter},
        "filters": {"no_query": {"()": NoQuery}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "perkflow", "stream": "ext://sys.stderr"},
            "access": {
                "class": "logging.StreamHandler", "formatter": "perkflow", "stream": "ext://sys.stderr", "filters": ["no_query"],
            },
        },
        "loggers": {
            "perkflow": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }
