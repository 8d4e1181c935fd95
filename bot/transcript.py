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
from sqlalchemy import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.checks import BrokenInvariant, saved_id
from touchpoint.customers.models import Customer
from touchpoint.handoff.models import TranscriptMessage
from touchpoint.handoff.service import transcript_row

_TAG = re.compile(r"<[^>]+>")
_MEDIA = ("photo", "document", "voice", "sticker", "video", "audio", "video_note", "contact", "location")


class TranscriptRecorder:
    """Lines of one update, written with the update's other work in one INSERT after the handler
    (plain rows, no ORM objects: this runs on every update). Handlers attach them to a conversation;
    the context card has them written first (``write_pending``)."""

    def __init__(self, customer: Customer) -> None:
        self.customer_id = saved_id(customer)
        self.customer = customer
        self.inbound: dict[str, Any] | None = None  # the customer's line, until written
        self.outgoing: list[tuple[str, str]] = []  # (kind, text) the bot sent, until written
        self.conversation_id: int | None = None
        self._inbound_written = False

    def receive(self, body: str, kind: str, telegram_message_id: int | None = None,
                file: tuple[str | None, str] = (None, "")) -> None:
        self.inbound = transcript_row(
            self.customer_id, "in", body, kind=kind, telegram_message_id=telegram_message_id,
            file_id=file[0], file_name=file[1],
        )

    def attach(self, conversation_id: int) -> None:
        """Before the card is posted: a line already written keeps no conversation."""
        if self._inbound_written:
            raise BrokenInvariant("attach the update's lines before posting the card")
        self.conversation_id = conversation_id
        if self.inbound is not None:
            self.inbound["conversation_id"] = conversation_id

    async def write(self, session: AsyncSession) -> None:
        """Everything recorded so far, in one statement in the update's transaction."""
        rows = [self.inbound] if self.inbound is not None else []
        rows += [
            transcript_row(self.customer_id, "out", body, kind=kind, conversation_id=self.conversation_id)
            for kind, body in self.outgoing
        ]
        self._inbound_written = self._inbound_written or self.inbound is not None
        self.inbound, self.outgoing = None, []
        if rows:
            await (await session.connection()).execute(_INSERT, rows)


_INSERT = insert(TranscriptMessage.__table__)  # type: ignore[arg-type]
_current: ContextVar[TranscriptRecorder | None] = ContextVar("touchpoint_transcript", default=None)


def describe(message: Message) -> tuple[str, str]:
    """(kind, text) of a customer message: text as written, media by kind and caption only."""
    if message.text:
        return "text", message.text
    kind = next((k for k in _MEDIA if getattr(message, k, None)), "other")
    if message.sticker is not None:
        return kind, message.sticker.emoji or ""
    return kind, message.caption or ""


def attachment(message: Message) -> tuple[str | None, str]:
    """(file id, file name) of a photo (its largest size) or a document; (None, "") otherwise.
    The console shows them in the conversation, fetched through the Bot API."""
    if message.photo:
        return message.photo[-1].file_id, ""
    if message.document is not None:
        return message.document.file_id, message.document.file_name or ""
    return None, ""


def button_label(query: CallbackQuery) -> str:
    """The label of the pressed button (what the customer saw), not its callback data."""
    markup = getattr(query.message, "reply_markup", None)
    for row in getattr(markup, "inline_keyboard", None) or []:
        for button in row:
            if button.callback_data == query.data:
                return str(button.text)
    return ""


async def write_pending(session: AsyncSession) -> None:
    """The lines of the update being handled go in now: the context card is about to read them."""
    recorder = _current.get()
    if recorder is not None:
        await recorder.write(session)


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
        recorder = TranscriptRecorder(customer)
        if event.message is not None:
            kind, body = describe(event.message)
            recorder.receive(body, kind, event.message.message_id, attachment(event.message))
        elif event.callback_query is not None and (label := button_label(event.callback_query)):
            recorder.receive(label, "button")
        data["transcript"] = recorder
        self.touched.add(customer.id)
        token = _current.set(recorder)
        try:
            result = await handler(event, data)
        finally:
            _current.reset(token)
        await recorder.write(data["session"])
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
