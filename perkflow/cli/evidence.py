"""`perkflow audit verify` and `perkflow replay --verify`: tamper evidence an auditor can run.

The same conventions as perkflow/cli/ops.py: results on stdout, `Error: ...` on stderr. Exit
status 0 when the database checks out, 1 when something was altered (or the database refused),
2 for a usage error.
"""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import func, select

from perkflow.service import audit, replay_check
from perkflow.storage import tables as t

from .ops import DatabaseUrl, DataDir, JsonFlag, _print_json, _service, _sub_app

audit_app = _sub_app(
    "audit",
    "Check the audit log.\n\n"
    "Every publish, approval, adjustment, void, merge and key change is an audit row that holds the "
    "hash of the row before it and of its own content.",
)


@audit_app.command("verify")
def audit_verify(database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Check the audit log's hash chain and name the first row altered, removed or inserted.

    Prints the number of rows and the last row's hash when the chain is whole: keep that hash
    elsewhere (a ticket, another system), since rows removed from the end leave no gap to find.
    Exit status 1 when the chain is broken.
    """
    with _service(database_url, data_dir) as service, service.engine.connect() as conn:
        broken = audit.verify(conn)
        count = conn.execute(select(func.count()).select_from(t.audit_log)).scalar_one()
        last = conn.execute(select(t.audit_log.c.id, t.audit_log.c.hash).order_by(t.audit_log.c.id.desc()).limit(1)).first()
    if as_json:
        _print_json(
            {
                "intact": broken is None,
                "rows": count,
                "last": {"id": last.id, "hash": last.hash} if last is not None and broken is None else None,
                "broken": broken._asdict() if broken is not None else None,
            }
        )
    elif broken is None:
        where = f", the last is row {last.id} with hash {last.hash}" if last is not None else ""
        typer.echo(f"the audit log is intact: {count} row{'' if count == 1 else 's'}{where}")
    else:
        typer.echo(f"Error: the audit log was tampered with at row {broken.row_id}: {broken.message}", err=True)
    if broken is not None:
        raise typer.Exit(1)


def replay(
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Compare with what the database holds (the only mode: required)."),
    ] = False,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-evaluate every stored event through the version that decided it, and name each member
    whose balances, lots, tier or ledger differ from what the database holds.

    Events are replayed in the order they were recorded, with the time-driven events due before
    each applied first, as the live service does; budgets are used up in the same order and their
    totals compared too. Members that took part in a merge are listed as not checked. Nothing is
    written. Exit status 1 when any member or budget differs.
    """
    if not verify:
        typer.echo("Error: say --verify: replay compares with the database and writes nothing", err=True)
        raise typer.Exit(2)
    with _service(database_url, data_dir) as service:
        outcome = replay_check.verify(service.engine, service.versions)
    if as_json:
        _print_json(
            {
                "clean": outcome.clean,
                "members": outcome.members,
                "events": outcome.events,
                "mismatches": [{"member_id": m.member_id, "differences": list(m.differences)} for m in outcome.mismatches],
                "budgets": outcome.budgets,
                "unchecked": outcome.unchecked,
            }
        )
    else:
        for mismatch in outcome.mismatches:
            typer.echo(f"member {mismatch.member_id}:")
            for difference in mismatch.differences:
                typer.echo(f"  {difference}")
        for line in outcome.budgets:
            typer.echo(line)
        for line in outcome.unchecked:
            typer.echo(f"not checked: {line}", err=True)
        verdict = "all match" if outcome.clean else f"{len(outcome.mismatches)} differ"
        typer.echo(f"replayed {outcome.events} events of {outcome.members} members: {verdict}", err=not outcome.clean)
    if not outcome.clean:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `audit verify` and `replay` to the `perkflow` app."""
    app.add_typer(audit_app)
    app.command()(replay)
