"""`touchpoint import catalog FILE` and `touchpoint import faq FILE`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import typer

from touchpoint.catalog.importer import ImportReport, import_catalog, import_faq
from touchpoint.config import get_settings
from touchpoint.db import Database
from touchpoint.db.migrate import upgrade_database

import_app = typer.Typer(help="Import the catalogue or the FAQ (all or nothing).", no_args_is_help=True)
FileArg = typer.Argument(..., exists=True, dir_okay=False, readable=True)


def _run(step: Callable[[Database], Awaitable[ImportReport]]) -> None:
    async def run() -> ImportReport:
        settings = get_settings()
        await upgrade_database(settings.database_url)
        db = Database(settings.database_url)
        try:
            return await step(db)
        finally:
            await db.dispose()

    report = asyncio.run(run())
    if not report.ok:
        for error in report.errors:
            typer.echo(error, err=True)
        typer.echo(f"{len(report.errors)} error(s); nothing was changed", err=True)
        raise typer.Exit(1)
    typer.echo("imported " + ", ".join(f"{count} {name}" for name, count in report.counts.items()))


@import_app.command("catalog")
def catalog(path: Path = FileArg) -> None:
    """Categories, products (with translations), stores and stock from a .json or .csv file."""
    text = path.read_text("utf-8-sig")
    _run(lambda db: import_catalog(db, text, path.name))


@import_app.command("faq")
def faq(path: Path = FileArg) -> None:
    """FAQ entries with questions and answers in every language, from a YAML file."""
    text = path.read_text("utf-8-sig")
    _run(lambda db: import_faq(db, text))
