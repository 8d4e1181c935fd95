"""Click-and-collect holds on a real database: the last unit goes once, expiry gives it back."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import time_machine
from sqlmodel import select

from touchpoint.catalog.models import Reservation, Stock
from touchpoint.catalog.service import (
    ReserveLimits,
    ReserveOutcome,
    release_expired_reservations,
    reserve,
    stock_by_store,
)
from touchpoint.clock import utcnow
from touchpoint.customers.models import BehaviourEvent, Customer
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


async def stock_everywhere(db: Database, skus: list[str], quantity: int = 5) -> None:
    async with db.session() as session:
        for store in ("mitte", "alexa", "hauptbahnhof"):
            for sku in skus:
                row = await session.get(Stock, (store, sku))
                row = row or Stock(store_id=store, sku=sku, updated_at=utcnow())
                row.quantity, row.reserved = quantity, 0
                session.add(row)


async def test_one_customer_cannot_hoard_the_shelves(db: Database) -> None:
    """Forged `pr:<store>:<sku>` presses: one hold per product, three at once, five an hour."""
    await seed_demo(db)
    skus = ["GRD-001", "GRD-002", "GRD-003", "GRD-004", "ESP-001"]
    await stock_everywhere(db, skus)
    [customer] = await customers(db, 1)
    limits = ReserveLimits(active_per_customer=3, active_per_product=1, per_hour=5)

    async def press(store: str, sku: str) -> ReserveOutcome:
        async with db.session() as session:
            return await reserve(session, customer, store, sku, HOLD, limits)

    assert (await press("mitte", "GRD-001")).reservation is not None
    second_store = await press("alexa", "GRD-001")
    assert (second_store.reason, second_store.limit) == ("product_held", 1)
    assert (await press("mitte", "GRD-001")).already  # the same press again keeps the one hold
    assert (await press("mitte", "GRD-002")).reservation is not None
    assert (await press("mitte", "GRD-003")).reservation is not None
    fourth = await press("mitte", "GRD-004")
    assert (fourth.reason, fourth.limit) == ("too_many", 3)

    # Holds picked up (or run out) free the slots, but not the hourly budget.
    async with db.session() as session:
        for row in (await session.exec(select(Reservation))).all():
            row.status = "collected"
            session.add(row)
    assert (await press("mitte", "GRD-004")).reservation is not None
    assert (await press("alexa", "ESP-001")).reservation is not None
    too_often = await press("hauptbahnhof", "GRD-001")
    assert (too_often.reason, too_often.limit) == ("too_often", 5)
    with time_machine.travel(utcnow() + timedelta(hours=1, minutes=1), tick=False):
        assert (await press("hauptbahnhof", "GRD-001")).reservation is not None
    async with db.session() as session:
        refused = (await session.exec(select(BehaviourEvent).where(
            BehaviourEvent.type == "reservation.refused"))).all()
        held = {(r.store_id, r.sku) for r in (await session.exec(select(Reservation))).all()}
    assert sorted(e.payload["reason"] for e in refused) == ["product_held", "too_many", "too_often"]
    assert len(held) == 6  # nothing beyond the caps was taken off the shelf


async def test_parallel_forged_presses_cannot_pass_the_cap(db: Database) -> None:
    """Presses racing each other are serialised per customer (a row lock on PostgreSQL)."""
    if db.dialect == "sqlite":
        pytest.skip("SQLite runs one writer at a time; the row lock matters on PostgreSQL")
    await seed_demo(db)
    skus = ["GRD-001", "GRD-002", "GRD-003", "GRD-004", "ESP-001", "ESP-002"]
    await stock_everywhere(db, skus)
    [customer] = await customers(db, 1)
    limits = ReserveLimits(active_per_customer=3, active_per_product=1, per_hour=50)

    async def press(store: str, sku: str) -> bool:
        async with db.session() as session:
            return (await reserve(session, customer, store, sku, HOLD, limits)).reservation is not None

    results = await asyncio.gather(*(press(store, sku) for store in ("mitte", "alexa") for sku in skus))
    assert sum(results) == 3
    async with db.session() as session:
        held = (await session.exec(select(Reservation).where(Reservation.status == "active"))).all()
    assert len(held) == 3 and len({r.sku for r in held}) == 3
