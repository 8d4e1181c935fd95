"""Integration wiring through the sandbox: signed store events → journeys at once, the default journeys
triggered by what presale, after-sales and the events API really record."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.channel import TelegramChannel
from tests.aftersales_factories import make_catalogue, make_linked_customer, make_order
from tests.e2e.harness import BotHarness, button_texts, buttons, eventually
from touchpoint.aftersales import service as aftersales
from touchpoint.catalog.models import Stock
from touchpoint.customers.models import Customer
from touchpoint.events_api.app import create_events_app
from touchpoint.events_api.signing import signed_headers
from touchpoint.i18n import get_translator
from touchpoint.journeys import engine as journeys_engine
from touchpoint.journeys.engine import JourneyEngine, enrolments_allowing_send
from touchpoint.journeys.models import Enrolment
from touchpoint.journeys.spec import JourneysFile, load_journeys
from touchpoint.journeys.stats import journey_stats
from touchpoint.messaging.sender import OutboxSender, Pacing

t = get_translator()
SECRET = "wiring-secret"
NOON = datetime(2026, 6, 2, 10, tzinfo=UTC)  # 12:00 in Berlin


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(NOON, tick=True) as traveller:
        yield traveller


@pytest.fixture
def journeys(shop: BotHarness) -> Iterator[JourneyEngine]:
    """The process-wide engine the events API listener uses: the shipped journeys, no holdout."""
    engine = JourneyEngine(shop.settings, JourneysFile(
        journeys=[j.model_copy(update={"holdout": 0}) for j in load_journeys().journeys]))
    journeys_engine.configure(engine)
    yield engine
    journeys_engine.configure(None)


@pytest.fixture
async def store(shop: BotHarness) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_events_app(shop.settings, shop.db, secret=SECRET))) as client:
        yield client


def sender(harness: BotHarness) -> OutboxSender:
    assert harness.bot is not None
    return OutboxSender(harness.db, harness.settings, TelegramChannel(harness.bot), t,
                        pacing=Pacing().scaled(100), enrolment_guard=enrolments_allowing_send)


async def send_events(client: TestClient[Any, Any], *events: dict[str, Any]) -> None:
    body = json.dumps({"events": list(events)}).encode()
    response = await client.post("/api/v1/events", data=body,
                                 headers=signed_headers(SECRET, int(time.time()), body))
    assert response.status == 200, await response.text()


async def link(harness: BotHarness, telegram_id: int, store_customer_id: str) -> None:
    async with harness.db.session() as session:
        who = (await session.exec(select(Customer).where(Customer.telegram_id == telegram_id))).one()
        who.store_customer_id, who.marketing_consent = store_customer_id, True
        session.add(who)


async def enrolments(harness: BotHarness, journey: str) -> list[Enrolment]:
    async with harness.db.session() as session:
        return list((await session.exec(select(Enrolment).where(Enrolment.journey_key == journey))).all())


async def test_signed_cart_update_nudges_and_a_signed_order_converts(
    shop: BotHarness, journeys: JourneyEngine, store: TestClient[Any, Any], clock: Any
) -> None:
    outbox = sender(shop)
    shop.sandbox.user(1501, first_name="Anna", language_code="en")
    await shop.say(1501, "/start")
    await link(shop, 1501, "C-1001")
    await send_events(store, {"id": "cart-1", "type": "cart.updated", "data": {
        "customer_id": "C-1001", "items": [{"sku": "ESP-001", "quantity": 1, "unit_price_minor": 34900}],
        "cart_url": "https://shop.example.com/cart/c1001"}})
    # Enrolled by the events API hook, no tick needed.
    [enrolment] = await enrolments(shop, "abandoned_cart")
    assert enrolment.status == "active"

    assert await outbox.drain_once() == 0  # nothing before the hour is up
    clock.move_to(NOON + timedelta(hours=1, minutes=1))
    assert await journeys.run_due_steps(shop.db) == 1
    assert await outbox.drain_once() == 1
    nudge = await shop.sandbox.wait_for_bot_message(
        1501, predicate=lambda m: m.get("text") == t("en", "journey.cart.reminder", name="Anna"))
    assert button_texts(nudge) == [t("en", "journey.button.open_cart"), t("en", "journey.button.human"),
                                   t("en", "journey.button.unsubscribe")]
    assert buttons(nudge)[0]["url"] == "https://shop.example.com/cart/c1001"  # the store's own cart link

    await send_events(store, {"id": "order-1", "type": "order.created", "data": {
        "number": "BH-400001", "customer_id": "C-1001",
        "items": [{"sku": "ESP-001", "quantity": 1, "unit_price_minor": 34900}]}})
    async with shop.db.session() as session:
        [stats] = [s for s in await journey_stats(session) if s.journey == "abandoned_cart"]
        assert (stats.enrolled, stats.sent, stats.delivered, stats.converted) == (1, 1, 1, 1)

    reply = await shop.press(1501, nudge, t("en", "journey.button.human"))  # the buttons still work
    assert reply["text"] == t("en", "handoff.unavailable")  # handoff answers (no staff chat in tests)
    clock.move_to(NOON + timedelta(days=1, hours=2))
    assert await journeys.run_due_steps(shop.db) == 0  # converted: no second nudge


async def test_watch_in_chat_then_signed_restock_messages_at_once(
    shop: BotHarness, journeys: JourneyEngine, store: TestClient[Any, Any], clock: Any
) -> None:
    async with shop.db.session() as session:
        for row in (await session.exec(select(Stock).where(Stock.sku == "ESP-001"))).all():
            row.quantity = 0
            session.add(row)
    outbox = sender(shop)
    shop.sandbox.user(1502, language_code="en")
    menu = await shop.say(1502, "/start")
    cats = await shop.press(1502, menu, t("en", "menu.products"))
    listing = await shop.press(1502, cats, "Espresso machines & coffee makers")
    card = await shop.press(1502, listing, next(b for b in button_texts(listing) if b.startswith("Classico")))
    assert t("en", "presale.button.stock") not in button_texts(card)
    done = await shop.press(1502, card, t("en", "presale.button.watch"))
    assert done["text"] == t("en", "presale.watch.done")

    await send_events(store, {"id": "stock-1", "type": "stock.changed",
                              "data": {"store_id": "mitte", "sku": "ESP-001", "quantity": 4}})
    assert await outbox.drain_once() == 1  # queued by the hook: no tick, no wait
    back = await shop.sandbox.wait_for_bot_message(
        1502, after_message_id=done["message_id"], predicate=lambda m: "Classico" in (m.get("text") or ""))
    assert buttons(back)[0]["url"] == "https://shop.example.com/p/ESP-001"


async def test_chat_views_reservations_and_closed_tickets_trigger_their_journeys(
    shop: BotHarness, journeys: JourneyEngine, clock: Any
) -> None:
    shop.sandbox.user(1503, language_code="en")
    menu = await shop.say(1503, "/start")
    await link(shop, 1503, "C-1002")
    cats = await shop.press(1503, menu, t("en", "menu.products"))
    listing = await shop.press(1503, cats, "Espresso machines & coffee makers")
    classico = next(b for b in button_texts(listing) if b.startswith("Classico"))
    card = await shop.press(1503, listing, classico)
    for _ in range(2):  # three views of the same product in the chat
        listing = await shop.press(1503, card, t("en", "button.back"))
        card = await shop.press(1503, listing, classico)
    stock = await shop.press(1503, card, t("en", "presale.button.stock"))
    reserve = next(b for b in button_texts(stock) if "Mitte" in b)
    await shop.press(1503, stock, reserve)
    async with shop.db.session() as session:
        customer = (await session.exec(select(Customer).where(Customer.telegram_id == 1503))).one()
        ticket = await aftersales.create_ticket(session, shop.settings, customer,
                                                aftersales.NewTicket(kind="complaint"))
        await aftersales.set_status(session, shop.settings, ticket, "closed", staff="9")

    async def all_enrolled() -> bool:
        await journeys.evaluate_new_events(shop.db)  # chat events reach journeys through the tick
        keys = ("browse_abandonment", "reservation_expiring", "ticket_followup")
        return all([await enrolments(shop, key) for key in keys])

    await eventually(all_enrolled)
    [reservation] = await enrolments(shop, "reservation_expiring")
    hold = timedelta(hours=shop.settings.reservation_hold_hours)
    assert reservation.next_step_at is not None
    assert abs(reservation.next_step_at - (NOON + hold - timedelta(hours=2))) < timedelta(minutes=5)
    [followup] = await enrolments(shop, "ticket_followup")
    assert followup.context["ticket_number"] == ticket.number


async def test_order_detail_starts_a_return_for_that_order(harness: BotHarness) -> None:
    async with harness.db.session() as session:
        await make_catalogue(session)
        customer = await make_linked_customer(session, 1504, locale="en")
        await make_order(session, customer, "A-1504", delivered_days_ago=5)
        shipped = await make_order(session, customer, "A-1505", delivered_days_ago=None)
        shipped.status = "shipped"
        session.add(shipped)
    harness.sandbox.user(1504, language_code="en")
    menu = await harness.say(1504, "/start")
    listing = await harness.press(1504, menu, t("en", "menu.orders"))
    pending = await harness.press(1504, listing, next(b for b in button_texts(listing) if "A-1505" in b))
    assert t("en", "orders.button.aftersales") not in button_texts(pending)  # not received yet
    listing = await harness.press(1504, pending, t("en", "orders.button.list"))
    detail = await harness.press(1504, listing, next(b for b in button_texts(listing) if "A-1504" in b))
    items = await harness.press(1504, detail, t("en", "orders.button.aftersales"))
    assert items["text"] == t("en", "aftersales.items.choose", number="A-1504")
    assert "Barista One" in button_texts(items)


async def test_notifications_menu_opts_in_and_out_and_stop_still_pauses(harness: BotHarness) -> None:
    harness.sandbox.user(1506, language_code="ru")
    menu = await harness.say(1506, "/start")
    screen = await harness.press(1506, menu, t("ru", "menu.notifications"))
    assert t("ru", "notifications.offers.off") in screen["text"]
    screen = await harness.press(1506, screen, t("ru", "notifications.button.on"))
    assert t("ru", "notifications.offers.on") in screen["text"]
    assert t("ru", "notifications.button.off") in button_texts(screen)

    async def consent(expected: bool, paused: bool = False) -> bool:
        async with harness.db.session() as session:
            who = (await session.exec(select(Customer).where(Customer.telegram_id == 1506))).one()
            return who.marketing_consent is expected and who.nudges_paused is paused

    await eventually(lambda: consent(True))
    await harness.say(1506, "/stop")
    await eventually(lambda: consent(True, paused=True))
    screen = await harness.say(1506, "/settings")
    assert t("ru", "notifications.paused") in screen["text"]
    screen = await harness.press(1506, screen, t("ru", "notifications.button.resume"))
    assert t("ru", "notifications.paused") not in screen["text"]
    screen = await harness.press(1506, screen, t("ru", "notifications.button.off"))
    assert t("ru", "notifications.offers.off") in screen["text"]
    await eventually(lambda: consent(False))


async def test_linking_the_account_asks_for_offers(shop: BotHarness) -> None:
    shop.sandbox.user(1507, language_code="en")
    await shop.say(1507, "/start")
    after = shop.last_message_id(1507)
    shop.sandbox.share_contact(1507, "4915112345671")  # Anna, C-1001 in the demo data
    ask = await shop.sandbox.wait_for_bot_message(
        1507, after_message_id=after, predicate=lambda m: m.get("text") == t("en", "notifications.ask"))
    await shop.sandbox.wait_for_bot_message(  # the orders overview follows the question
        1507, after_message_id=ask["message_id"],
        predicate=lambda m: m.get("text") == t("en", "orders.list.title"))
    screen = await shop.press(1507, ask, t("en", "notifications.ask.yes"))
    assert t("en", "notifications.offers.on") in screen["text"]

    async def opted_in() -> bool:
        async with shop.db.session() as session:
            who = (await session.exec(select(Customer).where(Customer.telegram_id == 1507))).one()
            return who.marketing_consent

    await eventually(opted_in)
