"""Handoff through the sandbox: escalation, the staff topic and its card, the relay both ways."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlmodel import select

from tests.chat_texts import help_text
from tests.e2e.harness import BotHarness, button_data, eventually
from touchpoint.handoff.models import Conversation, TranscriptMessage
from touchpoint.i18n import get_translator
from touchpoint.sandbox import Sandbox

t = get_translator()
GROUP = -1001234567890
STAFF = 9001
OUTSIDER = 9666
ALWAYS_OPEN: dict[str, Any] = dict(
    handoff_hours_start=0, handoff_hours_end=24, handoff_work_days=list(range(7))
)


@pytest.fixture
async def desk(sandbox: tuple[Sandbox, str], sqlite_url: str) -> AsyncIterator[BotHarness]:
    emulator, base_url = sandbox
    emulator.create_group(GROUP, "Support", admins=[STAFF], members=[9002])
    harness = BotHarness(emulator, base_url, sqlite_url, staff_chat_id=GROUP, **ALWAYS_OPEN)
    await harness.start()
    yield harness
    await harness.close()


def topic_of(sandbox: Sandbox, name_part: str) -> int:
    topics = [topic for topic in sandbox.topics(GROUP) if name_part in topic["name"]]
    assert len(topics) == 1, sandbox.topics(GROUP)
    return int(topics[0]["message_thread_id"])


async def topic_text(sandbox: Sandbox, thread_id: int, needle: str) -> dict[str, Any]:
    return await sandbox.wait_for_bot_message(
        GROUP, thread_id=thread_id, predicate=lambda m: needle in (m.get("text") or "")
    )


async def conversations(harness: BotHarness) -> list[Conversation]:
    async with harness.db.session() as session:
        return list((await session.exec(select(Conversation))).all())


async def test_button_escalation_opens_topic_with_card_and_relays_both_ways(desk: BotHarness) -> None:
    sandbox = desk.sandbox
    sandbox.user(501, first_name="Mia", language_code="en")
    menu = await desk.say(501, "/start")
    await desk.say(501, "where is my parcel?")
    reply = await desk.press(501, menu, t("en", "menu.human"))
    assert reply["text"].startswith(t("en", "handoff.wait.open", minutes=4)[:40])

    thread = topic_of(sandbox, "Mia")
    card = await topic_text(sandbox, thread, "where is my parcel?")
    assert "Mia" in card["text"] and t("en", "handoff.reason.button") in card["text"]

    # Customer → staff: text and a photo, while the bot says nothing to the customer.
    before = len(sandbox.bot_messages(501))
    sandbox.send_text(501, "it was due on Monday")
    await topic_text(sandbox, thread, "it was due on Monday")
    sandbox.send_photo(501, caption="the box")
    await sandbox.wait_for_bot_message(GROUP, thread_id=thread, predicate=lambda m: "photo" in m)

    # Staff → customer; an internal note stays in the group.
    sandbox.staff_post(GROUP, STAFF, "# looks like a carrier delay", message_thread_id=thread)
    sandbox.staff_post(GROUP, STAFF, "Hi Mia, I'm checking with the carrier", message_thread_id=thread)
    answer = await sandbox.wait_for_bot_message(501, predicate=lambda m: "carrier" in (m.get("text") or ""))
    assert answer["text"] == "Hi Mia, I'm checking with the carrier"
    sandbox.staff_post_photo(GROUP, STAFF, caption="your label", message_thread_id=thread)
    await sandbox.wait_for_bot_message(501, predicate=lambda m: m.get("caption") == "your label")
    texts = [m.get("text") or m.get("caption") for m in sandbox.bot_messages(501)[before:]]
    assert texts == ["Hi Mia, I'm checking with the carrier", "your label"]

    async def recorded() -> bool:
        async with desk.db.session() as session:
            rows = (await session.exec(select(TranscriptMessage))).all()
        directions = {(row.direction, row.text) for row in rows}
        return ("note", "# looks like a carrier delay") in directions and (
            "staff",
            "Hi Mia, I'm checking with the carrier",
        ) in directions

    await eventually(recorded)
    [conversation] = await conversations(desk)
    assert conversation.first_response_at is not None

    # /close ends it and asks for a rating; a rating is stored and shown to staff.
    sandbox.staff_post(GROUP, STAFF, "/close", message_thread_id=thread)
    ask = await sandbox.wait_for_bot_message(
        501, predicate=lambda m: m.get("text") == t("en", "handoff.csat.ask")
    )
    sandbox.press_button(501, ask["message_id"], button_data(ask, "⭐⭐⭐⭐⭐"))
    await topic_text(sandbox, thread, t("en", "handoff.staff.csat", score=5))

    async def rated() -> bool:
        [conversation] = await conversations(desk)
        return (conversation.status, conversation.csat) == ("closed", 5)

    await eventually(rated)
    # After the handoff the bot answers by itself again.
    reply = await desk.say(501, "/help")
    assert reply["text"] == help_text("en", desk.settings)


@pytest.mark.parametrize(
    ("language_code", "text"), [("ru", "Это просто ужас, где мой заказ?"), ("zh", "我很生气，订单到底在哪里")]
)
async def test_angry_message_escalates(desk: BotHarness, language_code: str, text: str) -> None:
    desk.sandbox.user(601, first_name="Ivan", language_code=language_code)
    reply = await desk.say(601, text)
    assert reply["text"] == t(language_code, "handoff.wait.open", minutes=4)
    thread = topic_of(desk.sandbox, "Ivan")
    card = await topic_text(desk.sandbox, thread, text)
    assert t("en", "handoff.reason.distress") in card["text"]
    [conversation] = await conversations(desk)
    assert conversation.reason == "distress"


async def test_person_offered_after_two_faq_misses_is_escalated_as_faq_miss(desk: BotHarness) -> None:
    desk.sandbox.user(651, first_name="Noor", language_code="en")
    first = await desk.say(651, "tell me a joke")
    assert first["text"] == t("en", "presale.answer.none")
    second = await desk.say(651, "what's the weather tomorrow")
    assert second["text"] == t("en", "presale.answer.two_misses")
    reply = await desk.press(651, second, t("en", "presale.button.human"))
    assert reply["text"] == t("en", "handoff.wait.open", minutes=4)
    card = await topic_text(desk.sandbox, topic_of(desk.sandbox, "Noor"), "what's the weather tomorrow")
    assert t("en", "handoff.reason.faq_miss") in card["text"]
    [conversation] = await conversations(desk)
    assert conversation.reason == "faq_miss"


async def test_outsider_cannot_act_in_staff_group(desk: BotHarness) -> None:
    sandbox = desk.sandbox
    sandbox.user(701, first_name="Lea")
    await desk.say(701, "/human")
    thread = topic_of(sandbox, "Lea")
    card = await topic_text(sandbox, thread, "Lea")
    sandbox.user(OUTSIDER, first_name="Eve")
    sandbox.press_button(
        OUTSIDER, card["message_id"], button_data(card, t("en", "handoff.button.claim")), chat_id=GROUP
    )
    sandbox.press_button(
        9002, card["message_id"], button_data(card, t("en", "handoff.button.claim")), chat_id=GROUP
    )
    await topic_text(sandbox, thread, t("en", "handoff.staff.claimed", name="Staff 9002"))

    async def claimed() -> bool:
        [conversation] = await conversations(desk)
        return conversation.assigned_staff_id == 9002

    await eventually(claimed)
    # Someone who left the group (their message was sent while they still were in it) is ignored.
    await desk.stop()
    sandbox.staff_post(GROUP, 9002, "psst, a secret offer", message_thread_id=thread)
    sandbox.chats[GROUP].members.remove(9002)
    await desk.start()
    sandbox.staff_post(GROUP, STAFF, "Hello from the team", message_thread_id=thread)
    await sandbox.wait_for_bot_message(701, predicate=lambda m: m.get("text") == "Hello from the team")
    assert "psst, a secret offer" not in [m.get("text") for m in sandbox.bot_messages(701)]
    claims = [
        m
        for m in sandbox.bot_messages(GROUP, thread)
        if "🙋" in (m.get("text") or "") and m["message_id"] != card["message_id"]
    ]
    assert len(claims) == 1


async def test_a_burst_during_handoff_is_relayed_whole_not_flood_muted(desk: BotHarness) -> None:
    sandbox = desk.sandbox
    sandbox.user(551, first_name="Rex")
    await desk.say(551, "/human")
    thread = topic_of(sandbox, "Rex")
    for n in range(12):
        sandbox.send_text(551, f"line {n}")
    await topic_text(sandbox, thread, "line 11")
    joined = "\n".join(m.get("text") or "" for m in sandbox.bot_messages(GROUP, thread))
    positions = [joined.find(f"line {n}\n") if n < 11 else joined.find("line 11") for n in range(12)]
    assert -1 not in positions and positions == sorted(positions)
    assert t("en", "flood.slow_down") not in [m.get("text") for m in sandbox.bot_messages(551)]
