"""Referral self-dealing and held rewards on a real database (hardening item 9).

The incident: a second account with the referrer's name, e-mail and delivery address, linked to
another store record, qualified and was paid 500 + 300 points at once."""

from __future__ import annotations

import asyncio
from typing import Any

import time_machine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.scheduler import create_scheduler, release_referral_rewards_tick
from tests.integration.test_referrals_core import (
    SETTINGS,
    after_return_window,
    deliver,
    events,
    order,
    pair,
    referral_of,
)
from touchpoint.clock import utcnow
from touchpoint.customers.models import Customer, StoreCustomer
from touchpoint.db import Database
from touchpoint.journeys.engine import JourneyEngine
from touchpoint.journeys.spec import JourneysFile
from touchpoint.messaging.models import OutboxMessage
from touchpoint.referrals import ledger
from touchpoint.referrals.models import ReferralReward
from touchpoint.referrals.service import invite_stats, on_order_status


async def store_record(session: AsyncSession, record_id: str, **fields: Any) -> None:
    now = utcnow()
    session.add(StoreCustomer(id=record_id, created_at=now, updated_at=now, **fields))
    await session.flush()


async def rewards(session: AsyncSession) -> list[tuple[str, str, int]]:
    rows = await session.exec(select(ReferralReward).order_by(col(ReferralReward.side)))
    return [(r.side, r.status, r.points) for r in rows.all()]


async def test_second_account_with_the_referrers_email_and_address_is_not_paid(db: Database) -> None:
    async with db.session() as session:
        referrer, referee = await pair(session, {"phone": None})
        assert referrer.store_customer_id and referee.store_customer_id
        await store_record(session, referrer.store_customer_id, name="Jane Doe", email="Jane.Doe@gmail.com")
        await store_record(session, referee.store_customer_id, name="Jane Doe",
                           email="janedoe+2@googlemail.com")
        await order(session, referrer, delivery_address="Hauptstraße 5, 10115 Berlin")
        first = await order(session, referee, contact_phone=None, contact_email="janedoe+2@googlemail.com",
                            delivery_address="10115 Berlin, Hauptstr. 5")
        await deliver(session, first, buyer=referee)

        referral = await referral_of(session, referee)
        assert (referral.status, referral.reason) == ("rejected", "same_email")
        assert [e["reason"] for e in await events(session, "referral.rejected")] == ["same_email"]
        assert await rewards(session) == []
        assert await ledger.balance(session, referrer.id) == 0
        assert await ledger.balance(session, referee.id) == 50  # the order's own points only


async def test_same_delivery_address_alone_blocks_the_reward(db: Database) -> None:
    async with db.session() as session:
        referrer, referee = await pair(session, {"phone": None})
        await order(session, referrer, delivery_address="Lindenallee 12, 50968 Köln")
        await deliver(session, await order(session, referee, contact_phone=None,
                                           delivery_address="50968 KÖLN, LINDENALLEE 12"), buyer=referee)
        assert (await referral_of(session, referee)).reason == "same_address"
        assert await rewards(session) == []


async def test_phone_on_the_store_record_matches_the_orders_contact(db: Database) -> None:
    async with db.session() as session:
        referrer, referee = await pair(session, {"phone": None})
        referrer.phone = None
        session.add(referrer)
        assert referrer.store_customer_id
        await store_record(session, referrer.store_customer_id, phone="030 2345 6700")  # DE, no country code
        await deliver(session, await order(session, referee, contact_phone="+49 30 23456700"), buyer=referee)
        assert (await referral_of(session, referee)).reason == "same_phone"


