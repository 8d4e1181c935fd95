"""Hardening of the chat front, through the sandbox: hostile names, stale and forged buttons,
repeated taps, 429s on replies, closing lines staff can see, dead ends and flood limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlmodel import select

from bot.channel import TelegramChannel
from tests.aftersales_factories import make_catalogue, make_linked_customer, make_order
from tests.chat_texts import help_text
from tests.e2e.harness import BotHarness, button_data, button_texts, eventually
from touchpoint.channels.flood import MemoryFloodGate
from touchpoint.clock import utcnow
from touchpoint.handoff.models import Conversation
from touchpoint.i18n import get_translator
from touchpoint.messaging.models import OutboxMessage
from touchpoint.messaging.reply import REPLY_TEMPLATE
from touchpoint.messaging.sender import OutboxSender, Pacing
from touchpoint.referrals.models import ReferralCode
from touchpoint.sandbox import Sandbox
from touchpoint.seed.demo import seed_demo

t = get_translator()
GROUP = -1001234500001
STAFF = 9101
ALWAYS_OPEN: dict[str, Any] = dict(
    handoff_hours_start=0, handoff_hours_end=24, handoff_work_days=list(range(7))
)
HOSTILE = ["Anna <3", "<b>x</b>", '<a href="http://e.x">y</a>', "&amp;"]
MARKUP = {"bold", "italic", "text_link", "code", "pre", "underline", "strikethrough"}


@pytest.fixture
async def desk(sandbox: tuple[Sandbox, str], sqlite_url: str) -> AsyncIterator[BotHarness]:
    emulator, base_url = sandbox
    emulator.user(STAFF, first_name="<b>Boss</b> & co")
    emulator.create_group(GROUP, "Support", admins=[STAFF])
    harness = BotHarness(emulator, base_url, sqlite_url, staff_chat_id=GROUP, **ALWAYS_OPEN)
    await seed_demo(harness.db)
    harness.flood_gate = MemoryFloodGate(max_messages=1000, window_s=10, mute_s=1)
    await harness.start()
    yield harness
    await harness.close()


def no_markup(message: dict[str, Any]) -> bool:
    return not any(e["type"] in MARKUP for e in message.get("entities") or [])


async def press_data(
    harness: BotHarness, user_id: int, message_id: int, data: str, chat_id: int | None = None
) -> dict[str, Any]:
    """Press a button with any callback data; returns the bot's answerCallbackQuery."""
    update = harness.sandbox.press_button(user_id, message_id, data, chat_id=chat_id)
    query_id = update["callback_query"]["id"]
    found: list[dict[str, Any]] = []

    async def answered() -> bool:
        found[:] = [a for a in harness.sandbox.callback_answers if a["callback_query_id"] == query_id]
        return bool(found)

    await eventually(answered)
    await harness.settled()
    return found[0]


async def topic_texts(sandbox: Sandbox, thread: int) -> list[str]:
    return [m.get("text") or "" for m in sandbox.bot_messages(GROUP, thread)]


# ------------------------------------------------------------------ 8: hostile names


@pytest.mark.parametrize("name", HOSTILE)
async def test_hostile_names_read_as_typed_in_start_card_claim_and_referrals(
    desk: BotHarness, name: str
) -> None:
    sandbox = desk.sandbox
    uid = 3000 + HOSTILE.index(name)
    sandbox.user(uid, first_name=name)
    welcome = await desk.say(uid, "/start")
    assert welcome["text"] == t("en", "start.welcome", name=name, brand="Brewhaus")
    assert no_markup(welcome) and t("en", "menu.orders") in button_texts(welcome)

    # The staff card and the claim line show the customer's and the staff member's names as typed.
    await desk.say(uid, "/human")
    await eventually(lambda: _has_topic(desk, uid))
    [conversation] = [
        c for c in await _conversations(desk) if c.customer_id is not None and c.status == "open"
    ]
    thread = conversation.topic_id or 0
    card = await sandbox.wait_for_bot_message(
        GROUP, thread_id=thread, predicate=lambda m: name in (m.get("text") or "")
    )
    assert no_markup(card) or "🆘" in card["text"]
    assert not any(e["type"] == "text_link" for e in card.get("entities") or [])
    sandbox.staff_post(GROUP, STAFF, "/claim", message_thread_id=thread)
    claimed = await sandbox.wait_for_bot_message(
        GROUP, thread_id=thread, predicate=lambda m: "<b>Boss</b> & co" in (m.get("text") or "")
    )
    assert claimed["text"] == t("en", "handoff.staff.claimed", name="<b>Boss</b> & co")
    sandbox.staff_post(GROUP, STAFF, "/close", message_thread_id=thread)
    await sandbox.wait_for_bot_message(uid, predicate=lambda m: m.get("text") == t("en", "handoff.csat.ask"))

    # Referrals: the newcomer reads the referrer's name as typed.
    await desk.say(uid, "/invite")
    code = await _code_of(desk, uid)
    sandbox.user(uid + 100, first_name="Newbie")
    joined = await desk.say(uid + 100, f"/start ref_{code}")
    assert name in joined["text"] and no_markup(joined)


