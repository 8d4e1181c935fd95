"""Throwaway databases for tests: a SQLite file, or a uniquely named PostgreSQL database.

PostgreSQL tests run when TOUCHPOINT_TEST_POSTGRES_URL is set (CI sets it). Under CI=true an
unreachable server fails the run instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from touchpoint.db.migrate import upgrade_database

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("TOUCHPOINT_TEST_POSTGRES_URL") or (
    "postgresql+asyncpg://postgres@127.0.0.1:5432/test" if IN_CI else None
)


def unavailable(what: str, why: str) -> None:
    """Skip on a laptop without the service; fail in CI, where it must be there."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI: {why}")
    pytest.skip(f"{what} not available: {why}")


def _plain_dsn(url: str, database: str | None = None) -> str:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    if database is not None:
        dsn = dsn.rsplit("/", 1)[0] + "/" + database
    return dsn


@asynccontextmanager
async def postgres_database(prefix: str = "tp_test", template: str | None = None) -> AsyncIterator[str]:
    """Create a fresh PostgreSQL database (empty, or a copy of ``template``), yield its SQLAlchemy
    URL, drop it afterwards."""
    name = await _create(prefix, template)
    try:
        yield _sqlalchemy_url(name)
    finally:
        await _drop(name)


class PostgresTemplate:
    """Migrating takes seconds: migrate one database per test session and clone it per test
    (CREATE DATABASE ... TEMPLATE copies files, far faster than running the migrations)."""

    def __init__(self) -> None:
        self.name: str | None = None

    @asynccontextmanager
    async def clone(self) -> AsyncIterator[str]:
        if self.name is None:
            name = await _create("tp_template")
            try:
                await upgrade_database(_sqlalchemy_url(name))  # disposes its engine: nothing blocks a copy
            except BaseException:
                await _drop(name)
                raise
            self.name = name
        async with postgres_database(template=self.name) as url:
            yield url

    async def drop(self) -> None:
        if self.name is not None:
            await _drop(self.name)
            self.name = None


async def _create(prefix: str, template: str | None = None) -> str:
    if not POSTGRES_URL:
        unavailable("PostgreSQL", "TOUCHPOINT_TEST_POSTGRES_URL is not set")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(_plain_dsn(_server_url()), timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        unavailable("PostgreSQL", str(exc))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    finally:
        await admin.close()
    return name


async def _drop(name: str) -> None:
    admin = await asyncpg.connect(_plain_dsn(_server_url()), timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _server_url() -> str:
    if POSTGRES_URL is None:
        raise RuntimeError("TOUCHPOINT_TEST_POSTGRES_URL is not set")
    return POSTGRES_URL


def _sqlalchemy_url(database: str) -> str:
    return _server_url().rsplit("/", 1)[0] + "/" + database


class SqliteTemplate:
    """Migrating takes a moment: migrate one file per test session, copy it per test."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "template.db"
        self._ready = False

    async def copy_to(self, target: Path) -> str:
        if not self._ready:
            await upgrade_database(f"sqlite+aiosqlite:///{self.path}")
            self._ready = True
        shutil.copyfile(self.path, target)
        return f"sqlite+aiosqlite:///{target}"
