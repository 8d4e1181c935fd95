"""The FAQ matcher on the demo FAQ and catalogue, in each language."""

import pytest

from touchpoint.catalog.matcher import Matcher, Target, normalize
from touchpoint.seed.demo import load_demo_catalog, load_demo_faq


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    built = Matcher()
    for entry in load_demo_faq():
        built.add(Target("faq", entry.id), [q for qs in entry.questions.values() for q in qs])
    for product in load_demo_catalog().products:
        built.add(Target("product", product.sku), [*product.name.model_dump().values(), product.sku])
    return built.build()


@pytest.mark.parametrize(("text", "expected"), [
    ("how lnog does delivery take", "delivery-time"),
    ("Доставляете в Польшу", "delivery-areas"),
    ("可以到店自提吗", "click-and-collect"),
])
def test_confident_answers(matcher: Matcher, text: str, expected: str) -> None:
    match = matcher.match(text)
    assert match.verdict == "answer"
    assert match.best is not None and match.best.target == Target("faq", expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("доставку в польшу делаете?", "delivery-areas"),  # another ending, another word order
    ("PAYPAL???", "payment-methods"),
])
def test_inflected_or_shouted_still_ranks_first(matcher: Matcher, text: str, expected: str) -> None:
    match = matcher.match(text)
    assert match.verdict in ("answer", "suggest")
    assert match.best is not None and match.best.target == Target("faq", expected)


def test_product_by_name_with_typo(matcher: Matcher) -> None:
    best = matcher.match("sonikclean toothbrush").best
    assert best is not None and best.target == Target("product", "PC-001")


@pytest.mark.parametrize("text", ["tell me a joke", "расскажи анекдот", "讲个笑话", "", "???"])
def test_unrelated_is_never_answered(matcher: Matcher, text: str) -> None:
    assert matcher.match(text).verdict != "answer"


def test_normalize_drops_fillers_but_never_everything() -> None:
    assert normalize("Do you ship to Poland?") == "ship poland"
    assert normalize("Ёлка") == "елка"
    assert normalize("你们包邮吗") == "包邮"
    assert normalize("how") == "how"


def test_large_catalogue_uses_the_prefilter_and_still_finds_answers() -> None:
    built = Matcher()
    for entry in load_demo_faq():
        built.add(Target("faq", entry.id), [q for qs in entry.questions.values() for q in qs])
    for i in range(3000):
        built.add(Target("product", f"SYN-{i}"), [f"Nordkaffe Grinder Mini {i}", f"кофемолка Nordkaffe {i}"])
    built.add(Target("product", "PC-001"), ["SonicClean Electric Toothbrush"])
    built.build()
    assert built.candidates("sonicclean") is not None  # the bm25s prefilter is in use
    assert built.match("how long does delivery take").best.target == Target("faq", "delivery-time")  # type: ignore[union-attr]
    assert built.match("sonicclean toothbrush").best.target == Target("product", "PC-001")  # type: ignore[union-attr]
    assert built.match("кофемолка nordkaffe 1234").best.target == Target("product", "SYN-1234")  # type: ignore[union-attr]
