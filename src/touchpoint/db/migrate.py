"""Alembic, driven from code so it works from an installed package as well as a checkout."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def _run(database_url: str, action: str, revision: str) -> None:
    getattr(command, action)(alembic_config(database_url), revision)


async def upgrade_database(database_url: str, revision: str = "head") -> None:
    # alembic's async env runs its own event loop, so it gets a thread of its own.
    await asyncio.to_thread(_run, database_url, "upgrade", revision)


async def downgrade_database(database_url: str, revision: str) -> None:
    await asyncio.to_thread(_run, database_url, "downgrade", revision)