async def _conversations(harness: BotHarness) -> list[Conversation]:
    async with harness.db.session() as session:
        return list((await session.exec(select(Conversation))).all())


async def _has_topic(harness: BotHarness, uid: int) -> bool:
    return any(c.topic_id is not None and c.status == "open" for c in await _conversations(harness))


async def _code_of(harness: BotHarness, uid: int) -> str:
    from touchpoint.customers.models import Customer

    found: list[str] = []

    async def committed() -> bool:
        async with harness.db.session() as session:
            owner = (await session.exec(select(Customer).where(Customer.telegram_id == uid))).one()
            found[:] = (
                await session.exec(select(ReferralCode.code).where(ReferralCode.customer_id == owner.id))
            ).all()
        return bool(found)

    await eventually(committed)
    return found[0]


# ------------------------------------------------------------------ 13, 22: every button answered


@pytest.mark.parametrize(
    "data",
    [
        "zzz:nonsense",
        "lang:xx",
        "pc:espresso:notanumber",
        "ho:close:1:0",
        "m:nosuch",
        "ho:csat:99999:5",
        "as",
        "pp",
    ],
)
async def test_forged_or_stale_buttons_get_an_out_of_date_alert(desk: BotHarness, data: str) -> None:
    desk.sandbox.user(3101)
    menu = await desk.say(3101, "/start")
    answer = await press_data(desk, 3101, menu["message_id"], data)
    assert answer["text"] == t("en", "button.stale") and answer["show_alert"]
    assert not [m for m in desk.sandbox.bot_messages(3101) if "Sorry" in (m.get("text") or "")]


async def test_non_staff_press_on_the_card_close_button_is_told_only_staff(desk: BotHarness) -> None:
    sandbox = desk.sandbox
    sandbox.user(3201, first_name="Lea")
    await desk.say(3201, "/human")
    await eventually(lambda: _has_topic(desk, 3201))
    [conversation] = await _conversations(desk)
    card = await sandbox.wait_for_bot_message(
        GROUP, thread_id=conversation.topic_id, predicate=lambda m: "Lea" in (m.get("text") or "")
    )
    sandbox.user(9666, first_name="Eve")
    answer = await press_data(
        desk, 9666, card["message_id"], button_data(card, t("en", "handoff.button.close")), chat_id=GROUP
    )
    assert answer["text"] == t("en", "handoff.staff_only") and answer["show_alert"]
    assert (await _conversations(desk))[0].status == "open"


# ------------------------------------------------------------------ 14: repeated tap


async def test_repeated_tap_that_changes_nothing_is_answered_without_an_apology(desk: BotHarness) -> None:
    desk.sandbox.user(3301)
    menu = await desk.say(3301, "/start")
    data = button_data(menu, t("en", "menu.language"))
    first = await press_data(desk, 3301, menu["message_id"], data)
    second = await press_data(desk, 3301, menu["message_id"], data)  # same screen again
    assert first["text"] is None and second["text"] is None
    texts = [m.get("text") or "" for m in desk.sandbox.bot_messages(3301)]
    assert not [text for text in texts if text.startswith(t("en", "error.apology", code="")[:12])]
    assert desk.sandbox.bot_messages(3301)[-1]["text"] == t("en", "language.choose")


