"""Shared fixtures: migrated databases on SQLite (always) and PostgreSQL (when configured), the
sandbox Bot API emulator and a webhook-mode bot against it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.databases import PostgresTemplate, SqliteTemplate
from tests.production import WebhookBot, free_port, webhook_settings
from touchpoint.db import Database
from touchpoint.sandbox import Sandbox
from touchpoint.understanding.embeddings import warm_up
from touchpoint.wiring import load_all_templates

# What the composition root does at start-up: every template and contact veto registered.
load_all_templates()

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session", autouse=True)
def language_model() -> None:
    """Load the sentence encoder once per test run (as the bot does at start), so no test's first
    question waits seconds for it."""
    warm_up()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[PostgresTemplate]:
    template = PostgresTemplate()
    yield template
    asyncio.run(template.drop())


@pytest.fixture
async def sqlite_url(sqlite_template: SqliteTemplate, tmp_path: Path) -> str:
    """A migrated SQLite database of this test's own."""
    return await sqlite_template.copy_to(tmp_path / "touchpoint.db")


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, sqlite_url: str,
                       postgres_template: PostgresTemplate) -> AsyncIterator[str]:
    """A migrated database on each backend in turn."""
    if request.param == "sqlite":
        yield sqlite_url
        return
    async with postgres_template.clone() as url:
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


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[Sandbox, str]]:
    emulator = Sandbox()
    base_url = await emulator.start("127.0.0.1", 0)
    yield emulator, base_url
    await emulator.stop()


@pytest.fixture
async def webhook_bot(sandbox: tuple[Sandbox, str], sqlite_url: str) -> AsyncIterator[WebhookBot]:
    _emulator, base_url = sandbox
    bot = WebhookBot(webhook_settings(base_url, sqlite_url, free_port()))
    await bot.start()
    yield bot
    await bot.close()
