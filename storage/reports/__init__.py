"""Reports over the ledger the service writes (issue 10): aggregations run in the database with
SQLAlchemy Core, the same on SQLite and PostgreSQL, time bucketed in the scheme's timezone.

`run(name, conn, scheme, as_of, filters)` returns a typed `Report`; `REPORTS` names them all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection

from perkflow.rules.models import Scheme

from . import rollup
from .campaigns import campaigns
from .context import Context, Filters
from .coupons import coupons
from .flows import flows
from .liability import liability
from .result import Column, Report, Table
from .retention import retention
from .rewards import rewards
from .rfm import rfm
from .tiers import tiers

REPORTS: dict[str, Callable[[Context], Report]] = {
    "liability": liability,
    "flows": flows,
    "tiers": tiers,
    "coupons": coupons,
    "rewards": rewards,
    "campaigns": campaigns,
    "retention": retention,
    "rfm": rfm,
}


def run(name: str, conn: Connection, scheme: Scheme, as_of: datetime, filters: Filters) -> Report:
    return REPORTS[name](Context(conn, scheme, as_of, filters))


__all__ = ["REPORTS", "Column", "Filters", "Report", "Table", "rollup", "run"]
