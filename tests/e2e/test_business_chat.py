"""Telegram Business end to end: customers write to the brand's own account ("Brewhaus (business
account)") and the bot answers through the connection, under Telegram's rules (the sandbox enforces
them as Telegram does)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlmodel import select

from bot.channel import TelegramChannel
from tests.e2e.harness import BotHarness, button_data, button_texts, eventually
from tests.e2e.test_handoff_flow import ALWAYS_OPEN, GROUP, STAFF, topic_of, topic_text
from tests.e2e.test_handoff_staff import started
from touchpoint.business.models import BusinessChat, BusinessConnection
from touchpoint.channels.models import ProcessedUpdate
from touchpoint.customers.models import Customer
from touchpoint.handoff.models import TranscriptMessage
from touchpoint.i18n import get_translator
from touchpoint.messaging.models import OutboxMessage
from touchpoint.messaging.outbox import enqueue
from touchpoint.messaging.rules import Lane
from touchpoint.messaging.sender import OutboxSender, Pacing
from touchpoint.orders.models import Order
from touchpoint.orders.service import notify_status
from touchpoint.sandbox import Sandbox

t = get_translator()
OWNER = 777
NOON_BERLIN = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)  # outside quiet hours


def connect(harness: BotHarness) -> str:
    return harness.sandbox.connect_business(OWNER, "Brewhaus (business account)").id


async def business_say(harness: BotHarness, connection_id: str, user_id: int, text: str) -> dict:
    """The customer writes to the brand's account; returns the bot's answer there."""
    before = _last_id(harness.sandbox, connection_id, user_id)
    harness.sandbox.business_text(connection_id, user_id, text)
    reply = await harness.sandbox.wait_for_business_message(connection_id, user_id, after_message_id=before)
    await harness.settled()
    return reply


async def business_press(harness: BotHarness, connection_id: str, user_id: int, message: dict,
                         label: str) -> dict:
    """The customer taps an inline button in the business chat; returns the edited or next message."""
    pressed, edits = message["message_id"], message["_edits"]
    after = _last_id(harness.sandbox, connection_id, user_id)
    harness.sandbox.business_press(connection_id, user_id, pressed, button_data(message, label))
    reply = await harness.sandbox.wait_for_business_message(
        connection_id, user_id, after_message_id=min(pressed - 1, after),
        predicate=lambda m: m["_edits"] > edits if m["message_id"] == pressed else m["message_id"] > after)
    await harness.settled()
    return reply


async def handled(harness: BotHarness, update: dict | None) -> None:
    """The bot has handled (and committed) this update, answer or not."""
    assert update is not None

    async def done() -> bool:
        async with harness.db.session() as session:
            return await session.get(ProcessedUpdate, (update["update_id"], 123456789)) is not None

    await eventually(done)


async def age(harness: BotHarness, connection_id: str, user_id: int, *, hours: float) -> None:
    """The customer's last message to the brand's account is ``hours`` older, for Telegram (the
    sandbox) and for us alike."""
    harness.sandbox.age_business_chat(connection_id, user_id, hours * 3600)
    async with harness.db.session() as session:
        chat = (await session.exec(select(BusinessChat).where(BusinessChat.chat_id == user_id))).one()
        chat.last_incoming_at = datetime.now(UTC) - timedelta(hours=hours)
        await session.commit()


def _last_id(sandbox: Sandbox, connection_id: str, user_id: int) -> int:
    return max((m["message_id"] for m in sandbox.business_messages(connection_id, user_id)), default=0)


def bot_lines(sandbox: Sandbox, connection_id: str, user_id: int) -> list[str]:
    return [m.get("text") or "" for m in sandbox.business_messages(connection_id, user_id) if m["_from_bot"]]


def sender_of(harness: BotHarness) -> OutboxSender:
    assert harness.bot is not None
    return OutboxSender(harness.db, harness.settings, TelegramChannel(harness.bot), t,
                        pacing=Pacing().scaled(100))


async def customer(harness: BotHarness, telegram_id: int) -> Customer:
    async with harness.db.session() as session:
        return (await session.exec(select(Customer).where(Customer.telegram_id == telegram_id))).one()


async def test_customer_is_answered_through_the_connection_in_their_language(shop: BotHarness) -> None:
    sandbox = shop.sandbox
    connection_id = connect(shop)
    sandbox.user(1501, first_name="Olga", language_code="ru")
    menu = await business_say(shop, connection_id, 1501, "/start")

    # The answer is in the business chat, from the brand's account, signed by the bot, in Russian.
    assert menu["business_connection_id"] == connection_id
    assert menu["from"]["id"] == OWNER and menu["sender_business_bot"]["is_bot"]
    assert t("ru", "menu.products") in button_texts(menu)
    assert sandbox.messages(1501) == []  # nothing in a chat with the bot itself
    async with shop.db.session() as session:
        [connection] = (await session.exec(select(BusinessConnection))).all()
    assert (connection.owner_user_id, connection.can_reply, connection.is_enabled) == (OWNER, True, True)

    # Inline buttons work in business messages: referrals, returns and the catalogue, in this chat.
    invite = await business_press(shop, connection_id, 1501, menu, t("ru", "menu.invite"))
    assert "ref_" in invite["text"]  # the customer's own invite link
    menu = await business_press(shop, connection_id, 1501, invite, t("ru", "button.menu"))
    assert menu["text"] == t("ru", "menu.title")
    returns = await business_press(shop, connection_id, 1501, menu, t("ru", "menu.returns"))
    assert t("ru", "aftersales.button.new") in button_texts(returns)
    menu = await business_press(shop, connection_id, 1501, returns, t("ru", "button.menu"))
    await business_press(shop, connection_id, 1501, menu, t("ru", "menu.products"))
    assert sandbox.messages(1501) == []
    # Loop guard: the bot's own messages came back as business updates and got no answer (nor
    # were they taken for the owner taking over: the customer is still answered).
    own = [u for u in sandbox.updates if (u.get("business_message") or {}).get("sender_business_bot")]
    assert own and len(bot_lines(sandbox, connection_id, 1501)) == len(own)
    again = await business_say(shop, connection_id, 1501, "/start")
    assert t("ru", "menu.products") in button_texts(again)


async def test_owner_takes_over_and_the_bot_resumes_later(shop: BotHarness) -> None:
    sandbox = shop.sandbox
    connection_id = connect(shop)
    sandbox.user(1502, first_name="Ben")
    await business_say(shop, connection_id, 1502, "/start")
    await handled(shop, sandbox.owner_text(connection_id, 1502, "Hi Ben, Sam from Brewhaus here!"))
    answered = len(bot_lines(sandbox, connection_id, 1502))

    await handled(shop, sandbox.business_text(connection_id, 1502, "Do you sell grinders?"))
    assert len(bot_lines(sandbox, connection_id, 1502)) == answered  # the human is talking: quiet
    async with shop.db.session() as session:
        lines = (await session.exec(select(TranscriptMessage.direction, TranscriptMessage.text)
                                    .order_by(TranscriptMessage.id))).all()
    assert ("staff", "Hi Ben, Sam from Brewhaus here!") in lines and ("in", "Do you sell grinders?") in lines

    later = datetime.now(UTC) + timedelta(minutes=shop.settings.business_owner_quiet_minutes + 1)
    with time_machine.travel(later, tick=True):
        reply = await business_say(shop, connection_id, 1502, "/start")
    assert t("en", "menu.products") in button_texts(reply)


async def test_proactive_update_skips_business_only_customer_and_reaches_a_bot_chat(shop: BotHarness) -> None:
    sandbox = shop.sandbox
    connection_id = connect(shop)
    sandbox.user(1503, first_name="Eva")  # writes to the brand's account only
    sandbox.user(1504, first_name="Leo")  # writes to the brand's account and has started the bot
    await business_say(shop, connection_id, 1503, "/start")
    await business_say(shop, connection_id, 1504, "/start")
    await shop.say(1504, "/start")
    with time_machine.travel(NOON_BERLIN, tick=True):
        await handled(shop, sandbox.business_text(connection_id, 1503, "thanks"))  # the 24 hours then
        await handled(shop, sandbox.business_text(connection_id, 1504, "thanks"))
        async with shop.db.session() as session:
            order = (await session.exec(select(Order).limit(1))).one()
            for telegram_id in (1503, 1504):
                person = await session.merge(await customer(shop, telegram_id))
                await notify_status(session, shop.settings, person, order, f"e-{telegram_id}")
            await session.commit()
        before = {chat: len(sandbox.bot_messages(chat)) for chat in (1503, 1504)}
        business_before = len(bot_lines(sandbox, connection_id, 1503))
        assert await sender_of(shop).drain_once() == 1
        card = await sandbox.wait_for_bot_message(
            1504, predicate=lambda m: order.number in (m.get("text") or ""))
        assert "business_connection_id" not in card  # the bot's own chat, not the brand's account
    assert len(sandbox.bot_messages(1503)) == before[1503] == 0
    assert len(bot_lines(sandbox, connection_id, 1503)) == business_before  # never started cold
    async with shop.db.session() as session:
        outbox = (await session.exec(select(OutboxMessage))).all()
    rows = {(row.chat_id, row.status, row.reason) for row in outbox}
    assert (1503, "skipped", "business_only") in rows and (1504, "sent", None) in rows


async def test_disconnection_stops_replies_at_once(shop: BotHarness) -> None:
    sandbox = shop.sandbox
    connection_id = connect(shop)
    sandbox.user(1505, first_name="Kai")
    menu = await business_say(shop, connection_id, 1505, "/start")
    await handled(shop, sandbox.disconnect_business(connection_id))
    async with shop.db.session() as session:
        assert (await session.get(BusinessConnection, connection_id)).is_enabled is False  # type: ignore[union-attr]

    # A button pressed on an earlier message: the spinner stops, nothing is said.
    answered = len(sandbox.callback_answers)
    products = button_data(menu, t("en", "menu.products"))
    sandbox.business_press(connection_id, 1505, menu["message_id"], products)
    await eventually(lambda: _async(len(sandbox.callback_answers) > answered))
    await shop.settled()
    # A staff answer queued for the customer is skipped, never sent through a closed connection.
    async with shop.db.session() as session:
        row = await enqueue(session, shop.settings, await session.merge(await customer(shop, 1505)),
                            "handoff.staff_reply", {"author": "Sam", "text": "Still there?"},
                            lane=Lane.TRANSACTIONAL, wait_for_quiet_hours=False)
        await session.commit()
        assert (row.status, row.reason) == ("skipped", "business_chat_closed")
    assert bot_lines(sandbox, connection_id, 1505) == [menu["text"]]


async def test_outside_the_24_hours_nothing_is_sent(shop: BotHarness) -> None:
    sandbox = shop.sandbox
    connection_id = connect(shop)
    sandbox.user(1506, first_name="Noa")
    await business_say(shop, connection_id, 1506, "/start")
    person = await customer(shop, 1506)

    async def staff_reply(text: str) -> OutboxMessage:
        async with shop.db.session() as session:
            row = await enqueue(session, shop.settings, await session.merge(person), "handoff.staff_reply",
                                {"author": "Sam", "text": text}, lane=Lane.TRANSACTIONAL,
                                wait_for_quiet_hours=False)
            await session.commit()
            return row

    # Within the 24 hours a staff answer goes through the connection...
    assert (await staff_reply("Here to help")).status == "pending"
    assert await sender_of(shop).drain_once() == 1
    await sandbox.wait_for_business_message(
        connection_id, 1506, predicate=lambda m: "Here to help" in m["text"])

    # ...a day later it is skipped with its reason, and the bot does not even ask Telegram.
    sends = len(sandbox.send_log)
    await age(shop, connection_id, 1506, hours=25)
    late = await staff_reply("Are you still there?")
    assert (late.status, late.reason) == ("skipped", "business_chat_closed")
    assert await sender_of(shop).drain_once() == 0
    assert len(sandbox.send_log) == sends
    assert not [line for line in bot_lines(sandbox, connection_id, 1506) if "still there" in line]


async def test_staff_answer_from_the_topic_goes_through_the_connection(
    sandbox: tuple[Sandbox, str], sqlite_url: str
) -> None:
    harness = await started(sandbox, sqlite_url, **ALWAYS_OPEN)
    try:
        emulator = harness.sandbox
        connection_id = connect(harness)
        emulator.user(1507, first_name="Ida")
        await business_say(harness, connection_id, 1507, "/human")
        thread = topic_of(emulator, "Ida")
        emulator.business_text(connection_id, 1507, "my grinder is broken")
        await topic_text(emulator, thread, "my grinder is broken")

        emulator.staff_post(GROUP, STAFF, "Sorry to hear! Sending a new one.", message_thread_id=thread)
        answer = await emulator.wait_for_business_message(
            connection_id, 1507, predicate=lambda m: "Sending a new one" in (m.get("text") or ""))
        assert answer["from"]["id"] == OWNER  # the customer sees the brand's account answering
        assert emulator.messages(1507) == []

        # A day later the chat is closed: staff are told why, in words, and nothing is sent.
        await age(harness, connection_id, 1507, hours=25)
        sends = len(emulator.send_log)
        emulator.staff_post(GROUP, STAFF, "Did it arrive?", message_thread_id=thread)
        await topic_text(emulator, thread, t("en", "business.staff.business_window_closed"))
        assert [r for r in emulator.send_log[sends:] if r.chat_id == 1507] == []
    finally:
        await harness.close()


async def _async(value: bool) -> bool:
    return value


async def test_the_outbox_reaches_a_business_only_customer_through_one_look_up_per_batch(
    shop: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A staff answer queued in the outbox goes through the connection (or, once the chat closed, is
    refused without asking Telegram), routed by the sender's batch look-up, not one per send."""
    sandbox = shop.sandbox
    connection_id = connect(shop)
    sandbox.user(1508, first_name="Ola")
    await business_say(shop, connection_id, 1508, "/start")

    async def no_look_up_per_send(*args: object, **kwargs: object) -> None:
        raise AssertionError("the route of an outbox send is looked up per batch")

    monkeypatch.setattr("bot.business.business.route_for", no_look_up_per_send)

    async def queue_answer(text: str) -> None:
        async with shop.db.session() as session:
            person = await session.merge(await customer(shop, 1508))
            await enqueue(session, shop.settings, person, "handoff.staff_reply",
                          {"author": "Mia", "text": text}, lane=Lane.REPLY)
            await session.commit()

    await queue_answer("Your parcel left today")
    assert await sender_of(shop).drain_once() == 1
    await sandbox.wait_for_business_message(
        connection_id, 1508, predicate=lambda m: "Your parcel left today" in (m.get("text") or ""))
    assert sandbox.bot_messages(1508) == []

    await age(shop, connection_id, 1508, hours=25)  # the 24 hours are over: the chat is closed
    sends = len(sandbox.send_log)
    await queue_answer("Did it arrive?")
    await sender_of(shop).drain_once()
    assert [r for r in sandbox.send_log[sends:] if r.chat_id == 1508] == []
    async with shop.db.session() as session:
        last = (await session.exec(select(OutboxMessage).order_by(OutboxMessage.id.desc()))).first()  # type: ignore[union-attr]
    assert last is not None and last.status == "failed" and "business chat closed" in (last.reason or "")
