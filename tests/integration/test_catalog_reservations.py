"""Click-and-collect holds on a real database: the last unit goes once, expiry gives it back."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import time_machine
from sqlmodel import select

from touchpoint.catalog.models import Reservation, Stock
from touchpoint.catalog.service import release_expired_reservations, reserve, stock_by_store
from touchpoint.clock import utcnow
from touchpoint.customers.models import Customer
from touchpoint.db import Database
from touchpoint.seed.demo import seed_demo

HOLD = timedelta(hours=2)


async def customers(db: Database, count: int) -> list[int]:
    async with db.session() as session:
        rows = [Customer(telegram_id=7000 + i, timezone="Europe/Berlin", created_at=utcnow(),
                         last_seen_at=utcnow()) for i in range(count)]
        session.add_all(rows)
        await session.flush()
        return [row.id or 0 for row in rows]


async def set_stock(db: Database, quantity: int) -> None:
    async with db.session() as session:
        row = await session.get(Stock, ("alexa", "GRD-003"))
        assert row is not None
        row.quantity, row.reserved = quantity, 0
        session.add(row)


async def available(db: Database) -> int:
    async with db.session() as session:
        rows = await stock_by_store(session, "GRD-003")
    return next(r.available for r in rows if r.store.id == "alexa")


async def test_last_unit_goes_to_one_customer_only(db: Database) -> None:
    await seed_demo(db)
    await set_stock(db, 1)
    ids = await customers(db, 4)

    async def attempt(customer_id: int) -> bool:
        async with db.session() as session:
            outcome = await reserve(session, customer_id, "alexa", "GRD-003", HOLD)
            return outcome.reservation is not None

    results = await asyncio.gather(*(attempt(i) for i in ids))
    assert sum(results) == 1
    assert await available(db) == 0


async def test_pressing_twice_keeps_one_hold_and_expiry_releases_it(db: Database) -> None:
    await seed_demo(db)
    await set_stock(db, 3)
    [customer] = await customers(db, 1)
    for _ in range(2):
        async with db.session() as session:
            outcome = await reserve(session, customer, "alexa", "GRD-003", HOLD)
            assert outcome.reservation is not None
    assert outcome.already
    assert await available(db) == 2

    assert await release_expired_reservations(db) == 0
    with time_machine.travel(utcnow() + HOLD + timedelta(minutes=1), tick=False):
        assert await release_expired_reservations(db) == 1
        assert await release_expired_reservations(db) == 0  # idempotent
    assert await available(db) == 3
    async with db.session() as session:
        assert (await session.exec(select(Reservation.status))).all() == ["expired"]


async def test_unknown_or_empty_is_refused(db: Database) -> None:
    await seed_demo(db)
    await set_stock(db, 0)
    [customer] = await customers(db, 1)
    async with db.session() as session:
        assert (await reserve(session, customer, "alexa", "GRD-003", HOLD)).reason == "out_of_stock"
        assert (await reserve(session, customer, "nowhere", "GRD-003", HOLD)).reason == "unknown"
