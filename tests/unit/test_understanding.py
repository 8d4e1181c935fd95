"""Understanding customers' own words, on the demo FAQ and catalogue: one test per failure kind
the matcher used to have (synonyms, Chinese key words, close entries, "do you sell X", exact FAQ
questions, nonsense) and the intents routed beyond the FAQ."""

from __future__ import annotations

import pytest

from touchpoint.seed.demo import load_demo_catalog, load_demo_faq
from touchpoint.understanding import intents
from touchpoint.understanding.matcher import Matcher, Target
from touchpoint.understanding.service import CatalogSnapshot, QuestionIndex, Understanding, sentences
from touchpoint.understanding.text import fuzzy_form, normalize

PATTERN = r"^[A-Z]{2,4}-?\d{4,10}$"


def demo_snapshot(extra_products: int = 0) -> CatalogSnapshot:
    snapshot = CatalogSnapshot()
    for entry in load_demo_faq():
        snapshot.faq.append((entry.id, [q for qs in entry.questions.values() for q in qs], list(entry.tags)))
        snapshot.answers[entry.id] = sentences(entry.answer.model_dump().values())
    catalog = load_demo_catalog()
    for product in catalog.products:
        snapshot.products.append((product.sku, list(product.name.model_dump().values())))
    for i in range(extra_products):
        names = [f"Nordkaffe Grinder Mini {i}", f"кофемолка Nordkaffe {i}"]
        snapshot.products.append((f"SYN-{i:05d}", names))
    for category in catalog.categories:
        snapshot.categories.append((category.id, list(category.name.model_dump().values())))
    for store in catalog.stores:
        snapshot.stores.append(intents.StoreName(store.id, tuple(store.name.model_dump().values()),
                                                 tuple(store.address.model_dump().values())))
    return snapshot


@pytest.fixture(scope="module")
def index() -> QuestionIndex:
    return QuestionIndex.build(demo_snapshot())


def understand(index: QuestionIndex, text: str) -> Understanding:
    return index.understand(text, PATTERN)


def answered(u: Understanding) -> str | None:
    best = u.match.best
    return best.target.id if u.match.verdict == "answer" and best is not None else None


@pytest.mark.parametrize(("text", "expected"), [
    ("do you have vouchers", "gift-cards"),  # other words than the FAQ's
    ("подарочный сертификат можно купить?", "gift-cards"),
    ("is there a membership with bonus points", "loyalty-referral"),
    ("у вас есть программа лояльности?", "loyalty-referral"),
])
def test_synonyms_find_the_entry(index: QuestionIndex, text: str, expected: str) -> None:
    u = understand(index, text)
    assert u.match.best is not None and u.match.best.target == Target("faq", expected)
    assert u.intent in ("answer", "suggest")


@pytest.mark.parametrize(("text", "expected"), [
    ("自提", "click-and-collect"), ("积分", "loyalty-referral"), ("付款方式", "payment-methods"),
])
def test_a_chinese_key_word_alone_is_enough(index: QuestionIndex, text: str, expected: str) -> None:
    best = understand(index, text).match.best
    assert best is not None and best.target == Target("faq", expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("Сколько идёт доставка?", "delivery-time"),  # was "did you mean…" between time and cost
    ("How much is shipping?", "delivery-cost"),
    ("Do you price match?", "price-match"),
    ("How long is the warranty?", "warranty"),
    ("快递要多久？", "delivery-time"),
])
def test_exact_faq_questions_are_answered_outright(index: QuestionIndex, text: str, expected: str) -> None:
    assert answered(understand(index, text)) == expected


def test_every_faq_question_is_answered_outright_with_its_own_entry(index: QuestionIndex) -> None:
    for entry in load_demo_faq():
        for question in (q for qs in entry.questions.values() for q in qs):
            assert answered(understand(index, question)) == entry.id, question


@pytest.mark.parametrize(("text", "item"), [
    ("do you sell cars?", "cars"), ("у вас есть диваны?", "диваны"), ("你们卖沙发吗", "沙发"),
    ("do you sell bicycles", "bicycles"),
])
def test_do_you_sell_something_the_shop_does_not_sell(index: QuestionIndex, text: str, item: str) -> None:
    u = understand(index, text)
    assert u.intent == "not_sold" and u.item == item and u.dont_know


@pytest.mark.parametrize(("text", "kind", "ident"), [
    ("do you sell gift cards?", "faq", "gift-cards"),
    ("do you sell spare parts", "faq", "spare-parts"),
    ("do you have a milk frother", "product", "GRD-008"),
])
def test_do_you_sell_something_the_shop_has(index: QuestionIndex, text: str, kind: str, ident: str) -> None:
    u = understand(index, text)
    assert u.intent != "not_sold"
    assert u.match.best is not None and u.match.best.target == Target(kind, ident)  # type: ignore[arg-type]


def test_do_you_sell_a_kind_of_thing_opens_its_category(index: QuestionIndex) -> None:
    u = understand(index, "do you sell kitchen appliances?")
    assert (u.intent, u.category_id) == ("category", "kitchen")


