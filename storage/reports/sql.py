"""A stored instant as whole seconds since 1970 on both databases, for day arithmetic in SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class epoch(FunctionElement[int]):  # noqa: N801 (reads as a SQL function)
    type = BigInteger()
    inherit_cache = True
    name = "epoch"


@compiles(epoch, "sqlite")
def _sqlite(element: epoch, compiler: Any, **kw: Any) -> str:
    # SQLite keeps UTC instants as text; strftime('%s') reads them as UTC
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch, "postgresql")
def _postgresql(element: epoch, compiler: Any, **kw: Any) -> str:
    return f"CAST(floor(extract(epoch FROM {compiler.process(element.clauses, **kw)})) AS BIGINT)"
