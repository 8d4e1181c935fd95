"""The migration stairway: upgrade → downgrade → upgrade leaves the schema the models describe."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from tests.databases import postgres_database
from touchpoint.db.migrate import downgrade_database, upgrade_database
from touchpoint.db.models import metadata


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'stairway.db'}"
        return
    async with postgres_database("tp_stairway") as url:
        yield url


async def table_names(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    return names - {"alembic_version"}


async def test_upgrade_downgrade_upgrade(empty_database: str) -> None:
    expected = set(metadata.tables)
    await upgrade_database(empty_database)
    assert await table_names(empty_database) == expected
    await downgrade_database(empty_database, "base")
    assert await table_names(empty_database) == set()
    await upgrade_database(empty_database)
    assert await table_names(empty_database) == expected


async def test_models_match_migrations(empty_database: str) -> None:
    """Autogenerate finds nothing to do: no model change was left without a migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    await upgrade_database(empty_database)
    engine = create_async_engine(empty_database)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), metadata)
            )
    finally:
        await engine.dispose()
    assert diff == []
