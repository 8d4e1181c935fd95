"""Reservation refusals read naturally (plural forms), and staff notes take the paced group queue."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram.utils.i18n import I18n

from bot.handlers import presale
from touchpoint.catalog.codes import reservation_code
from touchpoint.catalog.service import ReserveOutcome
from touchpoint.config import Settings
from touchpoint.handoff.relay import GroupQueue, Post
from touchpoint.i18n import DOMAIN, find_locales_dir, get_translator

I18N = I18n(path=find_locales_dir(), default_locale="en", domain=DOMAIN)


@pytest.mark.parametrize(("locale", "limit", "expected"), [
    ("en", 1, "You already hold 1 reservation,"), ("en", 3, "You already hold 3 reservations,"),
    ("ru", 3, "3 активные брони"), ("ru", 5, "5 активных броней"), ("ru", 21, "21 активная бронь"),
    ("zh", 3, "您已有 3 个有效预留"),
])
def test_too_many_holds_is_said_with_the_right_plural(locale: str, limit: int, expected: str) -> None:
    with I18N.context(), I18N.use_locale(locale):
        text = presale.reserve_refusal(ReserveOutcome(None, "too_many", limit=limit))
    assert expected in text


def test_every_refusal_has_its_own_words() -> None:
    with I18N.context(), I18N.use_locale("en"):
        texts = {reason: presale.reserve_refusal(ReserveOutcome(None, reason, limit=5))
                 for reason in ("too_many", "product_held", "too_often", "out_of_stock", "unknown")}
    assert len(set(texts.values())) == len(texts)
    assert "5 reservations an hour" in texts["too_often"]


class RecordingGroup:
    def __init__(self) -> None:
        self.posts: list[Post] = []

    async def post(self, post: Post) -> None:
        self.posts.append(post)


class FakeDesk:
    def __init__(self, sender: RecordingGroup) -> None:
        self.queue = GroupQueue(sender, max_posts=20, window_s=60.0)

    def t(self, key: str, /, **params: Any) -> str:
        return get_translator()("en", key, **params)


async def test_reservation_notes_go_through_the_paced_queue_and_merge() -> None:
    """A burst of holds was 87 direct posts (66 answered 429): now the notes queue behind the
    desk's pacing and notes still waiting merge into one post."""
    group = RecordingGroup()
    desk = FakeDesk(group)
    settings = Settings(staff_chat_id=-100123)
    for number in range(1, 41):
        presale.notify_staff(desk, settings, number, "GRD-003", "alexa")  # type: ignore[arg-type]
    await desk.queue.drain()
    await desk.queue.close()
    assert 1 <= len(group.posts) <= 2  # the first may leave before the rest arrive
    text = "\n\n".join(p.text for p in group.posts)
    assert all(f"#{reservation_code(n)}:" in text for n in range(1, 41))  # the code said at the till
    assert {p.chat_id for p in group.posts} == {-100123}
