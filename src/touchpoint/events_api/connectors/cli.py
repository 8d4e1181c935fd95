"""`touchpoint connectors status|requeue`: the Shopify / WooCommerce delivery queue, for operators."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from touchpoint.config import get_settings
from touchpoint.db import Database
from touchpoint.events_api.connectors.queue import queue_status, requeue

connectors_app = typer.Typer(help="Shopify and WooCommerce webhook deliveries.", no_args_is_help=True)
T = TypeVar("T")


def _run(step: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        db = Database(get_settings().database_url)
        try:
            return await step(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


@connectors_app.command("status")
def status() -> None:
    """Deliveries by platform and how they ended (pending ones are still to be applied)."""
    rows = _run(queue_status)
    if not rows:
        typer.echo("no deliveries")
    for platform, state, count in rows:
        typer.echo(f"{platform:<12} {state:<9} {count}")


@connectors_app.command("requeue")
def requeue_command(
    failed: bool = typer.Option(True, "--failed/--no-failed", help="Deliveries the database refused."),
    rejected: bool = typer.Option(False, "--rejected", help="Deliveries that could not be applied."),
    platform: str | None = typer.Option(None, help="shopify or woocommerce; default both."),
) -> None:
    """Put failed (and with --rejected, rejected) deliveries back in the queue, once fixed."""
    statuses = [name for name, on in (("failed", failed), ("rejected", rejected)) if on]
    count = _run(lambda db: requeue(db, statuses, platform))
    typer.echo(f"{count} deliveries queued again; the running bot applies them within seconds")
