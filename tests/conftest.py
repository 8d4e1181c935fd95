"""Shared fixtures: migrated databases on SQLite (always) and PostgreSQL (when configured)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.databases import SqliteTemplate, postgres_database
from touchpoint.db import Database, upgrade_database

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("template"))


@pytest.fixture
async def sqlite_url(sqlite_template: SqliteTemplate, tmp_path: Path) -> str:
    """A migrated SQLite database of this test's own."""
    return await sqlite_template.copy_to(tmp_path / "touchpoint.db")


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[str]:
    """A migrated database on each backend in turn."""
    if request.param == "sqlite":
        yield sqlite_url
        return
    async with postgres_database() as url:
        await upgrade_database(url)
        yield url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def sqlite_db(sqlite_url: str) -> AsyncIterator[Database]:
    database = Database(sqlite_url)
    yield database
    await database.dispose()
