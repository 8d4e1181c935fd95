"""Warranty registration and the expiry reminder."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from sqlmodel import select

from bot.scheduler import create_scheduler, remind_warranties_tick
from tests.aftersales_factories import make_catalogue, make_linked_customer
from touchpoint.aftersales import warranty
from touchpoint.catalog.models import Product
from touchpoint.clock import utcnow
from touchpoint.config import load_settings
from touchpoint.db import Database
from touchpoint.i18n import get_translator
from touchpoint.journeys.engine import JourneyEngine
from touchpoint.journeys.spec import JourneysFile
from touchpoint.messaging import render
from touchpoint.messaging.models import OutboxMessage
from touchpoint.wiring import load_all_templates

settings = load_settings(_env_file=None)


async def test_register_find_and_remind_once(db: Database) -> None:
    load_all_templates()
    async with db.session() as session:
        await make_catalogue(session)
        customer = await make_linked_customer(session, 21, locale="en")
        assert [p.sku for p in await warranty.find_products(session, "barista")] == ["ESP-1"]
        assert [p.sku for p in await warranty.find_products(session, "grd-1")] == ["GRD-1"]
        assert await warranty.find_products(session, "kettle") == []
        product = await session.get(Product, "ESP-1")
        assert product is not None
        today = utcnow().date()
        bought = today.replace(year=today.year - 2) + timedelta(days=10)  # 24 months: ends in 10 days
        registration = await warranty.register_warranty(session, customer, product, bought, "SN1", "file1")
        await session.flush()
        assert registration.warranty_ends_at.date() == bought.replace(year=bought.year + 2)
        assert await warranty.remind_expiring_warranties(session, settings, days_before=5) == 0
        assert await warranty.remind_expiring_warranties(session, settings, days_before=30) == 1
        assert await warranty.remind_expiring_warranties(session, settings, days_before=30) == 0
        [row] = (await session.exec(select(OutboxMessage))).all()
    assert row.template == "aftersales.warranty_expiring" and row.lane == "service"
    text = render(get_translator(), "en", row.template, row.params).text
    assert text.startswith("Heads-up: the warranty for Barista One ends on ")
    assert isinstance(date.fromisoformat(row.params["ends"]), date)


async def _expiring_registration(db: Database, telegram_id: int) -> None:
    async with db.session() as session:
        await make_catalogue(session)
        customer = await make_linked_customer(session, telegram_id, locale="en")
        product = await session.get(Product, "ESP-1")
        assert product is not None
        today = utcnow().date()
        bought = today.replace(year=today.year - 2) + timedelta(days=10)  # ends in 10 days
        await warranty.register_warranty(session, customer, product, bought, "SN9", "file9")


async def _reminders(db: Database) -> list[OutboxMessage]:
    async with db.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.template == "aftersales.warranty_expiring")
        return list((await session.exec(query)).all())


async def test_the_scheduler_reminds_daily_and_once(db: Database) -> None:
    load_all_templates()
    scheduler = create_scheduler(db, JourneyEngine(settings, JourneysFile(journeys=[])))
    job = scheduler.get_job("warranty_reminders")
    assert job is not None and job.trigger.interval == timedelta(days=1)
    await _expiring_registration(db, 22)
    await job.func(*job.args)
    await job.func(*job.args)  # the next day, or another process
    [reminder] = await _reminders(db)
    assert (reminder.lane, reminder.params["sku"]) == ("service", "ESP-1")


async def test_processes_reminding_at_once_queue_one_reminder(db: Database) -> None:
    """Several bot processes run the same daily job: one reminder, and no process fails."""
    load_all_templates()
    await _expiring_registration(db, 23)
    results = await asyncio.gather(*(remind_warranties_tick(db, settings) for _ in range(3)),
                                   return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert sorted(results) == [0, 0, 1]  # type: ignore[type-var]
    assert len(await _reminders(db)) == 1


async def test_staff_verify_or_reject_a_registration_and_the_customer_is_told(db: Database) -> None:
    """verify_warranty had no caller: registrations stayed "pending" for ever."""
    load_all_templates()
    async with db.session() as session:
        await make_catalogue(session)
        customer = await make_linked_customer(session, 31, locale="en")
        product = await session.get(Product, "ESP-1")
        assert product is not None
        bought = utcnow().date() - timedelta(days=30)
        good = await warranty.register_warranty(session, customer, product, bought, "SN31", "file31")
        bad = await warranty.register_warranty(session, customer, product, bought, "SN32", "file32")
        await session.flush()
        assert [r.id for r in await warranty.pending_registrations(session)] == [good.id, bad.id]

        verified = await warranty.verify_warranty(session, settings, good.id or 0, staff="anna", valid=True)
        rejected = await warranty.verify_warranty(session, settings, bad.id or 0, staff="anna", valid=False,
                                                  note="The receipt is from another shop.")
        assert (verified.status, verified.verified_by) == ("verified", "anna")
        assert rejected.status == "rejected" and rejected.verified_at is not None
        assert await warranty.pending_registrations(session) == []
        with pytest.raises(LookupError):  # decided once
            await warranty.verify_warranty(session, settings, good.id or 0, staff="bob", valid=False)
        told = (await session.exec(select(OutboxMessage).where(
            OutboxMessage.template == "aftersales.warranty_checked").order_by(OutboxMessage.id))).all()
    texts = [render(get_translator(), "en", row.template, row.params).text for row in told]
    assert len(texts) == 2
    assert texts[0].startswith("✅ Your warranty for Barista One is confirmed: it runs until ")
    assert "We couldn't confirm the warranty for Barista One" in texts[1]
    assert "The receipt is from another shop." in texts[1]
