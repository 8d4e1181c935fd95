"""Referrals as customers see them through the sandbox: invite, join by link or code, rewards, points."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from sqlmodel import select

from bot.channel import TelegramChannel
from tests.e2e.harness import BotHarness, button_texts, buttons, eventually
from touchpoint.clock import utcnow
from touchpoint.customers.models import Customer
from touchpoint.i18n import get_translator
from touchpoint.messaging.sender import OutboxSender, Pacing
from touchpoint.orders.models import Order
from touchpoint.referrals.models import Referral, ReferralCode
from touchpoint.referrals.service import on_order_status, release_due_rewards

t = get_translator()
NOON_BERLIN = datetime(2026, 6, 1, 10, tzinfo=UTC)  # outside quiet hours, so nothing waits


@pytest.fixture(autouse=True)
def daytime() -> Iterator[None]:
    with time_machine.travel(NOON_BERLIN, tick=True):
        yield


async def customer(harness: BotHarness, telegram_id: int) -> Customer:
    async with harness.db.session() as session:
        return (await session.exec(select(Customer).where(Customer.telegram_id == telegram_id))).one()


async def code_of(harness: BotHarness, telegram_id: int) -> str:
    """The customer's code, once the update that created it is committed."""
    owner = await customer(harness, telegram_id)
    found: list[str] = []

    async def committed() -> bool:
        async with harness.db.session() as session:
            found[:] = (await session.exec(
                select(ReferralCode.code).where(ReferralCode.customer_id == owner.id))).all()
        return bool(found)

    await eventually(committed)
    return found[0]


async def store_says(harness: BotHarness, telegram_id: int, status: str, total_minor: int = 5000) -> None:
    """Stands in for the store's events API: the newcomer's order reaches ``status``."""
    buyer = await customer(harness, telegram_id)
    async with harness.db.session() as session:
        order = (await session.exec(select(Order).where(Order.number == f"E{telegram_id}"))).first()
        if order is None:
            now = utcnow()
            order = Order(number=f"E{telegram_id}", store_customer_id=f"S{telegram_id}",
                          total_minor=total_minor, created_at=now, updated_at=now)
            buyer.store_customer_id = f"S{telegram_id}"
            session.add_all([order, buyer])
            await session.flush()
        order.status = status
        order.delivered_at = order.delivered_at or (utcnow() if status == "delivered" else None)
        session.add(order)
        await on_order_status(session, harness.settings, order, status)


async def send_outbox(harness: BotHarness) -> None:
    assert harness.bot is not None
    sender = OutboxSender(harness.db, harness.settings, TelegramChannel(harness.bot), t,
                          pacing=Pacing().scaled(1000))
    while await sender.drain_once():
        pass


def plain(html_text: str) -> str:
    """What the chat shows of an HTML message."""
    return re.sub(r"<[^>]+>", "", html_text)


def texts(harness: BotHarness, chat_id: int) -> list[str]:
    return [m.get("text", "") for m in harness.sandbox.bot_messages(chat_id)]


