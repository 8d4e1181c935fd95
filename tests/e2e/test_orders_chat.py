"""Orders as a customer sees them: linking, my orders, detail, guest look-up, live order card."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from tests.e2e.harness import BotHarness, button_texts, eventually
from touchpoint.channels.flood import MemoryFloodGate
from touchpoint.clock import utcnow
from touchpoint.customers.models import Customer
from touchpoint.events_api.app import create_events_app
from touchpoint.events_api.signing import signed_headers
from touchpoint.i18n import get_translator
from touchpoint.messaging.models import OutboxMessage
from touchpoint.messaging.sender import OutboxSender, Pacing
from touchpoint.orders.models import LinkToken
from touchpoint.orders.service import issue_link_token
from touchpoint.seed.demo import seed_demo

t = get_translator()
ANNA_PHONE = "4915112345671"  # C-1001 in the demo data; Telegram sends contacts without "+"
SECRET = "e2e-secret"


@pytest.fixture
async def shop(harness: BotHarness) -> BotHarness:
    await seed_demo(harness.db)
    return harness


async def linked_id(harness: BotHarness, telegram_id: int) -> str | None:
    """The customer's linked shop account, once the updates fed so far are committed (the bot
    replies before its commit, so a read right after the reply could miss the row)."""
    await harness.settled()
    async with harness.db.session() as session:
        found = (await session.exec(select(Customer).where(Customer.telegram_id == telegram_id))).one()
    return found.store_customer_id


async def open_orders(harness: BotHarness, user_id: int) -> dict[str, Any]:
    menu = await harness.say(user_id, "/start")
    return await harness.press(user_id, menu, t("en", "menu.orders"))


async def test_share_own_contact_links_and_lists_orders(shop: BotHarness) -> None:
    shop.sandbox.user(1101, first_name="Anna", language_code="en")
    prompt = await open_orders(shop, 1101)
    assert prompt["text"] == t("en", "orders.link.prompt")
    ask = await shop.press(1101, prompt, t("en", "orders.button.link"))
    assert ask["text"] == t("en", "orders.link.share")
    assert shop.sandbox.reply_keyboard(1101) is not None

    after = shop.last_message_id(1101)
    shop.sandbox.share_contact(1101, ANNA_PHONE)
    listing = await shop.sandbox.wait_for_bot_message(
        1101, after_message_id=after, predicate=lambda m: m.get("text") == t("en", "orders.list.title"))
    done = [m["text"] for m in shop.sandbox.bot_messages(1101) if m["message_id"] > after]
    assert done[0] == t("en", "orders.link.done")
    labels = button_texts(listing)
    assert [label.split(" · ")[:2] for label in labels[:2]] == [["BH-100231", "Shipped"],
                                                                 ["BH-100198", "Delivered"]]
    assert t("en", "orders.button.unlink") in labels
    await eventually(lambda: _linked(shop, 1101, "C-1001"))

    detail = await shop.press(1101, listing, labels[1])
    assert detail["message_id"] == listing["message_id"]  # the list turns into the detail
    assert detail["text"].startswith("🧾 Order BH-100198 — Delivered")
    assert "Timeline" in detail["text"] and "Total:" in detail["text"]
    assert t("en", "orders.button.track") in button_texts(detail)


async def _linked(harness: BotHarness, telegram_id: int, expected: str | None) -> bool:
    return await linked_id(harness, telegram_id) == expected


async def test_someone_elses_contact_is_refused(shop: BotHarness) -> None:
    shop.sandbox.user(1102, language_code="ru")
    after = shop.last_message_id(1102)
    shop.sandbox.share_contact(1102, ANNA_PHONE, own=False)
    reply = await shop.sandbox.wait_for_bot_message(1102, after_message_id=after)
    assert reply["text"] == t("ru", "orders.link.not_own")
    assert await linked_id(shop, 1102) is None


async def test_unlink(shop: BotHarness) -> None:
    shop.sandbox.user(1103, language_code="en")
    await shop.say(1103, "/start")
    after = shop.last_message_id(1103)
    shop.sandbox.share_contact(1103, ANNA_PHONE)
    listing = await shop.sandbox.wait_for_bot_message(
        1103, after_message_id=after, predicate=lambda m: m.get("text") == t("en", "orders.list.title"))
    await shop.press(1103, listing, t("en", "orders.button.unlink"))
    await eventually(lambda: _linked(shop, 1103, None))


async def test_link_token_is_single_use_and_expires(shop: BotHarness) -> None:
    async with shop.db.session() as session:
        token, _ = await issue_link_token(session, shop.settings, "C-1002")
        expired, _ = await issue_link_token(session, shop.settings, "C-1003")
    async with shop.db.session() as session:
        query = select(LinkToken).where(LinkToken.store_customer_id == "C-1003")
        for row in (await session.exec(query)).all():
            row.expires_at = utcnow() - timedelta(minutes=1)
            session.add(row)

    shop.sandbox.user(1201, language_code="ru")
    reply = await shop.say(1201, f"/start link_{token}")
    assert reply["text"] == t("ru", "orders.link.done")
    await eventually(lambda: _linked(shop, 1201, "C-1002"))

    shop.sandbox.user(1202, language_code="en")
    refused = t("en", "orders.link.token_invalid")
    for spent in (token, expired):
        await shop.say(1202, f"/start link_{spent}", predicate=lambda m: m.get("text") == refused)
    assert await linked_id(shop, 1202) is None


async def test_guest_lookup_same_answer_and_lockout(shop: BotHarness) -> None:
    shop.flood_gate = MemoryFloodGate(max_messages=1000, window_s=1, mute_s=1)  # many quick steps
    await shop.restart()
    shop.sandbox.user(1301, language_code="en")

    async def attempt(number: str, proof: str) -> dict[str, Any]:
        ask = await shop.press(1301, await open_orders(shop, 1301), t("en", "orders.button.find"))
        assert ask["text"] == t("en", "orders.find.ask_number")
        assert (await shop.say(1301, number))["text"] == t("en", "orders.find.ask_proof")
        return await shop.say(1301, proof)

    ask = await shop.press(1301, await open_orders(shop, 1301), t("en", "orders.button.find"))
    assert (await shop.say(1301, "DROP TABLE"))["text"] == t("en", "orders.find.bad_number")
    cancelled = await shop.press(1301, ask, t("en", "orders.button.cancel"))
    assert cancelled["text"] == t("en", "menu.title")

    no_such = await attempt("BH-999999", "5671")
    wrong = await attempt("BH-100198", "0000")
    assert no_such["text"] == wrong["text"] == t("en", "orders.find.failed")
    assert button_texts(no_such) == button_texts(wrong)

    found = await attempt("bh-100198", "5671")
    assert found["text"].startswith("🧾 Order BH-100198")

    for _ in range(3):
        last = await attempt("BH-100198", "1234")
    assert last["text"] == t("en", "orders.find.locked")
    again = await shop.press(1301, await open_orders(shop, 1301), t("en", "orders.button.find"))
    assert again["text"] == t("en", "orders.find.locked")


@pytest.fixture
async def store(shop: BotHarness) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_events_app(shop.settings, shop.db, secret=SECRET)
    async with TestClient(TestServer(app)) as client:
        yield client


async def send_events(client: TestClient[Any, Any], *events: dict[str, Any]) -> None:
    body = json.dumps({"events": list(events)}).encode()
    response = await client.post("/api/v1/events", data=body,
                                 headers=signed_headers(SECRET, int(time.time()), body))
    assert response.status == 200, await response.text()


def status(event_id: str, value: str, **extra: Any) -> dict[str, Any]:
    return {"id": event_id, "type": "order.status_changed",
            "data": {"number": "BH-300001", "status": value, **extra}}


async def test_store_events_drive_the_live_order_card(shop: BotHarness, store: TestClient[Any, Any]) -> None:
    assert shop.bot is not None
    from bot.channel import TelegramChannel

    sender = OutboxSender(shop.db, shop.settings, TelegramChannel(shop.bot), t, pacing=Pacing().scaled(100))
    shop.sandbox.user(1401, language_code="en")
    await shop.say(1401, "/start")
    after = shop.last_message_id(1401)
    shop.sandbox.share_contact(1401, ANNA_PHONE)
    await shop.sandbox.wait_for_bot_message(
        1401, after_message_id=after, predicate=lambda m: m.get("text") == t("en", "orders.list.title"))
    await eventually(lambda: _linked(shop, 1401, "C-1001"))
    created = {"id": "o-1", "type": "order.created", "data": {
        "number": "BH-300001", "customer_id": "C-1001",
        "items": [{"sku": "ESP-001", "quantity": 1, "unit_price_minor": 19900}]}}

    night = datetime(2026, 6, 2, 1, 0, tzinfo=UTC)  # 03:00 in Berlin: quiet hours
    with time_machine.travel(night, tick=True) as clock:
        before = shop.last_message_id(1401)
        await send_events(store, created, status("o-2", "shipped", carrier="DHL", tracking_number="JJD01",
                                                 tracking_url="https://track.example/JJD01"))
        await sender.drain_once()
        assert shop.last_message_id(1401) == before  # nothing at 3 a.m.
        async with shop.db.session() as session:
            due = {row.due_at for row in (await session.exec(select(OutboxMessage))).all()}
        assert due == {datetime(2026, 6, 2, 7, 0, tzinfo=UTC)}  # 09:00 Berlin

        clock.move_to(datetime(2026, 6, 2, 7, 1, tzinfo=UTC))
        await sender.drain_once()
        card = await shop.sandbox.wait_for_bot_message(
            1401, after_message_id=before, predicate=lambda m: "BH-300001" in (m.get("text") or ""))
        assert t("en", "orders.card.msg.shipped") in card["text"]
        assert shop.last_message_id(1401) == card["message_id"]  # one card, not two messages
        assert button_texts(card) == [t("en", "orders.button.track"), t("en", "orders.button.details"),
                                      t("en", "orders.button.help")]

        await send_events(store, status("o-3", "out_for_delivery"))
        await sender.drain_once()
        alert = await shop.sandbox.wait_for_bot_message(1401, after_message_id=card["message_id"])
        assert t("en", "orders.card.msg.out_for_delivery") in alert["text"]  # new message, with sound

        await send_events(store, status("o-4", "delivered"))
        await sender.drain_once()
        edited = await shop.sandbox.wait_for_bot_message(
            1401, after_message_id=alert["message_id"] - 1,
            predicate=lambda m: t("en", "orders.card.msg.delivered") in (m.get("text") or ""))
        assert edited["message_id"] == alert["message_id"]  # the live card was edited in place

        detail = await shop.press(1401, edited, t("en", "orders.button.details"))
        assert detail["text"].startswith("🧾 Order BH-300001 — Delivered")
        assert detail["message_id"] > edited["message_id"]
