"""Handoff staff side through the sandbox: hours and follow-ups, commands, topics, the group limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from sqlmodel import select

from bot.handoff_desk import StaffDesk
from tests.chat_texts import help_text
from tests.e2e.harness import BotHarness, button_data, eventually
from tests.e2e.test_handoff_flow import ALWAYS_OPEN, GROUP, STAFF, conversations, topic_of, topic_text
from touchpoint.aftersales.models import Ticket
from touchpoint.clock import utcnow
from touchpoint.customers.models import Customer
from touchpoint.i18n import get_translator
from touchpoint.orders.models import Order, OrderItem
from touchpoint.sandbox import Sandbox

t = get_translator()
SATURDAY_NIGHT = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 03:00 in Berlin
MONDAY_MORNING = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)  # 09:30 in Berlin


async def started(sandbox: tuple[Sandbox, str], url: str, **overrides: Any) -> BotHarness:
    emulator, base_url = sandbox
    if GROUP not in emulator.chats:
        emulator.create_group(GROUP, "Support", admins=[STAFF], members=[9002])
    harness = BotHarness(emulator, base_url, url, staff_chat_id=GROUP, **overrides)
    await harness.start()
    return harness


@pytest.fixture
async def open_desk(sandbox: tuple[Sandbox, str], sqlite_url: str) -> AsyncIterator[BotHarness]:
    harness = await started(sandbox, sqlite_url, **ALWAYS_OPEN)
    yield harness
    await harness.close()


def desk_of(harness: BotHarness) -> StaffDesk:
    assert harness.dp is not None
    desk = harness.dp["handoff_desk"]
    assert isinstance(desk, StaffDesk)
    return desk


async def test_out_of_hours_is_told_honestly_and_announced_when_staff_are_back(
    sandbox: tuple[Sandbox, str], sqlite_url: str
) -> None:
    with time_machine.travel(SATURDAY_NIGHT, tick=True) as clock:
        harness = await started(sandbox, sqlite_url, handoff_reminder_minutes=10)
        try:
            harness.sandbox.user(801, first_name="Tom")
            reply = await harness.say(801, "/human")
            assert reply["text"] == t("en", "handoff.wait.closed", when="Mon 09:00")
            thread = topic_of(harness.sandbox, "Tom")
            await topic_text(harness.sandbox, thread, "Tom")
            desk = desk_of(harness)
            await desk.tick()  # still the weekend: nothing to say
            announce = t("en", "handoff.staff.announce")
            assert not [m for m in harness.sandbox.bot_messages(GROUP, thread) if m.get("text") == announce]

            clock.move_to(MONDAY_MORNING)
            await desk.tick()
            await topic_text(harness.sandbox, thread, announce)
            clock.move_to(datetime(2026, 11, 30, 8, 45, tzinfo=UTC))
            await desk.tick()
            await topic_text(harness.sandbox, thread, t("en", "handoff.staff.reminder", minutes=15))
            await desk.tick()  # one reminder, not one per tick
            await desk.drain()
            reminders = [
                m for m in harness.sandbox.bot_messages(GROUP, thread) if "⏰" in (m.get("text") or "")
            ]
            assert len(reminders) == 1
        finally:
            await harness.close()


async def test_canned_reply_in_customer_language_and_order_lookup(open_desk: BotHarness) -> None:
    sandbox = open_desk.sandbox
    async with open_desk.db.session() as session:
        now = utcnow()
        order = Order(
            number="10042",
            status="shipped",
            total_minor=4599,
            currency="EUR",
            tracking_number="TRK1",
            created_at=now,
            updated_at=now,
        )
        session.add(order)
        await session.flush()
        session.add(OrderItem(order_id=order.id, sku="K1", name={"en": "Kettle"}, quantity=1))
    sandbox.user(901, first_name="Olga", language_code="ru")
    await open_desk.say(901, "/human")
    thread = topic_of(sandbox, "Olga")
    sandbox.staff_post(GROUP, STAFF, "/t hello", message_thread_id=thread)
    hello = await sandbox.wait_for_bot_message(
        901, predicate=lambda m: m.get("text") == t("ru", "handoff.canned.hello")
    )
    assert hello
    sandbox.staff_post(GROUP, STAFF, "/t nosuch", message_thread_id=thread)
    await topic_text(sandbox, thread, t("en", "handoff.staff.canned_unknown", names="hello, thanks, wait"))
    sandbox.staff_post(GROUP, STAFF, "/order 10042", message_thread_id=thread)
    shown = await topic_text(sandbox, thread, "10042")
    assert "€45.99" in shown["text"] and "Kettle" in shown["text"] and "TRK1" in shown["text"]
    sandbox.staff_post(GROUP, STAFF, "/ticket return Kettle leaks", message_thread_id=thread)
    await topic_text(sandbox, thread, t("en", "handoff.staff.ticket_created", number="R-000001"))

    async def ticket_saved() -> bool:
        async with open_desk.db.session() as session:
            tickets = (await session.exec(select(Ticket))).all()
        return [(t.kind, t.details, t.number) for t in tickets] == [("return", "Kettle leaks", "R-000001")]

    await eventually(ticket_saved)
    # Commands are for staff: none of them reached the customer as text.
    assert [m.get("text") for m in sandbox.bot_messages(901)][-1] == t("ru", "handoff.canned.hello")


async def test_topic_is_reused_and_recreated_when_deleted(open_desk: BotHarness) -> None:
    sandbox = open_desk.sandbox
    bot = open_desk.bot
    assert bot is not None
    sandbox.user(1001, first_name="Kai")
    await open_desk.say(1001, "/human")
    first = topic_of(sandbox, "Kai")
    sandbox.staff_post(GROUP, STAFF, "/close", message_thread_id=first)
    await sandbox.wait_for_bot_message(1001, predicate=lambda m: m.get("text") == t("en", "handoff.csat.ask"))
    await eventually(lambda: _all_closed(open_desk))

    await open_desk.say(1001, "/human")
    await eventually(lambda: _topics_known(open_desk, 2))
    assert topic_of(sandbox, "Kai") == first  # reopened, not a second topic
    assert not sandbox.topics(GROUP)[0]["is_closed"]
    sandbox.staff_post(GROUP, STAFF, "/close", message_thread_id=first)
    await eventually(lambda: _all_closed(open_desk))

    await bot.delete_forum_topic(GROUP, first)
    await open_desk.say(1001, "/human")
    await eventually(lambda: _topics_known(open_desk, 3))
    second = topic_of(sandbox, "Kai")
    assert second != first
    await topic_text(sandbox, second, "Kai")


async def test_topic_deleted_mid_conversation_is_recreated_without_losing_messages(
    open_desk: BotHarness,
) -> None:
    sandbox = open_desk.sandbox
    assert open_desk.bot is not None
    sandbox.user(1051, first_name="Noa")
    await open_desk.say(1051, "/human")
    first = topic_of(sandbox, "Noa")
    await topic_text(sandbox, first, "Noa")
    await open_desk.bot.delete_forum_topic(GROUP, first)
    sandbox.send_text(1051, "are you there?")
    relayed = await sandbox.wait_for_bot_message(GROUP, predicate=lambda m: m.get("text") == "are you there?")
    second = topic_of(sandbox, "Noa")
    assert second != first and relayed["message_thread_id"] == second
    texts = [m.get("text") or "" for m in sandbox.bot_messages(GROUP, second)]
    assert texts[0].startswith("🆘") and texts[-1] == "are you there?"


async def _all_closed(harness: BotHarness) -> bool:
    return all(c.status == "closed" for c in await conversations(harness))


async def _topics_known(harness: BotHarness, count: int) -> bool:
    found = await conversations(harness)
    return len(found) == count and all(c.topic_id is not None for c in found)


async def test_low_rating_escalates_again(open_desk: BotHarness) -> None:
    sandbox = open_desk.sandbox
    sandbox.user(1101, first_name="Ada")
    await open_desk.say(1101, "/human")
    thread = topic_of(sandbox, "Ada")
    sandbox.staff_post(GROUP, STAFF, "/close", message_thread_id=thread)
    ask = await sandbox.wait_for_bot_message(
        1101, predicate=lambda m: m.get("text") == t("en", "handoff.csat.ask")
    )
    sandbox.press_button(1101, ask["message_id"], button_data(ask, "⭐"))
    await sandbox.wait_for_bot_message(
        1101,
        predicate=lambda m: (m.get("text") or "").startswith(t("en", "handoff.wait.open", minutes=4)[:30]),
    )
    await eventually(lambda: _reasons(open_desk, ["command", "low_csat"]))


async def _reasons(harness: BotHarness, reasons: list[str]) -> bool:
    return sorted(c.reason for c in await conversations(harness)) == reasons


async def test_sixty_customers_at_once_stay_within_group_limit_in_order(
    sandbox: tuple[Sandbox, str], sqlite_url: str
) -> None:
    emulator, _ = sandbox
    emulator.set_group_limit(20, per_seconds=1.0)  # Telegram's 20/min, scaled down in time
    harness = await started(
        sandbox,
        sqlite_url,
        handoff_group_max_posts=20,
        handoff_group_window_s=1.0,
        flood_max_messages=50,
        **ALWAYS_OPEN,
    )
    try:
        customers = range(2001, 2061)
        for user_id in customers:
            emulator.user(user_id, first_name=f"C{user_id}")
        for user_id in customers:
            emulator.send_text(user_id, "/human")
        for user_id in customers:
            for n in range(1, 4):
                emulator.send_text(user_id, f"m{user_id}-{n}")
        for user_id in customers:
            emulator.send_photo(user_id, caption=f"p{user_id}")
        for user_id in customers:
            emulator.send_text(user_id, f"m{user_id}-4")

        def relayed() -> bool:
            return all(
                any(f"m{u}-4" in (m.get("text") or "") for m in emulator.bot_messages(GROUP))
                for u in customers
            )

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not relayed():
            assert loop.time() < deadline, "not every message reached the group"
            await asyncio.sleep(0.2)

        assert emulator.sends_to(GROUP, "429") == []
        for user_id in customers:
            thread = topic_of(emulator, f"C{user_id}")
            stream = [
                m.get("text") or f"[photo {m.get('caption')}]" for m in emulator.bot_messages(GROUP, thread)
            ]
            joined = "\n".join(stream)
            marks = [
                f"m{user_id}-1",
                f"m{user_id}-2",
                f"m{user_id}-3",
                f"[photo p{user_id}]",
                f"m{user_id}-4",
            ]
            positions = [joined.find(mark) for mark in marks]
            assert -1 not in positions and positions == sorted(positions), stream
            assert all(joined.count(mark) == 1 for mark in marks[1:]), stream
    finally:
        await harness.close()


async def test_start_up_check_names_what_is_wrong(sandbox: tuple[Sandbox, str], sqlite_url: str) -> None:
    emulator, _ = sandbox
    emulator.create_group(-1009, "Plain", is_forum=False, bot_is_admin=False)
    emulator.create_group(-1008, "No topics right", bot_can_manage_topics=False)
    harness = await started(sandbox, sqlite_url)
    try:
        desk = desk_of(harness)

        async def desk_started() -> bool:
            return desk.bot is not None

        await eventually(desk_started)
        assert await desk.check_group(GROUP) == []
        assert await desk.check_group(-1009) == [
            "topics are off; turn on Topics in the group settings",
            "the bot is not an administrator; promote it",
        ]
        assert await desk.check_group(-1008) == [
            "the bot may not manage topics; give it the 'Manage topics' right"
        ]
        assert (await desk.check_group(-1007))[0].startswith("the bot cannot see this chat")
    finally:
        await harness.close()


async def test_customer_without_staff_group_is_told_so(sandbox: tuple[Sandbox, str], sqlite_url: str) -> None:
    emulator, base_url = sandbox
    harness = BotHarness(emulator, base_url, sqlite_url)
    await harness.start()
    try:
        emulator.user(1201, first_name="Zoe")
        reply = await harness.say(1201, "/human")
        assert reply["text"] == t("en", "handoff.unavailable")
        reply = await harness.say(1201, "/help")
        assert reply["text"] == help_text("en")
        async with harness.db.session() as session:
            assert (await session.exec(select(Customer))).one().first_name == "Zoe"
    finally:
        await harness.close()