# ------------------------------------------------------------------ 20: 429 on a reply


async def test_a_short_429_is_waited_out_and_the_answer_arrives(desk: BotHarness) -> None:
    desk.sandbox.user(3401)
    await desk.say(3401, "/start")
    desk.sandbox.inject_retry_after(3401, 1)
    reply = await desk.say(3401, "/help", timeout=10)
    assert reply["text"] == help_text("en", desk.settings)


async def test_a_long_429_queues_the_answer_in_the_outbox_instead_of_an_apology(desk: BotHarness) -> None:
    desk.sandbox.user(3402)
    await desk.say(3402, "/start")
    before = len(desk.sandbox.bot_messages(3402))
    desk.sandbox.inject_retry_after(3402, 60)
    desk.sandbox.send_text(3402, "/help")

    async def queued() -> bool:
        async with desk.db.session() as session:
            rows = (await session.exec(select(OutboxMessage).where(OutboxMessage.chat_id == 3402))).all()
        return [(row.template, row.lane, row.status) for row in rows] == [
            (REPLY_TEMPLATE, "reply", "pending")
        ]

    await eventually(queued)
    await desk.settled()
    await asyncio.sleep(0.2)
    assert len(desk.sandbox.bot_messages(3402)) == before  # no apology either
    async with desk.db.session() as session:
        row = (await session.exec(select(OutboxMessage).where(OutboxMessage.chat_id == 3402))).one()
    assert "/invite" in row.params["text"] and row.params["buttons"]

    # Once Telegram allows it, the outbox sends the very answer, buttons and all.
    async with desk.db.session() as session:
        row = (await session.exec(select(OutboxMessage).where(OutboxMessage.chat_id == 3402))).one()
        row.due_at = utcnow()
        session.add(row)
        await session.commit()
    assert desk.bot is not None
    sender = OutboxSender(desk.db, desk.settings, TelegramChannel(desk.bot), t, pacing=Pacing().scaled(100))
    await sender.drain_once()
    answer = await desk.sandbox.wait_for_bot_message(
        3402, predicate=lambda m: "/invite" in (m.get("text") or "")
    )
    assert answer["text"] == help_text("en", desk.settings)
    assert t("en", "menu.orders") in button_texts(answer)


# ------------------------------------------------------------------ 21: closing lines


async def test_closing_lines_and_the_rating_reach_staff_and_closed_topic_replies_are_delivered(
    desk: BotHarness,
) -> None:
    sandbox = desk.sandbox
    sandbox.user(3501, first_name="Mia")
    await desk.say(3501, "/human")
    await eventually(lambda: _has_topic(desk, 3501))
    [conversation] = await _conversations(desk)
    thread = conversation.topic_id or 0
    await sandbox.wait_for_bot_message(
        GROUP, thread_id=thread, predicate=lambda m: "Mia" in (m.get("text") or "")
    )
    sandbox.staff_post(GROUP, STAFF, "/close", message_thread_id=thread)
    ask = await sandbox.wait_for_bot_message(
        3501, predicate=lambda m: m.get("text") == t("en", "handoff.csat.ask")
    )
    closed = t("en", "handoff.staff.closed", name="<b>Boss</b> & co")
    await sandbox.wait_for_bot_message(GROUP, thread_id=thread, predicate=lambda m: m.get("text") == closed)
    await eventually(lambda: _topic_closed(sandbox, thread))

    sandbox.press_button(3501, ask["message_id"], button_data(ask, "⭐⭐⭐⭐"))
    rating = t("en", "handoff.staff.csat", score=4)
    await sandbox.wait_for_bot_message(GROUP, thread_id=thread, predicate=lambda m: m.get("text") == rating)
    await eventually(lambda: _topic_closed(sandbox, thread))  # closed again after the line
    again = await press_data(desk, 3501, ask["message_id"], button_data(ask, "⭐⭐⭐⭐"))
    assert again["text"] == t("en", "handoff.csat.invalid")  # a real second tap: already counted

    sandbox.staff_post(GROUP, STAFF, "are you still there?", message_thread_id=thread)
    await sandbox.wait_for_bot_message(
        GROUP, thread_id=thread, predicate=lambda m: m.get("text") == t("en", "handoff.staff.closed_topic")
    )
    texts = await topic_texts(sandbox, thread)
    assert texts.index(closed) < texts.index(rating)


