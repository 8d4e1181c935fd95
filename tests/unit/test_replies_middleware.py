"""The Bot API session middlewares of bot.replies, against a mocked Telegram."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.methods import TelegramMethod

from bot.replies import EditsNotModified, PatientReplies
from touchpoint.config import SANDBOX_TOKEN


class Refusing(BaseSession):
    def __init__(self, error: type[Exception], **details: Any) -> None:
        super().__init__()
        self.error, self.details, self.calls = error, details, 0

    async def make_request(self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None) -> Any:
        self.calls += 1
        raise self.error(method=method, **self.details)

    async def close(self) -> None:
        return None

    async def stream_content(self, *args: Any, **kwargs: Any) -> AsyncIterator[bytes]:  # pragma: no cover
        raise NotImplementedError
        yield b""


async def test_an_edit_that_changes_nothing_is_a_success() -> None:
    session = Refusing(TelegramBadRequest, message="Bad Request: message is not modified: specified new "
                                                   "message content and reply markup are exactly the same")
    bot = Bot(SANDBOX_TOKEN, session=session)
    session.middleware(EditsNotModified())
    assert await bot.edit_message_text("same", chat_id=1, message_id=2) is True
    with pytest.raises(TelegramBadRequest):  # a send is not an edit
        await bot.send_message(1, "hello")


async def test_a_429_outside_a_customer_update_is_left_to_the_caller() -> None:
    session = Refusing(TelegramRetryAfter, message="Too Many Requests", retry_after=1)
    bot = Bot(SANDBOX_TOKEN, session=session)
    session.middleware(PatientReplies())
    with pytest.raises(TelegramRetryAfter):  # the outbox sender paces itself
        await bot.send_message(1, "hello")
    assert session.calls == 1
