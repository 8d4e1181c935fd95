"""The journey engine on SQLite and PostgreSQL with a controlled clock: triggers, enrolments,
steps, exit goals, holdout, scans, context rules and the numbers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlmodel import select

from tests.factories import make_customer
from touchpoint.aftersales.models import Ticket
from touchpoint.catalog.models import Category, Product
from touchpoint.config import load_settings
from touchpoint.customers.models import BehaviourEvent, Customer
from touchpoint.customers.service import record_event
from touchpoint.db import Database
from touchpoint.i18n import get_translator
from touchpoint.journeys.campaign import send_campaign
from touchpoint.journeys.engine import (
    JourneyEngine,
    enrolments_allowing_send,
    preferred_send_time,
)
from touchpoint.journeys.models import Enrolment
from touchpoint.journeys.spec import JourneysFile, load_journeys
from touchpoint.journeys.stats import journey_stats
from touchpoint.messaging import SendResult
from touchpoint.messaging.models import OutboxMessage
from touchpoint.messaging.sender import OutboxSender, Pacing
from touchpoint.orders.models import Order, OrderItem

settings = load_settings(_env_file=None)
NOON = datetime(2026, 6, 2, 10, tzinfo=UTC)  # 12:00 in Berlin, a Tuesday


def engine_for(*keys: str, holdout: float | None = 0) -> JourneyEngine:
    """The shipped journeys (only those named), holdout off unless a test wants it."""
    journeys = [j for j in load_journeys().journeys if j.key in keys]
    if holdout is not None:
        journeys = [j.model_copy(update={"holdout": holdout}) for j in journeys]
    return JourneyEngine(settings, JourneysFile(journeys=journeys))


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


async def customer(db: Database, telegram_id: int = 1, **fields: Any) -> Customer:
    async with db.session() as session:
        return await make_customer(session, telegram_id, **fields)


async def event(db: Database, engine: JourneyEngine, who: Customer | None, kind: str, **payload: Any) -> None:
    """A behaviour event and its immediate evaluation, in one transaction (as the events API does)."""
    async with db.session() as session:
        recorded = record_event(session, kind, customer_id=who.id if who else None, payload=payload,
                                source="store")
        await engine.handle_event(session, recorded)


async def rows(db: Database, model: Any) -> list[Any]:
    async with db.session() as session:
        return list((await session.exec(select(model).order_by(model.id))).all())


async def test_abandoned_cart_nudges_after_an_hour_and_order_ends_it(db: Database, clock: Any) -> None:
    engine = engine_for("abandoned_cart")
    mia = await customer(db)
    await event(db, engine, mia, "cart.updated", cart_id="c1", total_minor=4990)
    await event(db, engine, mia, "cart.updated", cart_id="c1", total_minor=5990)  # same cart
    [enrolment] = await rows(db, Enrolment)
    assert (enrolment.status, enrolment.next_step_at) == ("active", NOON + timedelta(hours=1))
    assert await engine.run_due_steps(db) == 0
    clock.move_to(NOON + timedelta(hours=1))
    assert await engine.run_due_steps(db) == 1
    assert await engine.run_due_steps(db) == 0  # a step is taken once
    [message] = await rows(db, OutboxMessage)
    assert (message.template, message.lane, message.status) == (
        "journey.cart_reminder", "marketing", "pending")
    assert message.params["cart_url"] == "https://shop.example.com/cart"

    clock.move_to(NOON + timedelta(hours=3))
    await event(db, engine, mia, "order.created", order_number="A-1")
    [enrolment] = await rows(db, Enrolment)
    assert (enrolment.status, enrolment.exit_reason) == ("exited", "goal:order.created")
    assert enrolment.converted_at == NOON + timedelta(hours=3)
    clock.move_to(NOON + timedelta(days=2))
    assert await engine.run_due_steps(db) == 0  # the incentive step never comes


async def test_small_carts_and_non_consenting_customers_are_not_enrolled(db: Database, clock: Any) -> None:
    engine = engine_for("abandoned_cart")
    await event(db, engine, await customer(db, 1), "cart.updated", cart_id="c", total_minor=500)
    await event(db, engine, await customer(db, 2, marketing_consent=False), "cart.updated", cart_id="d",
                total_minor=9000)
    await event(db, engine, await customer(db, 3, nudges_paused=True), "cart.updated", cart_id="e",
                total_minor=9000)
    assert await rows(db, Enrolment) == []


async def test_exit_after_queueing_stops_the_waiting_message(db: Database, clock: Any) -> None:
    """A nudge delayed by quiet hours is dropped when the customer orders before it goes."""
    engine = engine_for("abandoned_cart")
    mia = await customer(db)
    clock.move_to(datetime(2026, 6, 2, 18, 30, tzinfo=UTC))  # 20:30 Berlin: the step falls at 21:30
    await event(db, engine, mia, "cart.updated", cart_id="c1", total_minor=4990)
    clock.move_to(datetime(2026, 6, 2, 19, 30, tzinfo=UTC))
    await engine.run_due_steps(db)
    [message] = await rows(db, OutboxMessage)
    assert (message.status, message.reason) == ("pending", "quiet_hours")  # delayed, not dropped
    assert message.due_at == datetime(2026, 6, 3, 7, tzinfo=UTC)  # 09:00 Berlin
    await event(db, engine, mia, "order.created", order_number="A-2")
    async with db.session() as session:
        assert message.enrolment_id not in await enrolments_allowing_send(session, [message.enrolment_id])


async def test_incentive_step_only_when_configured(db: Database, clock: Any) -> None:
    journey = next(j for j in load_journeys().journeys if j.key == "abandoned_cart")
    steps = [journey.steps[0], journey.steps[1].model_copy(update={"params": {"incentive": "SAVE10"}})]
    settings_ = load_settings(_env_file=None, marketing_per_day=5)
    engines = [
        JourneyEngine(settings_, JourneysFile(journeys=[journey.model_copy(update={"holdout": 0})])),
        JourneyEngine(settings_, JourneysFile(journeys=[
            journey.model_copy(update={"holdout": 0, "steps": steps})])),
    ]
    for n, engine in enumerate(engines):
        clock.move_to(NOON)
        await event(db, engine, await customer(db, 10 + n), "cart.updated", cart_id=f"c{n}", total_minor=4990)
        for hours in (1, 24):
            clock.move_to(NOON + timedelta(hours=hours))
            await engine.run_due_steps(db)
    by_customer: dict[int, list[str]] = {}
    for message in await rows(db, OutboxMessage):
        by_customer.setdefault(message.chat_id, []).append(message.template)
    assert by_customer == {10: ["journey.cart_reminder"],
                           11: ["journey.cart_reminder", "journey.cart_incentive"]}
    assert [e.status for e in await rows(db, Enrolment)] == ["completed", "completed"]


async def test_enrolment_is_unique_across_concurrent_evaluations(db: Database, clock: Any) -> None:
    """Two processes see the same event: one enrolment, one message."""
    engine = engine_for("back_in_stock")
    mia = await customer(db)
    async with db.session() as session:
        record_event(session, "product.watch", customer_id=mia.id, payload={"sku": "K-1"})
        stock = record_event(session, "stock.changed", payload={"sku": "K-1", "quantity": 3}, source="store")
    databases = [Database(db.url), Database(db.url)]

    async def evaluate(database: Database) -> None:
        async with database.session() as session:
            found = await session.get(BehaviourEvent, stock.id)
            assert found is not None
            await engine.handle_event(session, found)

    try:
        await asyncio.gather(*(evaluate(d) for d in databases))
    finally:
        for database in databases:
            await database.dispose()
    assert len(await rows(db, Enrolment)) == 1
    [message] = await rows(db, OutboxMessage)
    assert (message.template, message.lane, message.params["product_url"]) == (
        "journey.back_in_stock", "service", "https://shop.example.com/p/K-1")


async def test_holdout_gets_no_message_but_its_conversions_count(db: Database, clock: Any) -> None:
    engine = engine_for("abandoned_cart", holdout=50)
    journey = engine.journeys["abandoned_cart"]
    held = next(i for i in range(100, 200) if journey.held_out(i))
    treated = next(i for i in range(100, 200) if not journey.held_out(i))
    people = {}
    async with db.session() as session:
        for customer_id in (held, treated):
            people[customer_id] = await make_customer(session, customer_id, id=customer_id)
    for who in people.values():
        await event(db, engine, who, "cart.updated", cart_id=f"c{who.id}", total_minor=4990)
    clock.move_to(NOON + timedelta(hours=2))
    await engine.run_due_steps(db)
    for who in people.values():
        await event(db, engine, who, "order.created", order_number=f"A-{who.id}")
    enrolments = {e.customer_id: e for e in await rows(db, Enrolment)}
    assert enrolments[held].status == "held_out" and enrolments[held].converted_at is not None
    assert [m.chat_id for m in await rows(db, OutboxMessage)] == [treated]
    async with db.session() as session:
        [stats] = await journey_stats(session)
    assert (stats.enrolled, stats.held_out, stats.converted, stats.converted_holdout) == (1, 1, 1, 1)
    assert stats.uplift == 0.0


async def test_browse_abandonment_needs_three_views_and_no_cart(db: Database, clock: Any) -> None:
    engine = engine_for("browse_abandonment")
    browser, buyer = await customer(db, 1), await customer(db, 2)
    for n in range(3):
        clock.move_to(NOON + timedelta(minutes=n))
        await event(db, engine, browser, "product.viewed", sku="K-1")
        if n == 1:
            await event(db, engine, buyer, "cart.updated", cart_id="x", total_minor=100)
        await event(db, engine, buyer, "product.viewed", sku="K-1")
    [enrolment] = await rows(db, Enrolment)
    assert enrolment.customer_id == browser.id
    await event(db, engine, browser, "product.viewed", sku="K-1")  # a fourth view: same occurrence
    assert len(await rows(db, Enrolment)) == 1


async def test_one_tick_over_three_views_enrols_once(db: Database, clock: Any) -> None:
    """Events read together are judged in order: the third view sees the two before it."""
    engine = engine_for("browse_abandonment")
    browser = await customer(db, 1)
    async with db.session() as session:
        for n in range(4):
            clock.move_to(NOON - timedelta(minutes=10 - n))
            record_event(session, "product.viewed", customer_id=browser.id, payload={"sku": "K-1"})
    assert await engine.evaluate_new_events(db) == 1
    [enrolment] = await rows(db, Enrolment)
    assert (enrolment.customer_id, enrolment.context["sku"]) == (browser.id, "K-1")


async def test_browse_abandonment_judges_each_view_by_its_own_window(db: Database, clock: Any) -> None:
    """Busy customers: dozens of older views and carts, recorded earlier, count only within the
    two-day window before the view being judged."""
    engine = engine_for("browse_abandonment")
    browser, shopper = await customer(db, 1), await customer(db, 2)

    async def earlier(who: Customer, kind: str, ago: timedelta, **payload: Any) -> None:
        clock.move_to(NOON - ago)
        async with db.session() as session:  # recorded, not evaluated (as before this test)
            record_event(session, kind, customer_id=who.id, payload=payload, source="store")

    for n in range(30):  # long ago: outside every window
        await earlier(browser, "product.viewed", timedelta(days=3, minutes=n), sku="K-1")
        await earlier(shopper, "product.viewed", timedelta(days=3, minutes=n), sku="K-1")
    await earlier(browser, "cart.updated", timedelta(days=2, hours=1), cart_id="b")  # too old to count
    await earlier(shopper, "cart.updated", timedelta(days=1), cart_id="s")  # in the window: no nudge
    for who in (browser, shopper):
        await earlier(who, "product.viewed", timedelta(hours=30), sku="K-1")
        await earlier(who, "product.viewed", timedelta(hours=20), sku="K-1")
    clock.move_to(NOON)
    await event(db, engine, shopper, "product.viewed", sku="K-1")
    assert await rows(db, Enrolment) == []
    await event(db, engine, browser, "product.viewed", sku="K-2")  # another product: one view
    assert await rows(db, Enrolment) == []
    await event(db, engine, browser, "product.viewed", sku="K-1")  # third view within two days
    [enrolment] = await rows(db, Enrolment)
    assert (enrolment.customer_id, enrolment.context["sku"]) == (browser.id, "K-1")


async def test_no_marketing_during_an_open_complaint(db: Database, clock: Any) -> None:
    engine = engine_for("abandoned_cart")
    mia = await customer(db)
    async with db.session() as session:
        session.add(Ticket(number="C-1", customer_id=mia.id, kind="complaint", created_at=NOON,
                           updated_at=NOON))
    await event(db, engine, mia, "cart.updated", cart_id="c1", total_minor=4990)
    clock.move_to(NOON + timedelta(hours=1))
    await engine.run_due_steps(db)
    [message] = await rows(db, OutboxMessage)
    assert (message.status, message.reason) == ("skipped", "open_service_case")
    async with db.session() as session:
        [stats] = await journey_stats(session)
    assert stats.skipped == {"open_service_case": 1}


async def test_tick_reads_the_event_log_once_and_idempotently(db: Database, clock: Any) -> None:
    """Events recorded without the hook (e.g. by another process) are picked up by the tick."""
    engine = engine_for("post_delivery_checkin")
    mia = await customer(db, 1, store_customer_id="S-1")
    async with db.session() as session:
        record_event(session, "order.status_changed", store_customer_id="S-1",
                     payload={"order_number": "A-7", "status": "delivered"}, source="store")
        record_event(session, "order.status_changed", store_customer_id="S-1",
                     payload={"order_number": "A-8", "status": "shipped"}, source="store")
    assert await engine.evaluate_new_events(db) == 1
    assert await engine.evaluate_new_events(db) == 0  # re-read while settling: nothing new
    clock.move_to(NOON + timedelta(minutes=5))
    assert await engine.evaluate_new_events(db) == 0
    [enrolment] = await rows(db, Enrolment)
    assert (enrolment.customer_id, enrolment.next_step_at) == (mia.id, NOON + timedelta(days=2))
    clock.move_to(NOON + timedelta(days=2))
    await engine.run_due_steps(db)
    [message] = await rows(db, OutboxMessage)
    assert (message.template, message.lane, message.params["order_number"]) == (
        "journey.checkin", "service", "A-7")


async def test_win_back_and_replenishment_scans(db: Database, clock: Any) -> None:
    engine = engine_for("win_back", "replenishment")
    async with db.session() as session:
        quiet = await make_customer(session, 1, store_customer_id="S-1",
                                    last_seen_at=NOON - timedelta(days=61))
        await make_customer(session, 2, store_customer_id="S-2", last_seen_at=NOON - timedelta(days=10))
        await make_customer(session, 3, last_seen_at=NOON - timedelta(days=90))  # not linked
        session.add(Category(id="coffee", name={"en": "Coffee"}))
        session.add(Product(sku="BEANS", category_id="coffee", name={"en": "Beans", "ru": "Зёрна"},
                            description={}, specs={}, price_minor=1200, consumable_days=30,
                            updated_at=NOON))
        order = Order(number="A-1", store_customer_id="S-2", total_minor=2400, created_at=NOON,
                      updated_at=NOON, delivered_at=NOON - timedelta(days=26))
        session.add(order)
        await session.flush()
        session.add(OrderItem(order_id=order.id, sku="BEANS", name={"en": "Beans"}, quantity=2))
    assert await engine.run_scans(db) == 2
    assert await engine.run_scans(db) == 0  # once per silence, once per order
    by_journey = {e.journey_key: e for e in await rows(db, Enrolment)}
    assert by_journey["win_back"].customer_id == quiet.id
    messages = {m.template: m for m in await rows(db, OutboxMessage)}
    assert set(messages) == {"journey.winback", "journey.replenish"}
    assert messages["journey.replenish"].params["reorder_url"] == "https://shop.example.com/cart/BEANS:2"


async def test_send_time_follows_the_customers_usual_hour(db: Database, clock: Any) -> None:
    mia = await customer(db)
    async with db.session() as session:
        for day in range(1, 6):  # she chats around 19:00 Berlin (17:00 UTC)
            at = NOON - timedelta(days=day) + timedelta(hours=7, minutes=5)
            session.add(BehaviourEvent(customer_id=mia.id, type="chat.menu", source="bot", payload={},
                                       occurred_at=at))
        assert await preferred_send_time(session, mia, NOON, timedelta(hours=8)) == NOON + timedelta(hours=7)
        assert await preferred_send_time(session, mia, NOON, timedelta(hours=2)) == NOON  # outside window
        other = await make_customer(session, 2)
        assert await preferred_send_time(session, other, NOON, timedelta(hours=8)) == NOON


async def test_sender_renders_journey_messages_and_guards_exits(db: Database, clock: Any) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.sent: list[Any] = []

        async def send(self, message: Any) -> Any:
            self.sent.append(message)
            return SendResult(len(self.sent))

    engine = engine_for("abandoned_cart", "post_delivery_checkin")
    channel = Recorder()
    sender = OutboxSender(db, settings, channel, get_translator(), pacing=Pacing().scaled(1000),
                          enrolment_guard=enrolments_allowing_send)
    mia, oleg = await customer(db, 1, locale="ru"), await customer(db, 2)
    await event(db, engine, mia, "cart.updated", cart_id="c1", total_minor=4990)
    await event(db, engine, oleg, "cart.updated", cart_id="c2", total_minor=4990)
    clock.move_to(NOON + timedelta(hours=1))
    await engine.run_due_steps(db)
    await event(db, engine, oleg, "order.created", order_number="A-9")  # before the sender ran
    assert await sender.drain_once() == 2
    [message] = channel.sent
    t = get_translator()
    assert message.chat_id == 1 and message.text == t("ru", "journey.cart.reminder", name="Test")
    labels = [b.text for row in message.buttons for b in row]
    assert labels[-1] == t("ru", "journey.button.unsubscribe")
    statuses = {m.chat_id: (m.status, m.reason) for m in await rows(db, OutboxMessage)}
    assert statuses[2] == ("skipped", "journey_exited")


async def test_campaign_goes_through_the_same_rules(db: Database, clock: Any) -> None:
    await customer(db, 1, locale="ru")
    await customer(db, 2, locale="en")
    await customer(db, 3, locale="ru", marketing_consent=False)
    counts = await send_campaign(db, settings, "journey.winback", "languages=ru", name="spring")
    assert counts == {"queued": 1, "skipped": 0, "not_in_segment": 2}
    again = await send_campaign(db, settings, "journey.winback", "languages=ru", name="spring")
    assert again == {"queued": 0, "skipped": 0, "not_in_segment": 2, "already": 1}
    [message] = await rows(db, OutboxMessage)
    assert (message.chat_id, message.journey_key) == (1, "campaign_spring")


async def test_two_processes_take_each_step_once(db: Database, clock: Any) -> None:
    engine = engine_for("post_delivery_checkin")
    for n in range(20):
        await event(db, engine, await customer(db, 100 + n), "order.status_changed",
                    order_number=f"A-{n}", status="delivered")
    clock.move_to(NOON + timedelta(days=2))
    databases = [Database(db.url), Database(db.url)]
    try:
        taken = await asyncio.gather(*(engine.run_due_steps(d, limit=7) for d in databases),
                                     *(engine.run_due_steps(d) for d in databases))
    finally:
        for database in databases:
            await database.dispose()
    messages = await rows(db, OutboxMessage)
    assert sum(taken) == 20 and len(messages) == 20
    assert len({m.chat_id for m in messages}) == 20


async def test_tick_applies_an_exit_to_an_enrolment_of_the_same_batch(db: Database, clock: Any) -> None:
    engine = engine_for("abandoned_cart")
    mia = await customer(db)
    async with db.session() as session:
        record_event(session, "cart.updated", customer_id=mia.id,
                     payload={"cart_id": "c", "total_minor": 4990})
        record_event(session, "order.created", customer_id=mia.id, payload={"order_number": "A-1"})
    assert await engine.evaluate_new_events(db) == 1
    [enrolment] = await rows(db, Enrolment)
    assert (enrolment.status, enrolment.converted_at) == ("exited", NOON)
