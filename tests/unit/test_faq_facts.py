"""FAQ answers state configured facts from the settings (never typed twice), in the reader's locale."""

from __future__ import annotations

import pytest

from touchpoint.catalog.facts import FACTS, render_answer, unknown_placeholders
from touchpoint.catalog.importer import parse_faq_yaml
from touchpoint.catalog.models import FaqEntry
from touchpoint.catalog.service import faq_answer
from touchpoint.config import Settings
from touchpoint.i18n import get_translator
from touchpoint.seed.demo import load_demo_faq


def demo_entry(faq_id: str) -> FaqEntry:
    entry = next(e for e in load_demo_faq() if e.id == faq_id)
    return FaqEntry(id=entry.id, questions=entry.questions, answer=entry.answer.model_dump())


def test_referral_answer_says_what_invite_pays() -> None:
    """The demo FAQ promised €10 off over €50 and 200 points while /invite paid 300 and 500."""
    settings = Settings()
    text = faq_answer(demo_entry("loyalty-referral"), "en", settings)
    assert "you get 500 points" in text and "they get 300 points" in text
    assert "€20.00 or more" in text and "30 days after delivery" in text
    assert "200 points" not in text and "€10 off" not in text and "{" not in text

    changed = Settings(referral_referrer_points=750, referral_referee_points=0,
                       referral_referee_voucher_minor=1000, referral_min_order_minor=5000)
    text = faq_answer(demo_entry("loyalty-referral"), "en", changed)
    assert "they get a €10.00 voucher and you get 750 points" in text and "€50.00 or more" in text


@pytest.mark.parametrize(("locale", "expected"), [
    ("en", ["1 point for every €1", "you get 500 points"]),
    ("ru", ["1 балл за каждый", "а вы — 500 баллов", "от 20,00\xa0€"]),
    ("zh", ["您获得500 积分", "€20.00"]),
])
def test_facts_are_formatted_in_the_readers_locale(locale: str, expected: list[str]) -> None:
    text = faq_answer(demo_entry("loyalty-referral"), locale, Settings())
    for part in expected:
        assert part in text, (part, text)


def test_points_take_the_right_plural_form() -> None:
    translate = get_translator()
    forms = {n: render_answer("{referral_referrer_points}", "ru", Settings(referral_referrer_points=n),
                              translate) for n in (1, 3, 5, 21)}
    assert forms == {1: "1 балл", 3: "3 балла", 5: "5 баллов", 21: "21 балл"}


def test_returns_and_staff_hours_follow_the_settings() -> None:
    settings = Settings(return_window_days=14, handoff_hours_start=8, handoff_hours_end=20,
                        handoff_work_days=[0, 1, 2, 3, 4, 5])
    assert "within 14 days of delivery" in faq_answer(demo_entry("returns"), "en", settings)
    assert "в течение 14 дн." in faq_answer(demo_entry("returns"), "ru", settings)
    human = faq_answer(demo_entry("talk-to-human"), "en", settings)
    assert "(Mon–Sat 08:00–20:00, Berlin time)" in human
    assert "柏林时间周一–周六 08:00–20:00" in faq_answer(demo_entry("talk-to-human"), "zh", settings)


def test_every_demo_answer_renders_without_leftover_braces() -> None:
    for entry in load_demo_faq():
        for locale, text in entry.answer.model_dump().items():
            assert unknown_placeholders(text) == []
            assert "{" not in render_answer(text, locale, Settings()), entry.id


def test_import_refuses_unknown_placeholders_naming_the_entry() -> None:
    text = """
- id: returns-typo
  questions: {en: ["return?"], ru: ["возврат?"], zh: ["退货？"]}
  answer:
    en: "Within {return_window} days."
    ru: "В течение {return_window_days} дн."
    zh: "{return_window_days}天内。"
"""
    entries, errors = parse_faq_yaml(text)
    assert entries is None
    assert len(errors) == 1
    assert "line 2" in errors[0] and "'returns-typo'" in errors[0] and "answer.en" in errors[0]
    assert "{return_window}" in errors[0] and "{return_window_days}" in errors[0]  # says what is known
    assert set(FACTS) >= {"referral_referee_reward", "referral_referrer_points", "return_window_days",
                          "staff_hours"}
