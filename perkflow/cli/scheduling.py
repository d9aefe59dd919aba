"""`perkflow tick`, `perkflow deliver` and `perkflow webhooks`: the scheduler and the webhook
worker, once, for cron (`perkflow serve` runs both in the background).

The same conventions as perkflow/cli/ops.py: results on stdout, `Error: ...` on stderr; exit
status 0 when it worked, 1 when the service or the database refused, 2 for a usage error.
"""

from __future__ import annotations

from typing import Annotated

import typer

from perkflow.service.problems import Problem

from .ops import DatabaseUrl, DataDir, JsonFlag, _fail, _instant, _print_json, _refused, _service, _sub_app

webhooks = _sub_app("webhooks", "Webhook subscriptions and their deliveries.\n\nSubscriptions are made through the API (/api/v1/webhooks).")


def tick(
    until: Annotated[
        str | None,
        typer.Option(metavar="TIME", help="Apply what is due up to this time with an offset (default: now).", show_default=False),
    ] = None,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Apply every member's time-driven events due by now: expiries, tier reviews, points_expiring
    reminders, birthdays and inactivity, each stored once under its deterministic id.

    Safe to run from cron on several hosts at once: an event already applied is never applied
    again. Members are found from lots, review dates, birthdays and purchases since the last run.

    The first run of each local day also stores every member's RFM segment for that day (campaign
    audiences may name segments), and each run brings the ledger's daily rollup up to yesterday.
    """
    instant = _instant(until) if until else None
    with _service(database_url, data_dir) as service:
        try:
            result = service.scheduler.tick(instant)
        except ValueError as exc:
            _fail(str(exc))
    if as_json:
        _print_json(result.to_dict())
    else:
        typer.echo(f"applied {result.events} time-driven events for {result.members} members up to {result.until.isoformat()}")
        if result.segments_on is not None:
            typer.echo(f"stored the segments of {result.segmented} members for {result.segments_on.isoformat()}")


def deliver(
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Send pending notifications (rendered from the scheme's templates, on the log or webhook
    channel) and deliver the webhooks that are due, once: new messages are handed to their subscriptions,
    failed tries are retried after 1m, 5m, 30m, 2h, 6h, 12h and 24h, then the delivery is dead.

    Receivers must accept a message more than once: its webhook-id is the same on every try.
    """
    with _service(database_url, data_dir) as service:
        sent, unsendable = service.notifications.run()
        run = service.webhooks.run()
    if as_json:
        _print_json({**run.to_dict(), "notifications": {"sent": sent, "dead": unsendable}})
    else:
        typer.echo(f"notifications: sent {sent}, dead {unsendable}")
        typer.echo(f"webhooks: dispatched {run.dispatched}, delivered {run.delivered}, failed {run.failed} (will retry), dead {run.dead}")


@webhooks.command("list")
def webhooks_list(database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """List the subscriptions (without their secrets)."""
    with _service(database_url, data_dir) as service:
        found = service.webhooks.list()
    if as_json:
        _print_json(found)
        return
    for sub in found:
        typer.echo(f"{sub['id']}\t{'active' if sub['active'] else 'paused'}\t{','.join(sub['kinds']) or '*'}\t{sub['url']}")


@webhooks.command("deliveries")
def webhooks_deliveries(
    subscription: Annotated[int, typer.Argument(metavar="SUBSCRIPTION", help="The subscription's id.")],
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1, max=1000)] = 50,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the delivery log of a subscription, newest first."""
    with _service(database_url, data_dir) as service:
        found = service.webhooks.deliveries(subscription, limit=limit)
    if isinstance(found, Problem):
        _refused(found)
    if as_json:
        _print_json(found)
        return
    for d in found:
        typer.echo(f"{d['id']}\t{d['message_id']}\t{d['kind']}\t{d['status']}\ttries {d['attempts']}\t{d['last_error']}")


@webhooks.command("redeliver")
def webhooks_redeliver(
    delivery: Annotated[int, typer.Argument(metavar="DELIVERY", help="The delivery's id (from `perkflow webhooks deliveries`).")],
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Send a delivery again (a dead one too) at the next `perkflow deliver`, with the same webhook-id."""
    with _service(database_url, data_dir) as service:
        done = service.webhooks.redeliver(delivery)
    if isinstance(done, Problem):
        _refused(done)
    typer.echo(f"delivery {delivery} ({done['message_id']}) will be sent again")


def rollup(
    until: Annotated[
        str | None,
        typer.Option(metavar="TIME", help="Roll up the local days closed by this time with an offset (default: now).", show_default=False),
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Rebuild every day from the ledger, not only new and touched days.")] = False,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Build the ledger's daily rollup that the flows report reads: every closed local day not yet
    rolled up or touched by a late event since the last build (`perkflow tick` does it too).

    Reports stay exact whether or not it ran: days after the rollup, and days late events touched,
    are summed from the ledger.
    """
    instant = _instant(until) if until else None
    with _service(database_url, data_dir) as service:
        result = service.scheduler.build_rollup(instant, full=full)
    if isinstance(result, Problem):
        _refused(result)
    body = {"start": result.start.isoformat() if result.start else None, "through": result.through.isoformat() if result.through else None, "days": result.days}
    if as_json:
        _print_json(body)
    else:
        typer.echo(f"rolled up {result.days} days; the rollup holds the days up to {body['through']}")


def register(app: typer.Typer) -> None:
    app.command()(tick)
    app.command()(rollup)
    app.command()(deliver)
    app.add_typer(webhooks)
