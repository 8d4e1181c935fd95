"""The Telegram implementation of the core's Channel: aiogram errors become channel errors."""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.business import decided_route
from touchpoint.messaging import (
    ChannelBlocked,
    ChannelRejected,
    ChannelRetryAfter,
    ChannelUnavailable,
    OutgoingMessage,
    SendResult,
)


def inline_markup(message: OutgoingMessage) -> InlineKeyboardMarkup | None:
    if not message.buttons:
        return None
    return InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=b.text, callback_data=b.callback_data, url=b.url) for b in row]
        for row in message.buttons
    ])


class TelegramChannel:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, message: OutgoingMessage) -> SendResult:
        if not message.addressed:
            return await self._send(message)
        closed = message.extra.get("business_closed")
        if closed is not None:  # Telegram would refuse it: not asked
            raise ChannelRejected(f"business chat closed: {closed}")
        connection_id = message.extra.get("business_connection_id")
        with decided_route(message.chat_id, connection_id if isinstance(connection_id, str) else None):
            return await self._send(message)

    async def _send(self, message: OutgoingMessage) -> SendResult:
        try:
            if message.edit_message_id is not None:
                return await self._edit(message)
            sent = await self.bot.send_message(
                message.chat_id, message.text, reply_markup=inline_markup(message),
                disable_notification=message.disable_notification,
                message_thread_id=message.message_thread_id,
                allow_paid_broadcast=True if message.paid_broadcast else None,
            )
            return SendResult(sent.message_id)
        except TelegramRetryAfter as exc:
            raise ChannelRetryAfter(exc.retry_after) from exc
        except TelegramForbiddenError as exc:
            raise ChannelBlocked(exc.message) from exc
        except TelegramBadRequest as exc:
            raise ChannelRejected(exc.message) from exc
        except (TimeoutError, TelegramNetworkError, TelegramServerError) as exc:
            raise ChannelUnavailable(str(exc)) from exc

    async def _edit(self, message: OutgoingMessage) -> SendResult:
        if message.edit_message_id is None:
            return await self._send(message)
        try:
            edited = await self.bot.edit_message_text(
                text=message.text, chat_id=message.chat_id, message_id=message.edit_message_id,
                reply_markup=inline_markup(message),
            )
        except TelegramBadRequest as exc:
            if "not modified" in exc.message:
                return SendResult(message.edit_message_id)
            if "not found" in exc.message or "can't be edited" in exc.message:
                # The card was deleted or is too old to edit: post it afresh.
                return await self._send(_as_new(message))
            raise
        return SendResult(edited.message_id if isinstance(edited, Message) else message.edit_message_id)


def _as_new(message: OutgoingMessage) -> OutgoingMessage:
    return OutgoingMessage(chat_id=message.chat_id, text=message.text, buttons=message.buttons,
                           disable_notification=message.disable_notification,
                           message_thread_id=message.message_thread_id,
                           paid_broadcast=message.paid_broadcast)
