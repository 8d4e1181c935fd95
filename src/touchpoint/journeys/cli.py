"""`touchpoint journeys check|stats` and `touchpoint campaign send`."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import typer

from touchpoint.config import get_settings
from touchpoint.db import Database
from touchpoint.journeys.campaign import CampaignError, send_campaign
from touchpoint.journeys.spec import JourneyFileError, load_journeys
from touchpoint.journeys.stats import journey_stats
from touchpoint.messaging.templates import known_templates
from touchpoint.wiring import load_all_templates

journeys_app = typer.Typer(help="Journeys: check the rules file, show the numbers.", no_args_is_help=True)
campaign_app = typer.Typer(help="One-off broadcasts through the same rules and outbox.",
                           no_args_is_help=True)


@journeys_app.command("check")
def check(file: Path = typer.Argument(None, help="journeys.yaml (default: the configured one)")) -> None:
    """Validate a journeys file without starting anything."""
    load_all_templates()
    try:
        parsed = load_journeys(file or get_settings().journeys_file, known_templates=known_templates())
    except JourneyFileError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(1) from None
    enabled = parsed.enabled()
    typer.echo(f"ok: {len(parsed.journeys)} journeys ({len(enabled)} enabled): "
               + ", ".join(j.key for j in enabled))


@journeys_app.command("stats")
def stats(as_json: bool = typer.Option(False, "--json", help="one JSON object per journey")) -> None:
    """Per journey: enrolled, held out, sent, delivered, clicked, converted, uplift, skips."""

    async def run() -> list[dict[str, object]]:
        db = Database(get_settings().database_url)
        try:
            async with db.session() as session:
                return [s.as_dict() for s in await journey_stats(session)]
        finally:
            await db.dispose()

    rows = asyncio.run(run())
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    header = f"{'journey':24} {'enrolled':>8} {'held':>6} {'sent':>6} {'deliv':>6} {'click':>6} " \
             f"{'conv':>6} {'rate':>7} {'ctrl':>7} {'uplift':>7}  skipped"
    typer.echo(header)
    for r in rows:
        skipped = ", ".join(f"{k}={v}" for k, v in r["skipped"].items()) or "-"  # type: ignore[attr-defined]
        typer.echo(f"{r['journey']!s:24} {r['enrolled']:>8} {r['held_out']:>6} {r['sent']:>6} "
                   f"{r['delivered']:>6} {r['clicked']:>6} {r['converted']:>6} "
                   f"{r['conversion_rate']:>7.1%} {r['holdout_rate']:>7.1%} "
                   f"{r['uplift_pp']:>+6.1f}pp  {skipped}")


@campaign_app.command("send")
def campaign_send(
    template: str = typer.Option(..., help="a registered template key, e.g. journey.winback"),
    segment: str = typer.Option("", help="e.g. languages=ru+en,linked=true,tiers=vip,min_spend_minor=1000"),
    at: datetime = typer.Option(None, help="when (ISO, UTC if no offset); default now"),
    name: str = typer.Option("", help="campaign name (default: the template and date)"),
) -> None:
    """Schedule a one-off marketing broadcast: same consent, caps, quiet hours and outbox."""

    async def run() -> dict[str, int]:
        settings = get_settings()
        db = Database(settings.database_url)
        try:
            return await send_campaign(db, settings, template, segment, at=at, name=name or None)
        finally:
            await db.dispose()

    try:
        counts = asyncio.run(run())
    except CampaignError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(", ".join(f"{v} {k}" for k, v in counts.items()))
