"""Pure handoff rules: distress, working hours, the wait estimate, the paced group queue."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from touchpoint.config import load_settings
from touchpoint.handoff.relay import GroupQueue, Post
from touchpoint.handoff.rules import WorkingHours, expected_wait_minutes, is_distress
from touchpoint.messaging.base import ChannelRetryAfter

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


class FakeGroup:
    def __init__(self, refuse_first: int = 0) -> None:
        self.posts: list[tuple[int | None, str]] = []
        self.refuse = refuse_first
        self.gate = asyncio.Event()

    async def post(self, post: Post) -> None:
        await self.gate.wait()
        if self.refuse:
            self.refuse -= 1
            raise ChannelRetryAfter(0.01)
        self.posts.append(
            (post.thread_id, post.text if post.copy_from is None else f"copy{post.copy_from[1]}")
        )


async def test_queue_coalesces_a_burst_and_keeps_media_in_place() -> None:
    group = FakeGroup(refuse_first=2)
    queue = GroupQueue(group, max_posts=100, window_s=1.0)
    queue.put(Post(-1, 7, ["first"], coalesce_key="c1"))  # taken by the worker at once
    await asyncio.sleep(0)
    queue.put(Post(-1, 7, ["a"], coalesce_key="c1"))
    queue.put(Post(-1, 8, ["other customer"], coalesce_key="c2"))
    queue.put(Post(-1, 7, ["b"], coalesce_key="c1"))
    queue.put(Post(-1, 7, copy_from=(5, 99)))
    queue.put(Post(-1, 7, ["c"], coalesce_key="c1"))
    group.gate.set()
    await asyncio.wait_for(queue.drain(), 5)
    await queue.close()
    assert group.posts == [(7, "first"), (7, "a\n\nb"), (8, "other customer"), (7, "copy99"), (7, "c")]


async def test_queue_paces_under_the_group_limit() -> None:
    now = [0.0]
    sent_at: list[float] = []

    class Timed(FakeGroup):
        async def post(self, post: Post) -> None:
            sent_at.append(now[0])
            await super().post(post)

    async def sleep(seconds: float) -> None:
        now[0] += seconds
        await asyncio.sleep(0)

    group = Timed()
    group.gate.set()
    queue = GroupQueue(group, max_posts=2, window_s=10.0, clock=lambda: now[0], sleep=sleep)
    for n in range(5):
        queue.put(Post(-1, n, [str(n)]))
    await asyncio.wait_for(queue.drain(), 5)
    await queue.close()
    assert [text for _, text in group.posts] == ["0", "1", "2", "3", "4"]
    assert sent_at[:2] == [0.0, 0.0] and 10.0 < sent_at[2] < 10.5 and 20.0 < sent_at[4] < 21.0
