"""Segments as audiences (issue 10): the scheduler stores each member's RFM segment once per local
day, exactly as the rfm report computes it; a campaign whose audience names segments reads it, and
the decision's trace says which segment the member was in and for which day it was computed."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, get_args
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from perkflow.rules import loads
from perkflow.rules.models import Segment
from perkflow.service.core import Service
from perkflow.service.events import Applied
from perkflow.storage import tables as t
from perkflow.storage.reports import Filters, run
from perkflow.storage.reports.context import local_start
from perkflow.storage.reports.result import Report
from perkflow.storage.reports.rfm import NAMES

from ..databases import Clock, publish

SCHEME = """
perkflow: 1
id: win-back
name: Win back
timezone: Asia/Shanghai
balances:
  points: {}
campaigns:
  - id: come-back
    name: Come back
    start: 2026-11-01T00:00:00
    end: 2027-01-01T00:00:00
    audience:
      segments: [at_risk]
    rules:
      - id: come-back-bonus
        on: purchase
        then: [{award: {balance: points, amount: "100"}}]
"""
PURCHASES = {  # member -> local purchase times
    "m1": ["2026-09-01T10:00:00+08:00", "2026-09-11T10:00:00+08:00", "2026-09-21T10:00:00+08:00"],  # every 10 days, then silent
    "m2": ["2026-11-10T10:00:00+08:00", "2026-11-15T10:00:00+08:00", "2026-11-19T10:00:00+08:00"],  # lately, often
    "m3": [],
}


def _post(service: Service, event_id: str, kind: str, member: str, at: str, **attributes: Any) -> dict[str, Any]:
    raw = {"id": event_id, "type": kind, "member_id": member, "occurred_at": at, "store": "S1", "channel": "pos", "attributes": attributes}
    result = service.events.post(raw)
    assert isinstance(result, Applied), result
    return result.body


def _bonus(body: dict[str, Any]) -> dict[str, Any]:
    return next(line for line in body["trace"] if line["rule"] == "come-back-bonus")


def _stored(service: Service) -> dict[str, tuple[str, date]]:
    with service.engine.connect() as conn:
        rows = conn.execute(
            select(t.members.c.external_id, t.member_segments.c.segment, t.member_segments.c.computed_on)
            .select_from(t.member_segments.join(t.members, t.members.c.id == t.member_segments.c.member_id))
        )
        return {ext: (segment, day) for ext, segment, day in rows}


def _report_segments(service: Service, day: date) -> dict[str, str]:
    loaded = loads(SCHEME, "scheme.yaml")
    assert loaded.scheme is not None
    as_of = local_start(day, ZoneInfo("Asia/Shanghai"))  # the day's first instant: its segments see the days before
    with service.engine.connect() as conn:
        report = run("rfm", conn, loaded.scheme, as_of, Filters(end=day - timedelta(days=1), limit=1000))
    members = next(table for table in report.tables if table.name == "members")
    return {str(row["member"]): str(row["segment"]) for row in members.rows}


def test_segments_are_stored_daily_as_the_report_computes_them_and_campaign_audiences_read_them(service: Service, clock: Clock):
    clock.set("2026-11-20T12:00:00+00:00")
    publish(service, SCHEME)
    for member, times in PURCHASES.items():
        _post(service, f"{member}-su", "signup", member, "2026-08-01T10:00:00+08:00")
        for n, at in enumerate(times):
            body = _post(service, f"{member}-p{n}", "purchase", member, at, amount=1000)
            if at >= "2026-11":  # inside the campaign, before any segment was computed
                assert _bonus(body)["reason"] == "segment_unknown"

    clock.set("2026-11-21T01:00:00+00:00")  # 09:00 on 21 November in Shanghai
    first = service.scheduler.tick()
    assert (first.segments_on, first.segmented) == (date(2026, 11, 21), 2)
    stored = _stored(service)
    assert stored == {member: (segment, date(2026, 11, 21)) for member, segment in _report_segments(service, date(2026, 11, 21)).items()}
    assert stored["m1"][0] == "at_risk" and stored["m2"][0] != "at_risk" and "m3" not in stored

    again = service.scheduler.tick()  # the same local day: nothing recomputed
    assert (again.segments_on, again.segmented) == (None, 0) and _stored(service) == stored

    fired = _bonus(_post(service, "m1-p9", "purchase", "m1", "2026-11-21T09:00:00+08:00", amount=1000))
    assert fired["outcome"] == "fired"
    assert fired["read"] == {"member.segment": "at_risk", "member.segment_on": "2026-11-21"}
    other = _bonus(_post(service, "m2-p9", "purchase", "m2", "2026-11-21T09:00:00+08:00", amount=1000))
    assert other["reason"] == "not_in_audience" and f"is '{stored['m2'][0]}'" in other["detail"]
    none = _bonus(_post(service, "m3-p9", "purchase", "m3", "2026-11-21T09:00:00+08:00", amount=1000))
    assert none["reason"] == "not_in_audience" and "none (no purchase in the period)" in none["detail"]

    clock.set("2026-11-22T01:00:00+00:00")
    second = service.scheduler.tick()
    assert (second.segments_on, second.segmented) == (date(2026, 11, 22), 3)
    stored = _stored(service)
    assert stored == {member: (segment, date(2026, 11, 22)) for member, segment in _report_segments(service, date(2026, 11, 22)).items()}
    assert stored["m1"][0] != "at_risk"  # bought again yesterday
    with service.engine.connect() as conn:
        runs = conn.execute(select(t.segment_runs.c.computed_on, t.segment_runs.c.members).order_by(t.segment_runs.c.computed_on)).all()
        assert [tuple(r) for r in runs] == [(date(2026, 11, 21), 2), (date(2026, 11, 22), 3)]
        assert conn.execute(select(func.count()).select_from(t.member_segments)).scalar() == 3


def test_an_audience_names_exactly_the_segments_the_rfm_report_computes():
    assert set(get_args(Segment)) == set(NAMES)


def _rfm(service: Service, as_of: datetime, filters: Filters) -> Report:
    loaded = loads(SCHEME, "scheme.yaml")
    assert loaded.scheme is not None
    with service.engine.connect() as conn:
        return run("rfm", conn, loaded.scheme, as_of, filters)


def test_the_days_rfm_report_is_as_of_its_first_instant_and_reads_the_daily_run_once_it_has_run(service: Service, clock: Clock):
    """Without a period, the rfm report is the day's: as of today's first local instant over the
    closed days. Before today's segment run it is computed from the purchases; after it, read from
    the run's stored scores; both answer the same, with a store filter too (scores rank a member
    among all buyers, the filter picks whom to show)."""
    clock.set("2026-11-20T12:00:00+00:00")
    publish(service, SCHEME)
    for member, times in PURCHASES.items():
        _post(service, f"{member}-su", "signup", member, "2026-08-01T10:00:00+08:00")
        for n, at in enumerate(times):
            _post(service, f"{member}-p{n}", "purchase", member, at, amount=1000 * (n + 1))
    _post(service, "m4-su", "signup", "m4", "2026-08-01T10:00:00+08:00")
    _post(service, "m4-p0", "purchase", "m4", "2026-10-01T10:00:00+08:00", amount=500)
    with service.engine.begin() as conn:  # m4 is a member of another store
        conn.execute(t.members.update().where(t.members.c.external_id == "m4").values(home_store="S2"))
    now = datetime.fromisoformat("2026-11-21T15:30:00+08:00")
    day = date(2026, 11, 21)
    explicit = Filters(end=day - timedelta(days=1), limit=1000)
    want = _rfm(service, local_start(day, ZoneInfo("Asia/Shanghai")), explicit)
    assert {str(r["member"]) for r in want.table("members").rows} == {"m1", "m2", "m4"}

    before = _rfm(service, now, Filters(limit=1000))  # no run today yet: computed
    clock.set("2026-11-21T01:00:00+00:00")
    assert service.scheduler.tick().segments_on == day
    after = _rfm(service, now, Filters(limit=1000))  # read from the run
    for got in (before, after):
        assert got.tables == want.tables
        assert (got.filters["as_of"], got.filters["to"]) == ("2026-11-20T16:00:00+00:00", "2026-11-20")
    only_s2 = _rfm(service, now, Filters(stores=frozenset({"S2"}), limit=1000))
    [m4] = only_s2.table("members").rows
    assert m4 == next(r for r in want.table("members").rows if r["member"] == "m4")  # scored among all buyers
    assert sum(int(r["members"]) for r in only_s2.table("segments").rows) == 1
