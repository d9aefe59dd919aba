"""Reports for the API and the CLI: the request checked, the caller's stores enforced, the report run
on the scheme version in force. The figures themselves come from perkflow.storage.reports."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, datetime

from sqlalchemy import Engine

from perkflow.rules.models import Scheme
from perkflow.storage.reports import REPORTS, Filters, Report, run

from .problems import FieldError, Problem, invalid, not_found
from .versions import Versions

QUERY = ("from", "to", "store", "channel", "tier", "campaign", "bucket", "limit")


class ReportService:
    def __init__(self, engine: Engine, versions: Versions, clock: Callable[[], datetime]) -> None:
        self.engine, self.versions, self.clock = engine, versions, clock

    def run(self, name: str, query: Mapping[str, list[str]], *, allowed: frozenset[str] | None = None) -> Report | Problem:
        """Run report `name` with the filters of `query` (each name to its values, as a query string
        gives them). A caller bound to stores (`allowed`) sees only those stores: a request naming
        another store is refused, and a request naming none gets the caller's stores."""
        if name not in REPORTS:
            return not_found("report", name)
        program = self.versions.active()
        if program is None:
            return Problem(409, "no_published_version", "No published version", "publish a scheme version first")
        filters = parse_filters(query, program.scheme)
        if isinstance(filters, Problem):
            return filters
        if allowed is not None:
            if filters.stores is None:
                filters = replace(filters, stores=allowed)
            elif not filters.stores <= allowed:
                others = ", ".join(sorted(filters.stores - allowed))
                return Problem(403, "store_not_allowed", "Not allowed", f"this caller may not see the figures of store {others}")
        with self.engine.connect() as conn:
            conn.execution_options(read_only=True)
            return run(name, conn, program.scheme, self.clock(), filters)


def parse_filters(query: Mapping[str, list[str]], scheme: Scheme) -> Filters | Problem:
    """The filters of a query, every wrong one named at once."""
    errors: list[FieldError] = []

    def one(key: str) -> str | None:
        values = query.get(key) or []
        return values[-1] if values else None

    def day(key: str) -> date | None:
        text = one(key)
        if text is None:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            errors.append(FieldError(f"/{key}", "wrong_type", f"'{text}' is not a date: write YYYY-MM-DD"))
            return None

    for key in query:
        if key not in QUERY:
            errors.append(FieldError(f"/{key}", "unknown_field", f"reports take {', '.join(QUERY)}"))
    start, end = day("from"), day("to")
    if start and end and end < start:
        errors.append(FieldError("/to", "out_of_range", "'to' is before 'from'"))
    bucket = one("bucket") or "month"
    if bucket not in ("day", "week", "month"):
        errors.append(FieldError("/bucket", "unknown_value", "bucket is day, week or month"))
    tier, campaign = one("tier"), one("campaign")
    levels = [level.id for level in scheme.tiers.levels] if scheme.tiers else []
    if tier is not None and tier not in levels:
        errors.append(FieldError("/tier", "unknown_tier", f"no tier '{tier}'; the scheme has {', '.join(levels) or 'none'}"))
    campaigns = [c.id for c in scheme.campaigns]
    if campaign is not None and campaign not in campaigns:
        errors.append(FieldError("/campaign", "unknown_campaign", f"no campaign '{campaign}'; the scheme has {', '.join(campaigns) or 'none'}"))
    limit_text = one("limit") or "100"
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 10000:
        errors.append(FieldError("/limit", "out_of_range", "limit is a whole number from 1 to 10000"))
    if errors:
        return invalid(errors[0].message if len(errors) == 1 else f"{len(errors)} filters are not valid", errors, code=errors[0].code)
    stores = frozenset(s for value in query.get("store", []) for s in value.split(",") if s) or None
    return Filters(
        start=start, end=end, stores=stores, channel=one("channel"), tier=tier, campaign=campaign,
        bucket=bucket,  # type: ignore[arg-type]
        limit=int(limit_text),
    )
