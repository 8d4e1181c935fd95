"""Reservation refusals read naturally (plural forms), and staff notes take the staff lane."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiogram.utils.i18n import I18n
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.handlers import presale
from touchpoint.catalog.codes import reservation_code
from touchpoint.catalog.service import ReserveOutcome
from touchpoint.config import Settings
from touchpoint.db import Database
from touchpoint.i18n import DOMAIN, find_locales_dir, get_translator
from touchpoint.messaging.pacing import GroupBudget
from touchpoint.messaging.staff import StaffLane, StaffPost, enqueue_staff_post

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
        self.posts: list[StaffPost] = []

    async def post(self, post: StaffPost) -> None:
        self.posts.append(post)


class FakeDesk:
    def __init__(self, db: Database, group: RecordingGroup) -> None:
        self.lane = StaffLane(db, group, GroupBudget(20, 60.0))

    def t(self, key: str, /, **params: Any) -> str:
        return get_translator()("en", key, **params)

    def put(self, session: AsyncSession, post: StaffPost) -> None:
        enqueue_staff_post(session, post)


async def test_reservation_notes_go_through_the_staff_lane_and_merge(sqlite_db: Database) -> None:
    """A burst of holds was 87 direct posts (66 answered 429): now the notes are durable rows of the
    staff lane, and notes still waiting there merge into one post."""
    group = RecordingGroup()
    desk = FakeDesk(sqlite_db, group)
    settings = Settings(staff_chat_id=-100123)
    for number in range(1, 41):
        async with sqlite_db.session() as session:  # each hold its own update
            presale.notify_staff(desk, session, settings, number, "GRD-003", "alexa")  # type: ignore[arg-type]
    stop = asyncio.Event()
    running = asyncio.create_task(desk.lane.run(stop))
    await desk.lane.idle()
    stop.set()
    await running
    assert len(group.posts) == 1
    text = group.posts[0].text
    assert all(f"#{reservation_code(n)}:" in text for n in range(1, 41))  # the code said at the till
    assert {p.chat_id for p in group.posts} == {-100123}
