"""Bot API calls made while handling an update, made to succeed where Telegram's refusal is not a
failure of the answer.

* An edit that changes nothing ("message is not modified", a repeated tap) is a success.
* A 429 on a reply to the customer: a short ``retry_after`` (``reply_retry_max_wait_s``) is waited
  out and the reply sent; a longer one queues the reply through the outbox (in the update's own
  transaction) to go as soon as Telegram allows, and the handler carries on as if it was sent.

Both are Bot API session middlewares, so every handler gets them without doing anything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageCaption,
    EditMessageMedia,
    EditMessageReplyMarkup,
    EditMessageText,
    SendMessage,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import Chat, InlineKeyboardMarkup, Message, TelegramObject
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.messaging.outbox import enqueue
from touchpoint.messaging.reply import REPLY_TEMPLATE
from touchpoint.messaging.rules import Lane

log = logging.getLogger(__name__)
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

EDITS = (EditMessageText, EditMessageReplyMarkup, EditMessageCaption, EditMessageMedia)
MAX_SHORT_WAITS = 2


class EditsNotModified(BaseRequestMiddleware):
    """An edit whose content is already there (a repeated tap) counts as done."""

    async def __call__(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Any:
        try:
            return await make_request(bot, method)
        except TelegramBadRequest as exc:
            if isinstance(method, EDITS) and "message is not modified" in exc.message:
                return True  # what editMessage* returns for a message that is not the bot's own
            raise


@dataclass(frozen=True, slots=True)
class ReplyContext:
    session: AsyncSession
    settings: Settings
    customer: Customer


_CONTEXT: ContextVar[ReplyContext | None] = ContextVar("touchpoint_reply_context", default=None)


class InteractiveReplies(BaseMiddleware):
    """Marks the Bot API calls made while a customer's update is handled (outer, after the customer
    is known): those are the replies PatientReplies looks after."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        customer: Customer | None = data.get("customer")
        if customer is None or "session" not in data:
            return await handler(event, data)
        token = _CONTEXT.set(ReplyContext(data["session"], data["settings"], customer))
        try:
            return await handler(event, data)
        finally:
            _CONTEXT.reset(token)


class PatientReplies(BaseRequestMiddleware):
    """A 429 on a reply to the customer being answered: wait briefly, or queue it in the outbox."""

    def __init__(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.sleep = sleep

    async def __call__(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Any:
        waits = 0
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                context = _CONTEXT.get()
                if context is None or not _to_customer(method, context.customer):
                    raise
                if exc.retry_after <= context.settings.reply_retry_max_wait_s and waits < MAX_SHORT_WAITS:
                    waits += 1
                    log.info("reply held back %ss by Telegram, waiting", exc.retry_after)
                    await self.sleep(exc.retry_after)
                    continue
                if isinstance(method, AnswerCallbackQuery):
                    return True  # the button's spinner stops by itself; nothing to deliver later
                queued = await _queue(context, method, exc.retry_after)
                if queued is None:
                    raise
                log.info("reply held back %ss by Telegram, queued in the outbox", exc.retry_after)
                return queued.as_(bot)


def _to_customer(method: TelegramMethod[Any], customer: Customer) -> bool:
    if isinstance(method, AnswerCallbackQuery):
        return True
    return getattr(method, "chat_id", None) == customer.telegram_id


def _buttons(markup: Any) -> list[list[dict[str, str]]]:
    if not isinstance(markup, InlineKeyboardMarkup):
        return []
    rows = []
    for row in markup.inline_keyboard:
        buttons = []
        for button in row:
            if button.callback_data is not None:
                buttons.append({"text": button.text, "callback_data": button.callback_data})
            elif button.url is not None:
                buttons.append({"text": button.text, "url": button.url})
        if buttons:
            rows.append(buttons)
    return rows


async def _queue(context: ReplyContext, method: TelegramMethod[Any], retry_after: int) -> Message | None:
    """The reply as an outbox row due when Telegram allows; a stand-in for the message it will be.
    An edit that could not be made is sent as a new message then."""
    if not isinstance(method, SendMessage | EditMessageText):
        return None
    customer = context.customer
    now = utcnow()
    await enqueue(
        context.session, context.settings, customer, REPLY_TEMPLATE,
        {"text": method.text, "buttons": _buttons(method.reply_markup)},
        lane=Lane.REPLY, due_at=now + timedelta(seconds=retry_after), wait_for_quiet_hours=False,
    )
    return Message(
        message_id=0, date=now, chat=Chat(id=customer.telegram_id, type="private"), text=method.text
    )