async def test_link_join_delivered_order_rewards_both_after_the_return_window(harness: BotHarness) -> None:
    harness.sandbox.user(1101, first_name="Mia", language_code="en")
    harness.sandbox.user(1102, first_name="Ivan", language_code="ru")

    invite = await harness.say(1101, "/invite")
    code = await code_of(harness, 1101)
    link = f"https://t.me/touchpoint_bot?start=ref_{code}"
    assert link in invite["text"] and code in invite["text"]
    assert button_texts(invite)[:3] == [t("en", "referrals.button.share"),
                                        t("en", "referrals.button.have_code"),
                                        t("en", "referrals.button.points")]

    shared = await harness.press(1101, invite, t("en", "referrals.button.share"))
    assert shared["text"] == t("en", "referrals.share.intro")
    card = await harness.sandbox.wait_for_bot_message(1101, after_message_id=shared["message_id"])
    assert link in card["text"]
    assert buttons(card)[0]["url"].startswith("https://t.me/share/url?url=")

    joined = await harness.say(1102, f"/start ref_{code}")
    assert joined["text"] == t("ru", "referrals.code.joined", name="Mia", minimum="20,00\xa0€", points=300)
    welcome = t("ru", "start.welcome", name="Ivan", brand="Brewhaus")
    await harness.sandbox.wait_for_bot_message(1102, predicate=lambda m: m.get("text") == welcome)

    await send_outbox(harness)
    assert t("en", "referrals.notify.friend_joined", name="Ivan", points=500) in texts(harness, 1101)

    await store_says(harness, 1102, "delivered")
    await send_outbox(harness)
    # Held until the order can no longer be returned: shown as pending, nothing spendable yet.
    assert t("en", "referrals.notify.reward_earned", name="Ivan", points=500) not in texts(harness, 1101)
    held = await harness.say(1101, "/invite")
    assert held["text"].startswith(plain(t(
        "en", "referrals.invite.text", brand="Brewhaus", code=code, link=link, minimum="€20.00",
        referee_reward="300 points", referrer_points="500 points", joined=1, pending=0, rewarded=1,
        earned=0, balance=0,
    )))
    assert "🕓 500 invite points on hold until Jul 1, 2026" in held["text"]
    mine = await harness.say(1102, "/points")
    assert mine["text"].startswith(plain(t("ru", "referrals.points.title", balance=50)))
    assert "🕓 300 баллов за приглашение ждут до 1 июл. 2026\u202fг." in mine["text"]

    with time_machine.travel(datetime(2026, 7, 1, 11, tzinfo=UTC), tick=True):
        async with harness.db.session() as session:  # the scheduler's hourly release job
            assert await release_due_rewards(session, harness.settings) == 2
        await send_outbox(harness)
        assert t("en", "referrals.notify.reward_earned", name="Ivan", points=500) in texts(harness, 1101)
        assert t("ru", "referrals.notify.welcome_reward", name="Mia", points=300) in texts(harness, 1102)
        again = await harness.say(1101, "/invite")
        assert again["text"] == plain(t(
            "en", "referrals.invite.text", brand="Brewhaus", code=code, link=link, minimum="€20.00",
            referee_reward="300 points", referrer_points="500 points", joined=1, pending=0, rewarded=1,
            earned=500, balance=500,
        ))
        points = await harness.press(1101, again, t("en", "referrals.button.points"))
        assert points["text"].startswith(plain(t("en", "referrals.points.title", balance=500)))
        assert t("en", "referrals.reason.referral_referrer") in points["text"]


async def test_return_before_the_window_ends_cancels_the_pending_rewards(harness: BotHarness) -> None:
    harness.sandbox.user(1111, first_name="Mia", language_code="en")
    harness.sandbox.user(1112, first_name="Ivan", language_code="ru")
    await harness.say(1111, "/invite")
    code = await code_of(harness, 1111)
    await harness.say(1112, f"/start ref_{code}")
    await store_says(harness, 1112, "delivered")
    await store_says(harness, 1112, "returned")
    await send_outbox(harness)
    cancelled = t.plural("en", "referrals.notify.reward_cancelled", 500, name="Ivan", points=500)
    assert cancelled == "ℹ️ Ivan's first order came back, so the 500 invite points on hold were cancelled."
    assert cancelled in texts(harness, 1111)
    after = await harness.say(1111, "/points")
    assert after["text"].startswith(plain(t("en", "referrals.points.title", balance=0)))
    assert "🕓" not in after["text"]
    mine = await harness.say(1112, "/points")
    assert mine["text"].startswith(plain(t("ru", "referrals.points.title", balance=0)))
    assert "🕓" not in mine["text"]


