"""The foundation, as a customer sees it through the sandbox."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from tests.chat_texts import help_text
from tests.e2e.harness import BotHarness, button_texts, eventually
from touchpoint.channels.flood import MemoryFloodGate
from touchpoint.customers.models import BehaviourEvent, Customer
from touchpoint.i18n import get_translator

t = get_translator()


async def customer(harness: BotHarness, telegram_id: int) -> Customer | None:
    async with harness.db.session() as session:
        return (await session.exec(select(Customer).where(Customer.telegram_id == telegram_id))).first()


async def has(harness: BotHarness, telegram_id: int, **fields: object) -> bool:
    """The reply goes out just before the update's commit: a first look may find nothing yet."""
    found = await customer(harness, telegram_id)
    return found is not None and all(getattr(found, name) == value for name, value in fields.items())


@pytest.mark.parametrize(("language_code", "locale"), [("en-GB", "en"), ("ru", "ru"), ("zh-hans", "zh")])
async def test_start_shows_menu_in_telegram_language(
    harness: BotHarness, language_code: str, locale: str
) -> None:
    harness.sandbox.user(101, first_name="Mia", language_code=language_code)
    reply = await harness.say(101, "/start")
    assert reply["text"] == t(locale, "start.welcome", name="Mia", brand="Brewhaus")
    assert button_texts(reply) == [
        t(locale, f"menu.{item}")
        for item in ("products", "orders", "returns", "invite", "human", "notifications", "language")
    ]


async def test_unknown_language_falls_back_to_default(harness: BotHarness) -> None:
    harness.sandbox.user(102, first_name="Ana", language_code="pt-BR")
    reply = await harness.say(102, "/start")
    assert reply["text"] == t("en", "start.welcome", name="Ana", brand="Brewhaus")


async def test_language_switch_persists_across_restart(harness: BotHarness) -> None:
    harness.sandbox.user(201, first_name="Oleg", language_code="en")
    menu = await harness.say(201, "/language")
    assert menu["text"] == t("en", "language.choose")
    await harness.press(201, menu, "Русский")
    changed = await harness.sandbox.wait_for_bot_message(
        201, predicate=lambda m: m.get("text") == t("ru", "language.changed")
    )
    assert changed

    await harness.restart()
    reply = await harness.say(201, "/start")
    assert reply["text"] == t("ru", "start.welcome", name="Oleg", brand="Brewhaus")
    await eventually(lambda: has(harness, 201, locale="ru"))


async def test_redelivered_update_is_handled_once(harness: BotHarness) -> None:
    harness.sandbox.user(301, language_code="en")
    update = harness.sandbox.send_text(301, "/help")
    await harness.sandbox.wait_for_bot_message(301)
    harness.sandbox.redeliver(update["update_id"])
    await harness.say(301, "/language")  # processed after the redelivery was seen
    await asyncio.sleep(0.3)
    helps = [m for m in harness.sandbox.bot_messages(301) if m.get("text") == help_text("en")]
    assert len(helps) == 1
    async with harness.db.session() as session:
        events = (await session.exec(
            select(BehaviourEvent).where(BehaviourEvent.type == "chat.help")
        )).all()
    assert len(events) == 1


async def test_flood_control_answers_once_then_ignores(harness: BotHarness) -> None:
    harness.flood_gate = MemoryFloodGate(max_messages=3, window_s=60, mute_s=60)
    await harness.restart()
    harness.sandbox.user(401, language_code="ru")
    for _ in range(8):
        harness.sandbox.send_text(401, "/help")
    await harness.sandbox.wait_for_bot_message(
        401, predicate=lambda m: m.get("text") == t("ru", "flood.slow_down")
    )
    await asyncio.sleep(0.5)
    texts = [m.get("text") for m in harness.sandbox.bot_messages(401)]
    assert texts.count(help_text("ru")) == 3
    assert texts.count(t("ru", "flood.slow_down")) == 1
    # Someone else is not slowed down by it.
    harness.sandbox.user(402, language_code="en")
    assert (await harness.say(402, "/help"))["text"] == help_text("en")


async def test_stop_pauses_nudges_and_start_resumes(harness: BotHarness) -> None:
    harness.sandbox.user(501, language_code="zh")
    reply = await harness.say(501, "/stop")
    assert reply["text"] == t("zh", "stop.done")
    await eventually(lambda: has(harness, 501, nudges_paused=True))
    reply = await harness.say(501, "/start")
    assert reply["text"] == t("zh", "start.resumed")
    await eventually(lambda: has(harness, 501, nudges_paused=False))


async def test_handler_crash_apologises_and_keeps_serving(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database exploded")

    monkeypatch.setattr("bot.handlers.common.set_nudges_paused", broken)
    harness.sandbox.user(601, first_name="Secret Name", language_code="ru")
    harness.sandbox.user(602, language_code="en")

    reply = await harness.say(601, "/stop")
    prefix = t("ru", "error.apology", code="").strip()
    assert reply["text"].startswith(prefix)
    code = reply["text"].removeprefix(prefix).strip()
    assert len(code) == 6
    assert f"ref={code}" in caplog.text
    assert "Secret Name" not in caplog.text

    assert (await harness.say(602, "/help"))["text"] == help_text("en")
    assert (await customer(harness, 601)).nudges_paused is False


async def test_menu_buttons_answer_and_navigate_back(harness: BotHarness) -> None:
    harness.sandbox.user(701, language_code="en")
    menu = await harness.say(701, "/start")
    catalogue = await harness.press(701, menu, t("en", "menu.products"))
    assert catalogue["text"] == t("en", "presale.categories.title")
    back = await harness.press(701, catalogue, t("en", "button.menu"))
    assert back["text"] == t("en", "menu.title")
    assert t("en", "menu.orders") in button_texts(back)


async def test_anything_else_gets_the_menu(harness: BotHarness) -> None:
    # Free text goes to the FAQ matcher (tests/e2e/test_presale_chat.py); a sticker lands here.
    harness.sandbox.user(801, language_code="zh")
    harness.sandbox.send_sticker(801)
    reply = await harness.sandbox.wait_for_bot_message(801)
    assert reply["text"] == t("zh", "menu.not_understood")
    assert button_texts(reply)
