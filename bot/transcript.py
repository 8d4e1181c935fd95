"""The chat transcript, both ways, for the context card: an update middleware records what the
customer sent and a request middleware catches what the bot answered within that update."""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import EditMessageText, SendDocument, SendMessage, SendPhoto, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import CallbackQuery, Message, TelegramObject, Update

from touchpoint.customers.models import Customer
from touchpoint.handoff.models import TranscriptMessage
from touchpoint.handoff.service import add_transcript

_TAG = re.compile(r"<[^>]+>")
_MEDIA = ("photo", "document", "voice", "sticker", "video", "audio", "video_note", "contact", "location")


class TranscriptRecorder:
    """Lines of one update; handlers attach them to a conversation."""

    def __init__(self, customer: Customer) -> None:
        self.customer = customer
        self.inbound: TranscriptMessage | None = None
        self.outgoing: list[tuple[str, str]] = []  # (kind, text)
        self.conversation_id: int | None = None

    def attach(self, conversation_id: int) -> None:
        self.conversation_id = conversation_id
        if self.inbound is not None:
            self.inbound.conversation_id = conversation_id


_current: ContextVar[TranscriptRecorder | None] = ContextVar("touchpoint_transcript", default=None)


def describe(message: Message) -> tuple[str, str]:
    """(kind, text) of a customer message: text as written, media by kind and caption only."""
    if message.text:
        return "text", message.text
    kind = next((k for k in _MEDIA if getattr(message, k, None)), "other")
    if message.sticker is not None:
        return kind, message.sticker.emoji or ""
    return kind, message.caption or ""


def button_label(query: CallbackQuery) -> str:
    """The label of the pressed button (what the customer saw), not its callback data."""
    markup = getattr(query.message, "reply_markup", None)
    for row in getattr(markup, "inline_keyboard", None) or []:
        for button in row:
            if button.callback_data == query.data:
                return str(button.text)
    return ""


class RecordTranscript(BaseMiddleware):
    def __init__(self, touched: set[int]) -> None:
        self.touched = touched  # the desk prunes these customers' old lines

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        customer: Customer | None = data.get("customer")
        if customer is None or customer.id is None or not isinstance(event, Update):
            return await handler(event, data)
        session = data["session"]
        recorder = TranscriptRecorder(customer)
        if event.message is not None:
            kind, body = describe(event.message)
            recorder.inbound = add_transcript(
                session, customer.id, "in", body, kind=kind, telegram_message_id=event.message.message_id
            )
        elif event.callback_query is not None and (label := button_label(event.callback_query)):
            recorder.inbound = add_transcript(session, customer.id, "in", label, kind="button")
        data["transcript"] = recorder
        self.touched.add(customer.id)
        token = _current.set(recorder)
        try:
            result = await handler(event, data)
        finally:
            _current.reset(token)
        for kind, body in recorder.outgoing:
            add_transcript(
                session, customer.id, "out", body, kind=kind, conversation_id=recorder.conversation_id
            )
        return result


class CaptureReplies(BaseRequestMiddleware):
    """Bot messages to the customer of the update being handled go into its transcript."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        response = await make_request(bot, method)
        recorder = _current.get()
        if recorder is None:
            return response
        if (
            isinstance(method, SendMessage | EditMessageText)
            and method.chat_id == recorder.customer.telegram_id
        ):
            recorder.outgoing.append(("text", html.unescape(_TAG.sub("", method.text))))
        elif isinstance(method, SendPhoto | SendDocument) and method.chat_id == recorder.customer.telegram_id:
            kind = "photo" if isinstance(method, SendPhoto) else "document"
            recorder.outgoing.append((kind, html.unescape(_TAG.sub("", method.caption or ""))))
        return response
