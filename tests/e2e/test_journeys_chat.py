"""Journeys as the customer sees them, through the sandbox with the real bot and sender."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlmodel import select

from bot.channel import TelegramChannel
from tests.e2e.harness import BotHarness, button_texts, buttons, eventually
from touchpoint.customers.models import Customer
from touchpoint.customers.service import record_event
from touchpoint.i18n import get_translator
from touchpoint.journeys.engine import JourneyEngine, enrolments_allowing_send
from touchpoint.journeys.models import Enrolment
from touchpoint.journeys.spec import JourneysFile, load_journeys
from touchpoint.journeys.stats import journey_stats
from touchpoint.messaging.models import Delivery
from touchpoint.messaging.sender import OutboxSender, Pacing

t = get_translator()
NOON = datetime(2026, 6, 2, 10, tzinfo=UTC)  # 12:00 in Berlin


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(NOON, tick=True) as traveller:
        yield traveller


def engine(harness: BotHarness) -> JourneyEngine:
    journeys = [j.model_copy(update={"holdout": 0}) for j in load_journeys().journeys]
    return JourneyEngine(harness.settings, JourneysFile(journeys=journeys))


def sender(harness: BotHarness) -> OutboxSender:
    assert harness.bot is not None
    return OutboxSender(harness.db, harness.settings, TelegramChannel(harness.bot), t,
                        pacing=Pacing().scaled(100), enrolment_guard=enrolments_allowing_send)


async def store_event(harness: BotHarness, journeys: JourneyEngine, telegram_id: int, kind: str,
                      **payload: Any) -> None:
    """What the events API does: record the event and evaluate it at once, in one transaction."""
    async with harness.db.session() as session:
        who = (await session.exec(select(Customer).where(Customer.telegram_id == telegram_id))).one()
        event = record_event(session, kind, customer_id=who.id, payload=payload, source="store")
        await journeys.handle_event(session, event)


async def opted_in(harness: BotHarness, telegram_id: int) -> None:
    async with harness.db.session() as session:
        who = (await session.exec(select(Customer).where(Customer.telegram_id == telegram_id))).one()
        who.marketing_consent = True
        session.add(who)


async def test_abandoned_cart_nudge_arrives_and_an_order_ends_the_journey(
    harness: BotHarness, clock: Any
) -> None:
    journeys, outbox = engine(harness), sender(harness)
    harness.sandbox.user(701, first_name="Mia", language_code="en")
    await harness.say(701, "/start")
    await opted_in(harness, 701)
    await store_event(harness, journeys, 701, "cart.updated", cart_id="c-1", total_minor=4990)

    await journeys.run_due_steps(harness.db)
    assert await outbox.drain_once() == 0  # nothing before the hour is up
    clock.move_to(NOON + timedelta(hours=1, minutes=1))
    assert await journeys.run_due_steps(harness.db) == 1
    assert await outbox.drain_once() == 1
    nudge = await harness.sandbox.wait_for_bot_message(
        701, predicate=lambda m: m.get("text") == t("en", "journey.cart.reminder", name="Mia"))
    assert button_texts(nudge) == [t("en", "journey.button.open_cart"), t("en", "journey.button.human"),
                                   t("en", "journey.button.unsubscribe")]
    assert buttons(nudge)[0]["url"] == "https://shop.example.com/cart"

    await store_event(harness, journeys, 701, "order.created", order_number="A-100")

    async def converted() -> bool:
        async with harness.db.session() as session:
            [stats] = await journey_stats(session)
            return (stats.enrolled, stats.sent, stats.delivered, stats.converted) == (1, 1, 1, 1)

    await eventually(converted)
    clock.move_to(NOON + timedelta(days=1, hours=2))
    assert await journeys.run_due_steps(harness.db) == 0  # ended: no second nudge


async def test_unsubscribe_button_stops_marketing_and_counts_the_click(
    harness: BotHarness, clock: Any
) -> None:
    journeys, outbox = engine(harness), sender(harness)
    harness.sandbox.user(702, first_name="Oleg", language_code="ru")
    await harness.say(702, "/start")
    await opted_in(harness, 702)
    await store_event(harness, journeys, 702, "cart.updated", cart_id="c-2", total_minor=4990)
    clock.move_to(NOON + timedelta(hours=1, minutes=1))
    await journeys.run_due_steps(harness.db)
    await outbox.drain_once()
    nudge = await harness.sandbox.wait_for_bot_message(
        702, predicate=lambda m: m.get("text") == t("ru", "journey.cart.reminder", name="Oleg"))
    reply = await harness.press(702, nudge, t("ru", "journey.button.unsubscribe"))
    assert reply["text"] == t("ru", "journey.unsubscribed")

    async def unsubscribed_and_clicked() -> bool:
        async with harness.db.session() as session:
            who = (await session.exec(select(Customer).where(Customer.telegram_id == 702))).one()
            delivery = (await session.exec(select(Delivery))).one()
            return not who.marketing_consent and delivery.clicked_at is not None

    await eventually(unsubscribed_and_clicked)


async def test_post_delivery_check_in_happy_and_unhappy(harness: BotHarness, clock: Any) -> None:
    journeys, outbox = engine(harness), sender(harness)
    for user in (703, 704):
        harness.sandbox.user(user, first_name="Ana", language_code="en")
        await harness.say(user, "/start")
        await store_event(harness, journeys, user, "order.status_changed", order_number=f"A-{user}",
                          status="delivered")
    clock.move_to(NOON + timedelta(days=2, minutes=1))
    assert await journeys.run_due_steps(harness.db) == 2  # service: no marketing consent needed
    await outbox.drain_once()
    happy = await harness.sandbox.wait_for_bot_message(
        703, predicate=lambda m: m.get("text") == t("en", "journey.checkin.question", order="A-703"))
    reply = await harness.press(703, happy, t("en", "journey.button.happy"))
    assert reply["text"] == t("en", "journey.happy.reply")
    assert button_texts(reply) == [t("en", "journey.button.review"), t("en", "journey.button.invite")]
    sad = await harness.sandbox.wait_for_bot_message(
        704, predicate=lambda m: m.get("text") == t("en", "journey.checkin.question", order="A-704"))
    reply = await harness.press(704, sad, t("en", "journey.button.sad"))
    assert reply["text"] == t("en", "journey.sad.reply")
    assert [b["callback_data"] for b in buttons(reply)] == ["m:returns", "m:human"]

    async def answered() -> bool:
        async with harness.db.session() as session:
            enrolments = (await session.exec(select(Enrolment))).all()
            return all(e.exit_reason == "goal:journey.checkin_answered" for e in enrolments)

    await eventually(answered)


async def test_stop_silences_a_queued_nudge(harness: BotHarness, clock: Any) -> None:
    journeys, outbox = engine(harness), sender(harness)
    harness.sandbox.user(705, first_name="Li", language_code="zh")
    await harness.say(705, "/start")
    await opted_in(harness, 705)
    await store_event(harness, journeys, 705, "cart.updated", cart_id="c-5", total_minor=4990)
    clock.move_to(NOON + timedelta(hours=1, minutes=1))
    await journeys.run_due_steps(harness.db)  # queued …
    reply = await harness.say(705, "/stop")  # … then the customer says stop
    assert reply["text"] == t("zh", "stop.done")

    async def paused() -> bool:
        async with harness.db.session() as session:
            who = (await session.exec(select(Customer).where(Customer.telegram_id == 705))).one()
            return who.nudges_paused

    await eventually(paused)
    await outbox.drain_once()
    async with harness.db.session() as session:
        [stats] = await journey_stats(session)
    assert (stats.sent, stats.skipped) == (0, {"opted_out": 1})
    assert [m["text"] for m in harness.sandbox.bot_messages(705)][-1] == t("zh", "stop.done")
