"""SQLite statements take one trip to aiosqlite's worker thread (a commit with nothing written none)
and behave as the stock adapter's: rows, row counts, generated ids, many-row inserts and constraint
errors."""

from __future__ import annotations

from typing import Any

import aiosqlite.core
import pytest
from sqlalchemy import insert, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from touchpoint.channels.models import ProcessedUpdate
from touchpoint.clock import utcnow
from touchpoint.customers.models import Customer
from touchpoint.db import Database


async def test_one_trip_per_statement(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    trips: list[Any] = []
    execute = aiosqlite.core.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(fn)
        return await execute(self, fn, *args, **kwargs)

    async with sqlite_db.session() as session:
        await session.exec(text("SELECT 1"))  # connected
        monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
        assert (await session.exec(text("SELECT 41 + 1"))).one() == (42,)
        assert len(trips) == 1
    assert len(trips) == 1  # nothing written: neither the commit nor the pool's reset went to the worker
    async with sqlite_db.session() as session:
        await session.exec(insert(ProcessedUpdate).values(update_id=1, bot_id=1, received_at=utcnow()))
    assert len(trips) == 3  # the insert and its commit
    async with sqlite_db.session() as session:
        assert (await session.exec(select(ProcessedUpdate.update_id))).all() == [1]  # committed


async def test_rows_counts_ids_and_errors(sqlite_db: Database) -> None:
    now = utcnow()
    async with sqlite_db.session() as session:
        customer = Customer(telegram_id=1, first_name="Ada", timezone="UTC", created_at=now, last_seen_at=now)
        session.add(customer)
        await session.flush()
        assert customer.id is not None  # the ORM's generated id
        await session.exec(insert(ProcessedUpdate), params=[
            {"update_id": n, "bot_id": 7, "received_at": now} for n in range(5)])
        changed = await session.exec(update(ProcessedUpdate).where(ProcessedUpdate.update_id < 3)
                                     .values(bot_id=8))
        assert changed.rowcount == 3
        ids = (await session.exec(select(ProcessedUpdate.update_id).where(ProcessedUpdate.bot_id == 8)
                                  .order_by(ProcessedUpdate.update_id))).all()
        assert ids == [0, 1, 2]
    with pytest.raises(IntegrityError):
        async with sqlite_db.session() as session:
            await session.exec(insert(ProcessedUpdate).values(update_id=0, bot_id=8, received_at=now))
    async with sqlite_db.session() as session:  # the failed transaction left nothing behind
        assert len((await session.exec(select(ProcessedUpdate))).all()) == 5


async def test_a_locked_database_fails_within_the_busy_timeout(sqlite_url: str) -> None:
    """Another writer holding the lock makes a write wait TOUCHPOINT_DB_SQLITE_BUSY_TIMEOUT_S, then fail."""
    import time

    from sqlalchemy.exc import OperationalError

    from touchpoint.db.faults import is_database_unavailable

    holder, waiter = Database(sqlite_url), Database(sqlite_url, sqlite_busy_timeout_s=0.3)
    try:
        async with waiter.engine.connect() as connection:
            assert (await connection.execute(text("PRAGMA busy_timeout"))).scalar() == 300
        async with holder.engine.connect() as locked:
            await locked.execute(text("BEGIN IMMEDIATE"))
            started = time.monotonic()
            with pytest.raises(OperationalError) as failed:
                async with waiter.session() as session:
                    await session.exec(text("CREATE TABLE t_locked (x INTEGER)"))
            assert time.monotonic() - started < 5
            assert is_database_unavailable(failed.value)
            await locked.execute(text("ROLLBACK"))
    finally:
        await holder.dispose()
        await waiter.dispose()