async def test_typed_code_variants_and_clear_refusals(harness: BotHarness) -> None:
    harness.sandbox.user(1201, first_name="Zoe", language_code="en")
    harness.sandbox.user(1202, first_name="Li", language_code="zh")
    await harness.say(1201, "/invite")
    code = await code_of(harness, 1201)

    own = await harness.say(1201, f"/code {code.lower()}")
    assert own["text"] == t("en", "referrals.code.own")

    menu = await harness.say(1202, "/invite")
    asked = await harness.press(1202, menu, t("zh", "referrals.button.have_code"))
    assert asked["text"] == t("zh", "referrals.code.ask")
    unknown = await harness.say(1202, "ZZZZZZ")
    assert unknown["text"] == t("zh", "referrals.code.unknown")
    # Still waiting for a code: a lower-case, dashed variant is accepted.
    typed = f"{code[:3].lower()}-{code[3:].lower()}"
    joined = await harness.say(1202, typed)
    assert joined["text"] == t("zh", "referrals.code.joined", name="Zoe", minimum="€20.00", points=300)

    async def referred() -> bool:
        async with harness.db.session() as session:
            found = (await session.exec(select(Referral))).all()
        return [(r.source, r.status) for r in found] == [("typed", "pending")]

    await eventually(referred)
    # The code step is over: free text gets the usual answer again.
    assert (await harness.say(1202, "tell me a joke"))["text"] == t("zh", "presale.answer.none")


async def test_a_sentence_instead_of_a_code_ends_the_code_step(harness: BotHarness) -> None:
    harness.sandbox.user(1251, language_code="en")
    menu = await harness.say(1251, "/invite")
    await harness.press(1251, menu, t("en", "referrals.button.have_code"))
    assert (await harness.say(1251, "where is my order?"))["text"] == t("en", "referrals.code.unknown")
    assert (await harness.say(1251, "tell me a joke"))["text"] == t("en", "presale.answer.none")


async def test_code_from_an_old_customer_is_too_late(harness: BotHarness) -> None:
    harness.sandbox.user(1301, first_name="Ana", language_code="en")
    harness.sandbox.user(1302, first_name="Bo", language_code="en")
    await harness.say(1301, "/invite")
    code = await code_of(harness, 1301)
    await harness.say(1302, "/start")
    await store_says(harness, 1302, "delivered")  # Bo already bought something
    reply = await harness.say(1302, f"/start ref_{code}")
    assert reply["text"] == t("en", "referrals.code.too_late", days=7)


async def test_menu_invite_button_opens_the_invite_screen(harness: BotHarness) -> None:
    harness.sandbox.user(1401, first_name="Kai", language_code="ru")
    menu = await harness.say(1401, "/start")
    invite: dict[str, Any] = await harness.press(1401, menu, t("ru", "menu.invite"))
    assert await code_of(harness, 1401) in invite["text"]
    back = await harness.press(1401, invite, t("ru", "button.menu"))
    assert back["text"] == t("ru", "menu.title")


async def test_second_code_and_cycle_are_refused(harness: BotHarness) -> None:
    for user_id, name in ((1501, "Ada"), (1502, "Ben"), (1503, "Cy")):
        harness.sandbox.user(user_id, first_name=name, language_code="en")
        await harness.say(user_id, "/invite")
    ada, ben, cy = [await code_of(harness, user_id) for user_id in (1501, 1502, 1503)]

    assert (await harness.say(1502, f"/start ref_{ada}"))["text"] == t(
        "en", "referrals.code.joined", name="Ada", minimum="€20.00", points=300)
    welcome = t("en", "start.welcome", name="Ben", brand="Brewhaus")
    await harness.sandbox.wait_for_bot_message(1502, predicate=lambda m: m.get("text") == welcome)
    second = await harness.say(1502, f"/code {cy}")
    assert second["text"] == t("en", "referrals.code.already_referred")
    cycle = await harness.say(1501, f"/code {ben}")  # Ben, whom Ada invited, cannot invite Ada
    assert cycle["text"] == t("en", "referrals.code.not_allowed")
