"""Customers' own words through the sandbox, in Russian and Chinese: a question answered, an order
number routed to that order (behind the identity check), a wish to return routed to returns,
"do you sell X" for something the shop doesn't sell, a greeting."""

from __future__ import annotations

import pytest

from tests.e2e.harness import BotHarness, button_texts
from touchpoint.i18n import get_translator
from touchpoint.seed.demo import load_demo_faq

t = get_translator()


@pytest.mark.parametrize(("locale", "question", "faq_id"), [
    ("ru", "подарочный сертификат можно купить?", "gift-cards"),
    ("zh", "自提", "click-and-collect"),
])
async def test_a_question_in_other_words_is_answered(
    shop: BotHarness, locale: str, question: str, faq_id: str,
) -> None:
    answer = next(entry for entry in load_demo_faq() if entry.id == faq_id).answer.model_dump()[locale]
    shop.sandbox.user(2101, language_code=locale)
    reply = await shop.say(2101, question)
    assert reply["text"].startswith(answer[:12])
    assert button_texts(reply)[-2:] == ["👍", "👎"]


@pytest.mark.parametrize(("locale", "text"), [
    ("ru", "где мой заказ BH-100198?"), ("zh", "订单bh-100198到哪了"),
])
async def test_an_order_number_is_routed_to_that_order_after_the_identity_check(
    shop: BotHarness, locale: str, text: str,
) -> None:
    shop.sandbox.user(2201, language_code=locale)
    ask = await shop.say(2201, text)
    assert ask["text"] == t(locale, "orders.find.ask_proof")  # not linked: prove it first
    found = await shop.say(2201, "5671")
    assert "BH-100198" in found["text"].split("\n")[0]


async def test_a_wish_to_return_opens_returns(shop: BotHarness) -> None:
    shop.sandbox.user(2301, language_code="ru")
    hub = await shop.say(2301, "хочу вернуть кофемолку")
    assert hub["text"] == t("ru", "aftersales.menu.title")
    assert t("ru", "aftersales.button.new") in button_texts(hub)


async def test_something_the_shop_does_not_sell(shop: BotHarness) -> None:
    shop.sandbox.user(2401, language_code="zh")
    reply = await shop.say(2401, "你们卖沙发吗")
    assert reply["text"] == t("zh", "presale.intent.not_sold").format(item="沙发")
    assert button_texts(reply)[0] == t("zh", "menu.products")


async def test_markup_in_the_item_is_never_rendered(shop: BotHarness) -> None:
    shop.sandbox.user(2402, language_code="en")
    reply = await shop.say(2402, "do you sell <b>cars</b>")
    assert "cars" in reply["text"] and not reply.get("entities")


async def test_a_greeting_gets_a_greeting_and_the_menu(shop: BotHarness) -> None:
    shop.sandbox.user(2501, language_code="zh")
    reply = await shop.say(2501, "你好")
    assert reply["text"] == t("zh", "presale.intent.greeting")
    assert t("zh", "menu.products") in button_texts(reply)