async def test_different_people_are_paid_once_the_return_window_ends(db: Database) -> None:
    async with db.session() as session:
        referrer, referee = await pair(session)
        assert referrer.store_customer_id and referee.store_customer_id
        await store_record(session, referrer.store_customer_id, email="anna@gmail.com")
        await store_record(session, referee.store_customer_id, email="boris@gmail.com")
        await order(session, referrer, delivery_address="Hauptstraße 5, 10115 Berlin")
        await deliver(session, await order(session, referee, delivery_address="Hauptstraße 7, 10115 Berlin"))
        assert (await referral_of(session, referee)).status == "qualified"
        assert await rewards(session) == [("referee", "pending", 300), ("referrer", "pending", 500)]
        assert (await invite_stats(session, referrer)).pending_points == 500
        assert await ledger.balance(session, referrer.id) == 0

    # The scheduler's job, registered like the other housekeeping jobs, releases them once.
    scheduler = create_scheduler(db, JourneyEngine(SETTINGS, JourneysFile(journeys=[])))
    job = scheduler.get_job("referral_rewards")
    assert job is not None
    assert await job.func(*job.args) == 0  # the window has not ended yet
    with time_machine.travel(after_return_window(), tick=False):
        results = await asyncio.gather(*(release_referral_rewards_tick(db, SETTINGS) for _ in range(3)),
                                       return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert sum(results) == 2  # type: ignore[arg-type]
        assert await job.func(*job.args) == 0
    async with db.session() as session:
        assert await rewards(session) == [("referee", "available", 300), ("referrer", "available", 500)]
        assert await ledger.balance(session, referrer.id) == 500
        stats = await invite_stats(session, referrer)
        assert (stats.pending_points, stats.earned_points, stats.balance) == (0, 500, 500)
        told = (await session.exec(select(OutboxMessage.template).where(
            OutboxMessage.customer_id == referrer.id).order_by(col(OutboxMessage.id)))).all()
        assert told == ["referral.friend_joined", "referral.reward_earned"]


async def test_cancelled_qualifying_order_cancels_pending_rewards(db: Database) -> None:
    async with db.session() as session:
        referrer, referee = await pair(session)
        first = await order(session, referee)
        await deliver(session, first)
        await on_order_status(session, SETTINGS, first, "cancelled")
        referral = await referral_of(session, referee)
        assert (referral.status, referral.reason) == ("reversed", "order_returned")
        assert await rewards(session) == [("referee", "cancelled", 300), ("referrer", "cancelled", 500)]
    with time_machine.travel(after_return_window(), tick=False):
        assert await release_referral_rewards_tick(db, SETTINGS) == 0
    async with db.session() as session:
        assert await ledger.balance(session, referrer.id) == 0
        stats = await invite_stats(session, await session.get(Customer, referrer.id))  # type: ignore[arg-type]
        assert stats.pending_points == 0


async def test_longer_category_window_holds_the_reward_longer(db: Database) -> None:
    """The hold follows the after-sales policy: an item whose category has a 60-day window."""
    from touchpoint.catalog.models import Category, Product
    from touchpoint.orders.models import OrderItem

    settings = SETTINGS.model_copy(update={"return_window_days_by_category": {"machines": 60}})
    async with db.session() as session:
        now = utcnow()
        session.add(Category(id="machines", name={"en": "Machines"}))
        session.add(Product(sku="M-1", category_id="machines", name={"en": "M"}, price_minor=5000,
                            updated_at=now))
        _, referee = await pair(session)
        first = await order(session, referee)
        session.add(OrderItem(order_id=first.id or 0, sku="M-1", name={"en": "M"}, unit_price_minor=5000))
        await session.flush()
        await deliver(session, first, settings)
        [reward] = (await session.exec(select(ReferralReward).where(ReferralReward.side == "referee"))).all()
        assert (reward.available_at - now).days in (59, 60)


async def test_a_shared_pickup_store_is_not_a_shared_home(db: Database) -> None:
    async with db.session() as session:
        referrer, referee = await pair(session)
        store = "Alexanderplatz 1, 10178 Berlin"
        await order(session, referrer, delivery_method="pickup", delivery_address=store)
        first = await order(session, referee, delivery_method="pickup", delivery_address=store)
        await deliver(session, first)
        assert (await referral_of(session, referee)).status == "qualified"
