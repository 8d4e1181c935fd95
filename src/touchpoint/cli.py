"""`touchpoint …`: database, seed and i18n commands of the core. The bot package adds `run`
and `demo` to this same app (the core never imports the bot)."""

from __future__ import annotations

import asyncio
import logging

import typer

from touchpoint.aftersales.cli import app as tickets_app
from touchpoint.catalog.cli import import_app
from touchpoint.config import get_settings
from touchpoint.console.cli import app as staff_app
from touchpoint.db import Database
from touchpoint.db.migrate import downgrade_database, upgrade_database
from touchpoint.events_api.cli import events_app
from touchpoint.events_api.connectors.cli import connectors_app
from touchpoint.i18n import compile_catalogs, find_locales_dir
from touchpoint.journeys.cli import campaign_app, journeys_app
from touchpoint.referrals.cli import app as referrals_app
from touchpoint.understanding.cli import faq_app

app = typer.Typer(help="Touchpoint: a retail customer-journey assistant on Telegram.",
                  no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
seed_app = typer.Typer(help="Load data.", no_args_is_help=True)
i18n_app = typer.Typer(help="Translations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(seed_app, name="seed")
app.add_typer(i18n_app, name="i18n")
app.add_typer(events_app, name="events")
app.add_typer(connectors_app, name="connectors")
app.add_typer(tickets_app, name="tickets")
app.add_typer(import_app, name="import")
app.add_typer(referrals_app, name="referrals")
app.add_typer(journeys_app, name="journeys")
app.add_typer(campaign_app, name="campaign")
app.add_typer(staff_app, name="staff")
app.add_typer(faq_app, name="faq")


def configure_logging(level: int = logging.INFO) -> None:
    from touchpoint.observability import quiet_chatty_loggers

    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_chatty_loggers()


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    asyncio.run(upgrade_database(get_settings().database_url, revision))
    typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Undo migrations down to REVISION."""
    asyncio.run(downgrade_database(get_settings().database_url, revision))
    typer.echo(f"database at {revision}")


@seed_app.command("demo")
def seed_demo_command() -> None:
    """Load the demo retailer into the configured database (migrating it first)."""
    from touchpoint.seed.demo import seed_demo

    async def run() -> dict[str, int]:
        settings = get_settings()
        await upgrade_database(settings.database_url)
        db = Database(settings.database_url)
        try:
            return await seed_demo(db)
        finally:
            await db.dispose()

    counts = asyncio.run(run())
    typer.echo(", ".join(f"{count} {name}" for name, count in counts.items()))


@i18n_app.command("compile")
def i18n_compile() -> None:
    """Compile locales/*/LC_MESSAGES/messages.po into .mo files."""
    written = compile_catalogs(find_locales_dir(get_settings().locales_dir))
    typer.echo(f"compiled {len(written)} catalogue(s)")