async def _topic_closed(sandbox: Sandbox, thread: int) -> bool:
    return any(topic["message_thread_id"] == thread and topic["is_closed"] for topic in sandbox.topics(GROUP))


# ------------------------------------------------------------------ 23: dead ends


async def test_compare_screen_has_back_and_menu(desk: BotHarness) -> None:
    desk.sandbox.user(3601)
    menu = await desk.say(3601, "/start")
    catalogue = await desk.press(3601, menu, t("en", "menu.products"))
    category = await desk.press(3601, catalogue, button_texts(catalogue)[0])
    first = await desk.press(3601, category, button_texts(category)[0])
    added = await desk.press(3601, first, t("en", "presale.button.compare_add"))
    category = await desk.press(3601, added, t("en", "presale.button.more_products"))
    category = await desk.press(3601, category, button_texts(category)[0])
    second = await desk.press(3601, category, button_texts(category)[1])
    added = await desk.press(3601, second, t("en", "presale.button.compare_add"))
    compared = await desk.press(3601, added, t("en", "presale.button.compare_show"))
    assert {t("en", "button.back"), t("en", "button.menu")} <= set(button_texts(compared))


async def test_ask_a_question_on_a_product_answers_about_that_product_with_buttons(desk: BotHarness) -> None:
    desk.sandbox.user(3602)
    menu = await desk.say(3602, "/start")
    catalogue = await desk.press(3602, menu, t("en", "menu.products"))
    category = await desk.press(3602, catalogue, button_texts(catalogue)[0])
    card = await desk.press(3602, category, button_texts(category)[0])
    name = (card.get("text") or card.get("caption") or "").split("\n")[0]
    prompt = await desk.press(3602, card, t("en", "presale.button.ask"))
    assert name in prompt["text"] and t("en", "presale.button.ask_person") in button_texts(prompt)
    answer = await desk.say(3602, "does it come with a warranty card?")
    assert answer["text"].startswith(t("en", "presale.ask.product_answer")) and name in answer["text"]
    assert t("en", "button.menu") in button_texts(answer)
    handed = await desk.press(3602, answer, t("en", "presale.button.ask_person"))
    assert handed["text"].startswith(t("en", "handoff.wait.open", minutes=4)[:20])
    await eventually(lambda: _has_topic(desk, 3602))
    [conversation] = await _conversations(desk)
    assert conversation.reason == "product"
    await desk.sandbox.wait_for_bot_message(
        GROUP, thread_id=conversation.topic_id, predicate=lambda m: name in (m.get("text") or "")
    )


async def test_returns_without_a_linked_account_offer_the_link_and_help_lists_every_command(
    desk: BotHarness,
) -> None:
    desk.sandbox.user(3603)
    menu = await desk.say(3603, "/start")
    hub = await desk.press(3603, menu, t("en", "menu.returns"))
    none = await desk.press(3603, hub, t("en", "aftersales.button.new"))
    assert none["text"] == t("en", "aftersales.orders.none")
    prompt = await desk.press(3603, none, t("en", "orders.button.link"))
    assert prompt["text"] == t("en", "orders.link.prompt")

    reply = await desk.say(3603, "/help")
    for command in ("start", "help", "invite", "points", "settings", "human", "language", "stop"):
        assert f"/{command} — " in reply["text"]
    assert "around the clock" not in reply["text"]
    assert "Mon–Sun" in reply["text"] and "0:00–24:00" in reply["text"]


# ------------------------------------------------------------------ 24: taps are not a flood


async def test_ten_menu_taps_do_not_mute_the_customer(sandbox: tuple[Sandbox, str], sqlite_url: str) -> None:
    emulator, base_url = sandbox
    harness = BotHarness(emulator, base_url, sqlite_url)  # the default flood limits
    await harness.start()
    try:
        emulator.user(3701)
        menu = await harness.say(3701, "/start")
        for index in range(10):
            label = t("en", "menu.language") if index % 2 == 0 else t("en", "button.back")
            menu = await harness.press(3701, menu, label)
        texts = [m.get("text") for m in emulator.bot_messages(3701)]
        assert t("en", "flood.slow_down") not in texts
        assert (await harness.say(3701, "/help"))["text"] == help_text("en")
    finally:
        await harness.close()


