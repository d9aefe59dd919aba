"""`perkflow data-key`, `perkflow members`, `perkflow erasures`: the keys that encrypt members'
personal data and their rotation; showing, exporting and erasing one member's personal data; the
erasure register after a restore.

Whoever runs these commands holds the database and the data key, so the CLI acts with every
personal-data scope (perkflow/service/masking.py); each reveal, export and erasure still needs a
reason and is audited under the operating-system user (`cli:<user>`).

The same conventions as perkflow/cli/ops.py: results on stdout, `Error: ...` on stderr; exit
status 0 when it worked, 1 when the service or the database refused, 2 for a usage error.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from perkflow.service import rotation
from perkflow.service.access import Principal
from perkflow.service.crypto import new_key
from perkflow.service.masking import ERASE, EXPORT_FULL, FIELDS, REVEAL
from perkflow.service.problems import Problem

from .ops import DatabaseUrl, DataDir, JsonFlag, _actor, _fail, _print_json, _refused, _service, _sub_app

data_key = _sub_app(
    "data-key",
    "The keys that encrypt members' personal data, and their rotation.\n\n"
    "Keys come from PERKFLOW_DATA_KEY, else the file data.key in the data folder: the current key "
    "first, then (comma-separated, or one a line in the file) the older keys that rows not yet "
    "rotated still need. To rotate: put a new key first, keep the old one after it, restart every "
    "server, run `perkflow data-key rotate` until nothing remains, then drop the old key.",
)


@data_key.command("generate")
def generate() -> None:
    """Print a new random data key (base64 of 32 bytes), to put first in the configuration."""
    typer.echo(new_key())


@data_key.command("status")
def status(database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Count the members whose personal data each key encrypted."""
    with _service(database_url, data_dir) as service:
        counts = rotation.key_status(service.engine, service.keys)
    if as_json:
        _print_json({"current": service.keys.current_id, "keys": counts})
        return
    typer.echo(f"current key: {service.keys.current_id}")
    for item in counts:
        typer.echo(f"  {item['key_id']}: {item['members']} members ({item['key']})")


@data_key.command("rotate")
def rotate(
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=100_000, help="Rows re-encrypted per transaction.")] = 500,
    max_batches: Annotated[
        int | None,
        typer.Option("--max-batches", min=1, help="Stop after this many batches (run again to resume).", show_default=False),
    ] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-encrypt and re-index every member still under an older key with the current key.

    Runs in batches, each its own transaction; members stay readable and findable by phone or
    email throughout. Interrupted or stopped by --max-batches, it resumes where it stopped when
    run again. Exit status 1 while rows remain under an older key.
    """
    with _service(database_url, data_dir) as service:
        try:
            done = rotation.rotate(service.engine, service.keys, batch_size=batch_size, max_batches=max_batches)
        except KeyError as exc:
            _fail(f"{exc.args[0]}; the batches before it are done")
    if as_json:
        _print_json(done.to_dict())
    else:
        typer.echo(f"re-encrypted {done.rows} members in {done.batches} batches; {done.remaining} remain under older keys")
    if done.remaining:
        raise typer.Exit(1)


members = _sub_app(
    "members",
    "One member's personal data: masked, revealed for a reason, exported, erased.\n\n"
    "Reveals, exports and erasures need --reason and are audited; a reason may not hold a phone "
    "number or an email address.",
)
erasures = _sub_app(
    "erasures",
    "The erasure register: every member erased, by internal id and pseudonym.\n\n"
    "`perkflow restore` applies it again by itself; `reapply` does it by hand (after `perkflow db upgrade` "
    "of a restored older backup).",
)
MemberId = Annotated[str, typer.Argument(metavar="MEMBER", help="The member's id (the external id).", show_default=False)]
Reason = Annotated[str, typer.Option("--reason", help="Why: kept in the audit log.", show_default=False)]


def _operator() -> Principal:
    return Principal(_actor(), frozenset({"members:read", REVEAL, ERASE, EXPORT_FULL}))


def _done(result: Any) -> Any:
    if isinstance(result, Problem):
        _refused(result)
    return result


@members.command("profile")
def profile(member: MemberId, database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Show a member's personal data, masked (138****0000, a***@example.com)."""
    with _service(database_url, data_dir) as service:
        _print_json(_done(service.subjects.profile(member, principal=_operator())))


@members.command("reveal")
def reveal(
    member: MemberId,
    reason: Reason,
    field: Annotated[list[str] | None, typer.Option("--field", help=f"One of {', '.join(FIELDS)}; repeat it; all when absent.", show_default=False)] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Show a member's personal data in full (audited)."""
    body: dict[str, Any] = {"reason": reason} | ({"fields": field} if field else {})
    with _service(database_url, data_dir) as service:
        _print_json(_done(service.subjects.reveal(member, body, principal=_operator())))


@members.command("export")
def export(
    member: MemberId,
    reason: Reason,
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write to this file instead of stdout.", show_default=False)] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Export everything held on one member as JSON, for a subject access request (audited)."""
    with _service(database_url, data_dir) as service:
        data = _done(service.subjects.export(member, {"reason": reason}, principal=_operator()))
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"exported member {member} to {output}", err=True)


@members.command("erase")
def erase(member: MemberId, reason: Reason, database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Erase a member's personal data; their ledger and decisions stay under a pseudonym (audited).

    Removes phone, email, name, birthday and attributes; the member's id becomes a pseudonym in the
    member row, its events and outbox; outbox payloads and webhook delivery errors are blanked.
    The erasure is written to the register in the data folder and applied again after a restore.
    """
    with _service(database_url, data_dir) as service:
        done = _done(service.subjects.erase(member, {"reason": reason}, principal=_operator()))
    if as_json:
        _print_json(done)
    else:
        typer.echo(f"erased member {member}: its ledger is kept under {done['id']}")


@members.command("personal-data")
def personal_data(
    full: Annotated[bool, typer.Option("--full", help="Unmasked values; needs --reason (audited).")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, with --full: kept in the audit log.", show_default=False)] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Export every member's personal data as CSV on stdout: masked, or in full with --full and a reason."""
    with _service(database_url, data_dir) as service:
        rows = _done(service.subjects.export_members(principal=_operator(), full=full, reason=reason))
        writer = csv.DictWriter(sys.stdout, fieldnames=["external_id", *FIELDS], lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)


@erasures.command("list")
def erasures_list(database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Print the register: internal member id, pseudonym and when, as JSON."""
    with _service(database_url, data_dir) as service:
        _print_json(service.subjects.register())


@erasures.command("reapply")
def erasures_reapply(database_url: DatabaseUrl = None, data_dir: DataDir = None) -> None:
    """Erase again every registered member that a restore brought back."""
    with _service(database_url, data_dir) as service:
        count = service.subjects.reapply(service.subjects.register(), actor=_actor())
    typer.echo(f"erased {count} members again")


def register(app: typer.Typer) -> None:
    app.add_typer(data_key)
    app.add_typer(members)
    app.add_typer(erasures)
