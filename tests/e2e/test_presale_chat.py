"""Presale as a customer sees it through the sandbox: browse, stores, stock, reserve, compare, FAQ."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlmodel import select

from tests.e2e.harness import BotHarness, button_texts, eventually
from touchpoint.catalog.models import Product, Reservation, Stock
from touchpoint.catalog.service import release_expired_reservations
from touchpoint.customers.models import BehaviourEvent
from touchpoint.i18n import get_translator

t = get_translator()
STAFF_CHAT = -1009876543210


async def events(harness: BotHarness, event_type: str) -> list[BehaviourEvent]:
    async with harness.db.session() as session:
        query = select(BehaviourEvent).where(BehaviourEvent.type == event_type)
        return list((await session.exec(query)).all())


async def stock_row(harness: BotHarness, store: str, sku: str) -> Stock:
    async with harness.db.session() as session:
        row = await session.get(Stock, (store, sku))
        assert row is not None
        return row


async def open_product(harness: BotHarness, user: int, category: str, product: str) -> dict:
    menu = await harness.say(user, "/start")
    cats = await harness.press(user, menu, t("en", "menu.products"))
    listing = await harness.press(user, cats, category)
    return await harness.press(user, listing, next(b for b in button_texts(listing) if b.startswith(product)))


async def test_browse_to_a_product_and_back(shop: BotHarness) -> None:
    shop.sandbox.user(1101, language_code="en")
    menu = await shop.say(1101, "/start")
    cats = await shop.press(1101, menu, t("en", "menu.products"))
    assert cats["text"] == t("en", "presale.categories.title")
    assert "Espresso machines & coffee makers" in button_texts(cats)
    listing = await shop.press(1101, cats, "Espresso machines & coffee makers")
    assert "page 1 of 2" in listing["text"]
    page2 = await shop.press(1101, listing, "▶️")
    assert "page 2 of 2" in page2["text"]
    page1 = await shop.press(1101, page2, "◀️")
    card = await shop.press(1101, page1, next(b for b in button_texts(page1) if b.startswith("Classico")))
    assert "Classico Espresso Machine" in card["text"]
    assert "€349.00" in card["text"]
    assert "Pressure: 15 bar" in card["text"]
    assert button_texts(card) == [t("en", "presale.button.stock"), t("en", "presale.button.compare_add"),
                                  t("en", "presale.button.ask"), t("en", "button.back")]
    back = await shop.press(1101, card, t("en", "button.back"))
    assert "page 1 of 2" in back["text"]
    await eventually(lambda: _has(shop, "product.viewed", sku="ESP-001"))
    await eventually(lambda: _has(shop, "presale.category_viewed", category="espresso"))


async def _has(harness: BotHarness, event_type: str, **payload: object) -> bool:
    found = await events(harness, event_type)
    return any(all(e.payload.get(k) == v for k, v in payload.items()) for e in found)


async def test_card_in_russian(shop: BotHarness) -> None:
    shop.sandbox.user(1102, language_code="ru")
    menu = await shop.say(1102, "/start")
    cats = await shop.press(1102, menu, t("ru", "menu.products"))
    listing = await shop.press(1102, cats, "Кофемашины и кофеварки")
    card = await shop.press(1102, listing, next(b for b in button_texts(listing) if "Classico" in b))
    assert "Рожковая кофеварка Classico" in card["text"]
    assert "Давление: 15 бар" in card["text"]


async def test_compare_two_products(shop: BotHarness) -> None:
    shop.sandbox.user(1201, language_code="en")
    card = await open_product(shop, 1201, "Espresso machines & coffee makers", "Classico")
    added = await shop.press(1201, card, t("en", "presale.button.compare_add"))
    assert t("en", "presale.compare.need_two") in added["text"]
    back = await shop.press(1201, card, t("en", "button.back"))
    card2 = await shop.press(1201, back, next(b for b in button_texts(back) if b.startswith("Barista Pro")))
    added = await shop.press(1201, card2, t("en", "presale.button.compare_add"))
    assert "(2)" in added["text"]
    table = await shop.press(1201, added, t("en", "presale.button.compare_show"))
    assert "1️⃣ Classico Espresso Machine" in table["text"]
    assert "2️⃣ Barista Pro Dual Boiler" in table["text"]
    assert "1️⃣ €349.00" in table["text"] and "2️⃣ €" in table["text"]
    await eventually(lambda: _has(shop, "presale.compared", skus=["ESP-001", "ESP-002"]))


@time_machine.travel(datetime(2026, 11, 27, 23, 30, tzinfo=UTC), tick=True)  # Saturday 00:30 in Berlin
async def test_store_hours_across_midnight_and_closed_day(shop: BotHarness) -> None:
    shop.sandbox.user(1301, language_code="en")
    menu = await shop.say(1301, "/start")
    cats = await shop.press(1301, menu, t("en", "menu.products"))
    stores = await shop.press(1301, cats, t("en", "presale.button.stores"))
    blocks = stores["text"].split("\n\n")
    hbf = next(b for b in blocks if "Hauptbahnhof" in b)
    mitte = next(b for b in blocks if "Mitte" in b)
    # Friday's 07:00-01:00 is still running after midnight.
    assert t("en", "presale.store.open_until", time="01:00") in hbf
    assert t("en", "presale.store.opens_today", time="10:00") in mitte


@time_machine.travel(datetime(2026, 11, 29, 19, 0, tzinfo=UTC), tick=True)  # Sunday 20:00 in Berlin
async def test_store_closed_on_sunday_opens_tomorrow(shop: BotHarness) -> None:
    shop.sandbox.user(1302, language_code="en")
    menu = await shop.say(1302, "/start")
    cats = await shop.press(1302, menu, t("en", "menu.products"))
    stores = await shop.press(1302, cats, t("en", "presale.button.stores"))
    mitte = next(b for b in stores["text"].split("\n\n") if "Mitte" in b)
    assert t("en", "presale.store.today_closed") in mitte
    assert t("en", "presale.store.opens_tomorrow", time="10:00") in mitte


async def test_reserve_for_pickup_then_expiry_releases_stock(shop: BotHarness) -> None:
    shop.settings = shop.settings.model_copy(update={"staff_chat_id": STAFF_CHAT})
    await shop.restart()
    shop.sandbox.create_group(STAFF_CHAT, "Staff")
    before = await stock_row(shop, "mitte", "ESP-001")
    shop.sandbox.user(1401, language_code="en")
    card = await open_product(shop, 1401, "Espresso machines & coffee makers", "Classico")
    stock = await shop.press(1401, card, t("en", "presale.button.stock"))
    assert t("en", "presale.stock.available", count=before.quantity - before.reserved) in stock["text"]
    reserve_label = t("en", "presale.button.reserve", store="Brewhaus Mitte (flagship)")
    done = await shop.press(1401, stock, reserve_label)
    assert done["text"].startswith("📌 Reserved!")

    async def held() -> bool:
        row = await stock_row(shop, "mitte", "ESP-001")
        return row.reserved == before.reserved + 1

    await eventually(held)
    staff = await shop.sandbox.wait_for_bot_message(STAFF_CHAT)
    assert "ESP-001" in staff["text"] and "mitte" in staff["text"]
    await eventually(lambda: _has(shop, "reservation.created", sku="ESP-001", store="mitte"))

    assert await release_expired_reservations(shop.db) == 0  # not yet expired
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=25)):
        assert await release_expired_reservations(shop.db) == 1
    row = await stock_row(shop, "mitte", "ESP-001")
    assert row.reserved == before.reserved
    async with shop.db.session() as session:
        reservation = (await session.exec(select(Reservation))).one()
    assert reservation.status == "expired"


@pytest.mark.parametrize(("locale", "question", "answer_start"), [
    ("en", "how long does delivry take", "Orders placed by 14:00"),
    ("ru", "скока стоит доставка", "Доставка по Германии стоит"),
    ("zh", "可以分期付款吗", "网上可用"),
])
async def test_question_answered_in_each_language(
    shop: BotHarness, locale: str, question: str, answer_start: str
) -> None:
    shop.sandbox.user(1501, language_code=locale)
    reply = await shop.say(1501, question)
    assert reply["text"].startswith(answer_start)
    assert reply["text"].endswith(t(locale, "presale.answer.helpful"))
    assert button_texts(reply) == ["👍", "👎"]
    thanks = await shop.press(1501, reply, "👍")
    assert thanks["text"] == t(locale, "presale.feedback.thanks")
    await eventually(lambda: _has(shop, "presale.question_answered", text=question))
    await eventually(lambda: _has(shop, "presale.feedback", helpful=True))


async def test_two_misses_offer_a_person(shop: BotHarness) -> None:
    shop.sandbox.user(1601, language_code="en")
    first = await shop.say(1601, "tell me a joke")
    assert first["text"] == t("en", "presale.answer.none")
    assert t("en", "presale.button.human") in button_texts(first)
    second = await shop.say(1601, "what's the weather tomorrow")
    assert second["text"] == t("en", "presale.answer.two_misses")
    assert button_texts(second)[0] == t("en", "presale.button.human")
    await eventually(lambda: _has(shop, "presale.question_unanswered", text="tell me a joke"))


async def test_a_product_name_shows_its_card(shop: BotHarness) -> None:
    shop.sandbox.user(1701, language_code="en")
    card = await shop.say(1701, "sonicclean toothbrush")
    assert "SonicClean Electric Toothbrush" in card["text"]
    assert t("en", "presale.button.stock") in button_texts(card)


async def test_card_with_photo_and_back(shop: BotHarness) -> None:
    async with shop.db.session() as session:
        item = await session.get(Product, "ESP-003")
        assert item is not None
        item.photo_url = "https://shop.example/automatica.jpg"
        session.add(item)
    shop.sandbox.user(1801, language_code="en")
    card = await open_product(shop, 1801, "Espresso machines & coffee makers", "Automatica Bean")
    assert card.get("photo")
    assert "Automatica Bean-to-Cup Machine" in card["caption"]
    back = await shop.press(1801, card, t("en", "button.back"))
    assert "page 1 of 2" in back["text"]