@pytest.mark.parametrize("text", [
    "how much does a quantum elephant weigh on Jupiter", "tell me a joke", "расскажи анекдот",
    "讲个笑话", "кто выиграет чемпионат мира", "", "???",
])
def test_nonsense_gets_an_honest_dont_know(index: QuestionIndex, text: str) -> None:
    u = understand(index, text)
    assert u.dont_know and u.match.verdict == "none"


@pytest.mark.parametrize(("text", "intent"), [
    ("hi", "greeting"), ("Привет!", "greeting"), ("你好", "greeting"),
    ("thanks a lot", "thanks"), ("спасибо большое", "thanks"), ("谢谢", "thanks"),
])
def test_greetings_and_thanks(index: QuestionIndex, text: str, intent: str) -> None:
    assert understand(index, text).intent == intent


@pytest.mark.parametrize("text", [
    "where is my order BH-100231", "где мой заказ bh 100231?", "订单BH-100231到哪了",
])
def test_an_order_number_routes_to_that_order(index: QuestionIndex, text: str) -> None:
    u = understand(index, text)
    assert (u.intent, u.order_number) == ("order", "BH-100231")


@pytest.mark.parametrize("text", ["I want to return the grinder", "хочу вернуть кофемолку", "我想退货"])
def test_a_wish_to_return_routes_to_returns(index: QuestionIndex, text: str) -> None:
    assert understand(index, text).intent == "return"


def test_a_question_about_returns_gets_the_policy(index: QuestionIndex) -> None:
    u = understand(index, "What is your return policy?")
    assert (u.intent, answered(u)) == ("answer", "returns")


@pytest.mark.parametrize("text", ["talk to a human", "соедините с оператором", "我要找人工客服"])
def test_asking_for_a_person_hands_over(index: QuestionIndex, text: str) -> None:
    assert understand(index, text).intent == "human"


@pytest.mark.parametrize(("text", "store"), [
    ("when is the alexa store open", "alexa"), ("Hauptbahnhof hours?", "hauptbahnhof"),
    ("米特旗舰店几点开门", "mitte"),
])
def test_a_store_name_shows_that_store(index: QuestionIndex, text: str, store: str) -> None:
    u = understand(index, text)
    assert (u.intent, u.store_id) == ("store", store)


def test_a_city_shared_by_all_stores_names_none_of_them(index: QuestionIndex) -> None:
    assert understand(index, "明天柏林下雨吗").store_id is None


@pytest.mark.parametrize(("text", "sku"), [
    ("sonikclean toothbrush", "PC-001"), ("Macina Pro", "GRD-002"), ("ESP-005", "ESP-005"),
])
def test_a_product_name_shows_its_card(index: QuestionIndex, text: str, sku: str) -> None:
    u = understand(index, text)
    assert u.intent == "product"
    assert u.match.best is not None and u.match.best.target == Target("product", sku)


def test_entities_in_text() -> None:
    found = intents.order_numbers("orders bh-100231 and BH100232, not ESP-001", PATTERN)
    assert found == ["BH-100231", "BH100232"]
    assert intents.phone_numbers("call me on +49 30 2345 6700") == ["+493023456700"]
    assert intents.skus("is ESP-005 in stock", frozenset({"ESP-005"})) == ["ESP-005"]


def test_normalize_drops_fillers_but_never_everything() -> None:
    assert normalize("Do you ship to Poland?") == "ship poland"
    assert normalize("Ёлка") == "елка"
    assert normalize("你们包邮吗") == "包邮"
    assert normalize("how") == "how"
    assert fuzzy_form("可以到店自提") == "可以 以到 到店 店自 自提"


def test_a_large_catalogue_uses_the_prefilter_and_still_finds_answers() -> None:
    index = QuestionIndex.build(demo_snapshot(extra_products=3000))
    assert index.matcher._bm25 is not None  # the bm25s prefilter is in use
    assert answered(understand(index, "how long does delivery take")) == "delivery-time"
    best = understand(index, "sonicclean toothbrush").match.best
    assert best is not None and best.target == Target("product", "PC-001")
    best = understand(index, "кофемолка nordkaffe 1234").match.best
    assert best is not None and best.target == Target("product", "SYN-01234")


def test_the_fuzzy_scorer_alone_still_works_without_the_model() -> None:
    matcher = Matcher()
    matcher.add(Target("faq", "delivery-time"), ["How long does delivery take?"])
    matcher.add(Target("faq", "returns"), ["Can I return an item?"])
    best = matcher.build().match("how lnog does delivery take").best
    assert best is not None and best.target == Target("faq", "delivery-time")


def test_a_products_own_name_word_beats_a_longer_generic_match(index: QuestionIndex) -> None:
    """"Piccolo" names one product; "espresso machine" names many (and the FAQ's care entry)."""
    best = understand(index, "piccolo espresso machine dimensions? my kitchen is tiny").match.best
    assert best is not None and best.target == Target("product", "ESP-007")
