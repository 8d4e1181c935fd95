"""`touchpoint staff …`: console accounts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import typer
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.config import get_settings
from touchpoint.console.models import ROLES
from touchpoint.db import Database, upgrade_database

app = typer.Typer(help="Staff accounts of the web console.", no_args_is_help=True)


def _run(work: Callable[[AsyncSession], Awaitable[str]]) -> None:
    """One transaction on the configured database; a ValueError is one line on stderr, exit 1."""

    async def run() -> str:
        settings = get_settings()
        if settings.is_sqlite:
            await upgrade_database(settings.database_url)
        db = Database(settings.database_url)
        try:
            async with db.session() as session:
                return await work(session)
        finally:
            await db.dispose()

    try:
        typer.echo(asyncio.run(run()))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command("add")
def add(
    username: str,
    role: str = typer.Option("agent", help=f"One of: {', '.join(ROLES)}."),
    display_name: str = typer.Option("", "--name", help="Shown to colleagues and customers."),
    locale: str | None = typer.Option(None, help="The console's language for this person: en, ru or zh."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 envvar="TOUCHPOINT_STAFF_PASSWORD"),
) -> None:
    """Create a staff account (or reset its password and role, which signs it out everywhere)."""
    from touchpoint.console.auth import add_staff

    async def work(session: AsyncSession) -> str:
        account = await add_staff(session, username, password, role, display_name, locale)
        return f"{account.username} ({account.role}) is ready"

    _run(work)


@app.command("disable")
def disable(username: str) -> None:
    """Stop an account: no more log-ins, its open sessions end at once (`staff add` enables again)."""
    from touchpoint.console.auth import disable_staff

    async def work(session: AsyncSession) -> str:
        account = await disable_staff(session, username)
        return f"{account.username} is disabled and signed out"

    _run(work)


@app.command("logout")
def logout(username: str) -> None:
    """End every console session of an account (a lost laptop, a shared computer)."""
    from touchpoint.console.auth import logout_staff

    async def work(session: AsyncSession) -> str:
        ended = await logout_staff(session, username)
        return f"{username.strip().lower()}: {ended} session(s) ended"

    _run(work)