# ------------------------------------------------------------------ 14 (again): a repeated tap


async def test_repeated_tap_on_points_edits_in_place_and_sends_no_duplicate(desk: BotHarness) -> None:
    desk.sandbox.user(3302)
    menu = await desk.say(3302, "/start")
    invite = await desk.press(3302, menu, t("en", "menu.invite"))
    label = next(text for text in button_texts(invite) if "⭐" in text or "oint" in text)
    data = button_data(invite, label)
    await press_data(desk, 3302, invite["message_id"], data)
    count = len(desk.sandbox.bot_messages(3302))
    await press_data(desk, 3302, invite["message_id"], data)  # the same screen: "not modified"
    await asyncio.sleep(0.2)
    assert len(desk.sandbox.bot_messages(3302)) == count


# ------------------------------------------------------------------ 15: unlinked during a return


ANNA_PHONE = "4915112345671"  # C-1001 in the demo data


async def test_unlinking_during_a_return_stops_it_with_a_word_and_the_menu(desk: BotHarness) -> None:
    sandbox = desk.sandbox
    sandbox.user(3801)
    menu = await desk.say(3801, "/start")
    after = desk.last_message_id(3801)
    sandbox.share_contact(3801, ANNA_PHONE)
    listing = await sandbox.wait_for_bot_message(
        3801, after_message_id=after, predicate=lambda m: m.get("text") == t("en", "orders.list.title")
    )
    await desk.settled()
    hub = await desk.press(3801, menu, t("en", "menu.returns"))
    orders = await desk.press(3801, hub, t("en", "aftersales.button.new"))
    items = await desk.press(3801, orders, button_texts(orders)[0])
    item_label = button_texts(items)[0]
    await desk.press(3801, listing, t("en", "orders.button.unlink"))

    gone = await desk.press(3801, items, item_label)
    assert gone["text"] == t("en", "aftersales.order_gone")
    assert t("en", "menu.orders") in button_texts(gone)
    reply = await desk.say(3801, "/help")  # the request is over: no apology on later messages
    assert reply["text"] == help_text("en", desk.settings)
    texts = [m.get("text") or "" for m in sandbox.bot_messages(3801)]
    assert not [text for text in texts if text.startswith(t("en", "error.apology", code="")[:15])]


# ------------------------------------------------------------------ 8: a ticket with hostile text


@pytest.mark.parametrize("text", HOSTILE)
async def test_a_ticket_echoes_hostile_words_and_names_as_typed(desk: BotHarness, text: str) -> None:
    tid = 3900 + HOSTILE.index(text)
    async with desk.db.session() as session:
        await make_catalogue(session)
        customer = await make_linked_customer(session, tid, first_name=text)
        await make_order(session, customer, f"A-{tid}", delivered_days_ago=5, skus=("ESP-1",))
    desk.sandbox.user(tid, first_name=text)
    menu = await desk.say(tid, "/start")
    assert menu["text"] == t("en", "start.welcome", name=text, brand="Brewhaus") and no_markup(menu)
    hub = await desk.press(tid, menu, t("en", "menu.returns"))
    orders = await desk.press(tid, hub, t("en", "aftersales.button.new"))
    items = await desk.press(tid, orders, button_texts(orders)[0])
    items = await desk.press(tid, items, button_texts(items)[0])
    kinds = await desk.press(tid, items, t("en", "aftersales.button.next"))
    reasons = await desk.press(tid, kinds, t("en", "aftersales.kind.return"))
    await desk.press(tid, reasons, t("en", "aftersales.reason.damaged"))
    photos = await desk.say(tid, f"it broke {text}")
    summary = await desk.press(tid, photos, t("en", "aftersales.button.done"))
    assert f"it broke {text}" in summary["text"]
    assert not any(e["type"] == "text_link" for e in summary.get("entities") or [])
