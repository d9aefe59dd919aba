"""`perkflow data-key`: the keys that encrypt members' personal data, and their rotation.

The same conventions as perkflow/cli/ops.py: results on stdout, `Error: ...` on stderr; exit
status 0 when it worked, 1 when the service or the database refused, 2 for a usage error.
"""

from __future__ import annotations

from typing import Annotated

import typer

from perkflow.service import rotation
from perkflow.service.crypto import new_key

from .ops import DatabaseUrl, DataDir, JsonFlag, _fail, _print_json, _service, _sub_app

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


def register(app: typer.Typer) -> None:
    app.add_typer(data_key)
