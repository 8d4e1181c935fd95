"""`touchpoint staff …`: console accounts."""

from __future__ import annotations

import asyncio

import typer

from touchpoint.config import get_settings
from touchpoint.console.models import ROLES
from touchpoint.db import Database, upgrade_database

app = typer.Typer(help="Staff accounts of the web console.", no_args_is_help=True)


@app.command("add")
def add(
    username: str,
    role: str = typer.Option("agent", help=f"One of: {', '.join(ROLES)}."),
    display_name: str = typer.Option("", "--name", help="Shown to colleagues and customers."),
    locale: str | None = typer.Option(None, help="The console's language for this person: en, ru or zh."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 envvar="TOUCHPOINT_STAFF_PASSWORD"),
) -> None:
    """Create a staff account (or reset its password and role)."""
    from touchpoint.console.auth import add_staff

    async def run() -> str:
        settings = get_settings()
        if settings.is_sqlite:
            await upgrade_database(settings.database_url)
        db = Database(settings.database_url)
        try:
            async with db.session() as session:
                account = await add_staff(session, username, password, role, display_name, locale)
                return f"{account.username} ({account.role}) is ready"
        finally:
            await db.dispose()

    try:
        typer.echo(asyncio.run(run()))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
