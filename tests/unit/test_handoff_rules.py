"""Pure handoff rules: distress, working hours, the wait estimate, the group budget."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from touchpoint.config import load_settings
from touchpoint.handoff.rules import WorkingHours, expected_wait_minutes, is_distress
from touchpoint.messaging.pacing import GroupBudget

LEXICON = load_settings(_env_file=None).handoff_distress_words


@pytest.mark.parametrize(
    "text",
    [
        "This is a SCAM",
        "Это ужас какой-то",
        "верните деньги немедленно",
        "我真的很生气",
        "这是骗子公司",
        "WHERE IS MY ORDER!",
    ],
)
def test_distress_is_recognised_in_each_language(text: str) -> None:
    assert is_distress(text, LEXICON)


@pytest.mark.parametrize(
    "text",
    [
        "Where is my order?",
        "I'd like a refund",
        "Есть синий?",
        "你好，我想问一下",
        "scampi recipe",
        "OK!",
        "I am not angryish",
    ],
)
def test_ordinary_messages_are_not_distress(text: str) -> None:
    assert not is_distress(text, LEXICON)


@pytest.mark.parametrize(
    "text",
    [
        "ужасный сервис",  # ru entries are stems: inflected forms count
        "Это УЖАСНО",
        "вы меня обманули",
        "мошенничество чистой воды",
        "Отвратительное обслуживание",
        "худшая покупка",
        "Верните деньги!",
        "верните   деньги",  # any run of spaces inside a phrase
        "какой кошмарный день",
        "меня это бесит",
        "Это позорище",
        "我觉得太差了",  # zh: anywhere in the text, no spaces needed
        "这家店是骗子吧",
        "refund now please",
    ],
)
def test_inflected_and_unspaced_forms_count(text: str) -> None:
    assert is_distress(text, LEXICON)


@pytest.mark.parametrize(
    "text",
    [
        "Бесплатная доставка есть?",  # "бесит" is an entry, not a stem "бес"
        "безусловно, спасибо",
        "обычный заказ",
        "худой кот",
        "это самообман",  # a stem still starts a word
        "Terribleness is not a word",  # en entries stay whole words
        "scammy",
    ],
)
def test_stems_do_not_overreach(text: str) -> None:
    assert not is_distress(text, LEXICON)


def test_the_stem_mark_is_what_makes_a_prefix() -> None:
    lexicon = {"en": ["hell", "rubbish*"], "de": ["schrecklich*"], "ru": ["ужас"]}
    assert not is_distress("hello there", lexicon)  # a plain entry is a whole word in any language
    assert is_distress("what the hell", lexicon)
    assert is_distress("rubbishy kettle", lexicon)
    assert is_distress("ein schreckliches Gerät", lexicon)
    assert not is_distress("ужасный", lexicon)  # without "*" even a ru entry is a whole word
    assert is_distress("ну и ужас", lexicon)
    assert is_distress("да ну к черту", {"ru": ["чёрт*"]})  # ё and е are one letter here
    assert is_distress("Чёрт!", {"ru": ["черт"]})
    assert not is_distress("anything", {"en": ["*", " "]})  # an empty entry never matches


def test_chinese_entries_match_inside_words_whatever_the_key() -> None:
    assert is_distress("你们真是垃圾服务", {"zh": ["垃圾"]})
    assert is_distress("你们真是垃圾服务", {"zh-hant": ["垃圾"]})
    assert not is_distress("垃", {"zh": ["垃圾"]})


HOURS = WorkingHours("Europe/Berlin", 9, 18, frozenset(range(5)))


def test_working_hours_and_next_opening() -> None:
    assert HOURS.is_open(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # Monday 09:00 Berlin
    assert not HOURS.is_open(datetime(2026, 11, 23, 17, 0, tzinfo=UTC))  # 18:00 Berlin
    friday_evening = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)
    opening = HOURS.next_opening(friday_evening)
    assert (opening.weekday(), opening.hour, opening.day) == (0, 9, 30)
    early = HOURS.next_opening(datetime(2026, 11, 24, 5, 0, tzinfo=UTC))  # Tuesday 06:00 Berlin
    assert (early.day, early.hour) == (24, 9)


def test_wait_grows_with_the_queue() -> None:
    assert expected_wait_minutes(0, 4) == 4
    assert expected_wait_minutes(3, 4) == 16


async def test_the_group_budget_paces_under_the_group_limit() -> None:
    """Two posts per ten seconds: the third waits until the first has left the window."""
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds
        await asyncio.sleep(0)

    budget = GroupBudget(max_posts=2, window_s=10.0, clock=lambda: now[0], sleep=sleep)
    turns = []
    for _ in range(5):
        entry = await budget.turn(-1)
        turns.append(now[0])
        await budget.done(-1, entry)
    assert turns[:2] == [0.0, 0.0] and 10.0 <= turns[2] < 10.5 and 20.0 <= turns[4] < 21.0
    other = await budget.turn(-2)  # another group has its own budget
    assert now[0] == turns[4]
    await budget.done(-2, other)
