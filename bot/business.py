"""Telegram Business in the bot: the brand's own account answered through a connection.

* ``BusinessGate`` (an update middleware, after the transaction, before the customer is loaded)
  records what Telegram said: a customer's message opens the 24-hour window and, unless the owner
  has taken over or the connection is off, goes on as an ordinary ``message`` update — every
  customer flow (presale, orders, returns, referrals, handoff) answers it, and ``Message.answer``
  replies through the connection. The bot's own messages are never reacted to (loop guard).
* ``BusinessRouting`` (a Bot API request middleware) is where a customer's address is decided:
  a send to a business-only customer goes through the connection of the chat they last wrote in,
  whatever path made it (a handler, the staff topic, the outbox sender); a closed chat is refused
  before Telegram is asked.
* The router takes ``business_connection`` and the business messages the gate passed on: the
  owner's own lines (transcript + quiet time) and customers' lines while the bot stays out. Edits and
  deletions are not asked for: the transcript keeps what was said, as in the bot's own chat.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiogram import BaseMiddleware, Bot, Router
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.dispatcher.middlewares.user_context import EventContext
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.methods import (
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    SendChatAction,
    SendDocument,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import (
    BusinessConnection as TelegramConnection,
)
from aiogram.types import (
    CallbackQuery,
    Message,
    TelegramObject,
    Update,
    User,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.transcript import describe
from touchpoint.business import service as business
from touchpoint.business.models import BusinessConnection
from touchpoint.checks import present, saved_id
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.customers.service import ChatUser, get_customer_by_telegram_id, upsert_customer
from touchpoint.db import Database
from touchpoint.db.faults import is_database_unavailable
from touchpoint.handoff.service import add_transcript

log = logging.getLogger(__name__)
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


# What may go on a customer's behalf through a connection (copyMessage may not: Telegram refuses).
ROUTABLE = (SendMessage, SendPhoto, SendDocument, SendChatAction, EditMessageText, EditMessageCaption,
            EditMessageReplyMarkup)


@dataclass(frozen=True, slots=True)
class UpdateRoute:
    """The chat the update being handled came from, and the connection it came through (None: the
    bot's own chat). Replies to that chat follow it without asking the database."""

    chat_id: int
    connection_id: str | None


_ROUTE: ContextVar[UpdateRoute | None] = ContextVar("touchpoint_business_route", default=None)


class BusinessChatClosed(TelegramBadRequest):
    """Telegram would refuse this (connection off, no right to reply, or over 24 hours since the
    customer wrote): refused here, without asking, with the reason."""

    def __init__(self, method: TelegramMethod[Any], reason: business.Closed) -> None:
        super().__init__(method, f"business chat closed: {reason.value}")
        self.reason = reason


def _connection_facts(connection: TelegramConnection) -> business.ConnectionFacts:
    rights = connection.rights
    can_reply = bool(rights.can_reply) if rights is not None else bool(connection.can_reply)
    owner = connection.user
    return business.ConnectionFacts(
        id=connection.id, owner_user_id=owner.id, owner_name=owner.full_name,
        owner_username=owner.username, can_reply=can_reply, is_enabled=connection.is_enabled,
    )


async def known_connection(session: AsyncSession, bot: Bot, connection_id: str) -> BusinessConnection | None:
    """The connection as recorded, asking Telegram about one we missed the update of."""
    connection = await session.get(BusinessConnection, connection_id)
    if connection is not None:
        return connection
    try:
        described = await bot.get_business_connection(connection_id)
    except TelegramAPIError:
        log.warning("business connection unknown to Telegram, update ignored")
        return None
    return await business.record_connection(session, _connection_facts(described))


def _is_start(message: Message) -> bool:
    return message.chat.type == "private" and (message.text or "").startswith("/start")


class BusinessGate(BaseMiddleware):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        context: EventContext | None = data.get("event_context")
        chat = data.get("event_chat")
        if event.message is not None and _is_start(event.message):
            # Every chat with the bot begins with /start: from now on it can be written to.
            await business.bot_chat_started(data["session"], event.message.chat.id)
        if event.business_message is not None:
            event = await self._business_message(event.business_message, event, data)
            if event is None:
                return None
        connection_id = context.business_connection_id if context is not None else None
        if (event.callback_query is not None and connection_id
                and not await self._may_answer_button(event.callback_query, connection_id, data)):
            return None
        token = _ROUTE.set(UpdateRoute(chat.id, connection_id) if chat is not None else None)
        try:
            return await handler(event, data)
        finally:
            _ROUTE.reset(token)

    async def _business_message(
        self, message: Message, update: Update, data: dict[str, Any]
    ) -> Update | None:
        """A customer's message the bot may answer becomes an ordinary message update; the rest go on
        as they are (to the business router), and the bot's own are dropped here."""
        bot: Bot = data["bot"]
        if message.sender_business_bot is not None or (message.from_user and message.from_user.id == bot.id):
            return None  # the bot's own message, echoed back: never react to it
        session: AsyncSession = data["session"]
        connection_id = message.business_connection_id or ""
        connection = await known_connection(session, bot, connection_id)
        if connection is None or message.from_user is None:
            return None
        if message.from_user.id == connection.owner_user_id:
            return update  # the owner typing: the router writes it down and goes quiet
        customer, new = await _customer_behind(session, message.from_user, self.settings)
        chat = await business.customer_wrote(session, connection.id, customer, new_customer=new)
        if business.owner_has_taken_over(chat) or business.judge(connection, chat, utcnow()) is not None:
            return update  # someone else answers here: the router keeps the line for the transcript
        return Update(update_id=update.update_id, message=message).as_(bot)

    @staticmethod
    async def _may_answer_button(query: CallbackQuery, connection_id: str, data: dict[str, Any]) -> bool:
        connection = await known_connection(data["session"], data["bot"], connection_id)
        if connection is not None and connection.is_enabled and connection.can_reply:
            return True
        await query.answer()  # no spinner left turning; nothing is said through a closed connection
        return False


@contextmanager
def decided_route(chat_id: int, connection_id: str | None) -> Iterator[None]:
    """Sends within this block to ``chat_id`` go through ``connection_id`` (None: the bot's own chat),
    decided already (the outbox sender looks a whole batch up at once): no look-up per send."""
    token = _ROUTE.set(UpdateRoute(chat_id, connection_id))
    try:
        yield
    finally:
        _ROUTE.reset(token)


class BusinessRouting(BaseRequestMiddleware):
    """Sends to a business-only customer go through their connection (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
                       method: TelegramMethod[TelegramType]) -> Any:
        if isinstance(method, ROUTABLE) and method.business_connection_id is None and isinstance(
                method.chat_id, int) and method.chat_id > 0:
            connection_id = await self._connection_for(method, method.chat_id)
            if connection_id is not None:
                method.business_connection_id = connection_id
        return await make_request(bot, method)

    async def _connection_for(self, method: TelegramMethod[Any], chat_id: int) -> str | None:
        current = _ROUTE.get()
        if current is not None and current.chat_id == chat_id:
            return current.connection_id  # a reply in the chat the update came from
        try:
            async with self.db.session() as session:
                route = await business.route_for(session, chat_id)
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            # The database is away: the send goes to the chat itself (the bot's own), so that an
            # "having trouble" answer still reaches a customer who started the bot.
            log.warning("business routing: database unavailable, sending to the chat itself")
            return None
        if route is None:
            return None
        if route.closed is not None:
            raise BusinessChatClosed(method, route.closed)
        return route.connection_id


async def attach_routing(bot: Bot, db: Database) -> None:
    """Once per Bot: its every request passes the routing (the dispatcher's start-up calls this)."""
    if not any(isinstance(m, BusinessRouting) for m in bot.session.middleware):
        bot.session.middleware(BusinessRouting(db))


async def copy_to_customer(bot: Bot, session: AsyncSession, chat_id: int, message: Message) -> None:
    """A staff member's message, copied to the customer. Telegram copies nothing through a business
    connection, so for a business-only customer the text, photo or document is sent anew there."""
    route = await business.route_for(session, chat_id)
    if route is None:
        await bot.copy_message(chat_id, message.chat.id, message.message_id)
        return
    send: TelegramMethod[Any]
    caption = message.html_text or None
    if message.photo:
        send = SendPhoto(chat_id=chat_id, photo=message.photo[-1].file_id, caption=caption)
    elif message.document:
        send = SendDocument(chat_id=chat_id, document=message.document.file_id, caption=caption)
    else:
        send = SendMessage(chat_id=chat_id, text=message.html_text)
    if route.closed is not None:
        raise BusinessChatClosed(send, route.closed)
    send.business_connection_id = route.connection_id
    await bot(send)


async def _customer_behind(session: AsyncSession, user: User, settings: Settings) -> tuple[Customer, bool]:
    """The customer writing in a business chat, and whether this is the first we hear of them."""
    known = await get_customer_by_telegram_id(session, user.id)
    if known is not None:
        return known, False
    chat_user = ChatUser(user.id, user.first_name, user.username, user.language_code)
    return await upsert_customer(session, chat_user, settings.default_timezone), True


# ------------------------------------------------------------------------------------- router


async def connection_changed(business_connection: TelegramConnection, session: AsyncSession) -> None:
    await business.record_connection(session, _connection_facts(business_connection))


async def business_line(message: Message, session: AsyncSession, bot: Bot, settings: Settings) -> None:
    """A business message the bot does not answer: the owner's own (the bot goes quiet in that chat
    for a while), or a customer's while the owner is talking or the connection is off. Both go into
    the customer's transcript, so staff see the whole conversation."""
    connection = await known_connection(session, bot, message.business_connection_id or "")
    if connection is None or message.from_user is None:
        return
    kind, body = describe(message)
    if message.from_user.id == connection.owner_user_id:
        # The owner may write first: the chat is the customer's (its id is their user id).
        other_side = message.chat
        person = User(id=other_side.id, is_bot=False, first_name=other_side.first_name or "",
                      username=other_side.username)
        customer, new = await _customer_behind(session, person, settings)
        await business.owner_wrote(session, connection.id, customer,
                                   timedelta(minutes=settings.business_owner_quiet_minutes), new_customer=new)
        add_transcript(session, saved_id(customer), "staff", body, kind=kind,
                       author=message.from_user.first_name, telegram_message_id=message.message_id)
        return
    # The customer, unanswered: the gate has recorded them and their chat already.
    customer = present(await get_customer_by_telegram_id(session, message.from_user.id), "the customer")
    add_transcript(session, saved_id(customer), "in", body, kind=kind, telegram_message_id=message.message_id)


def create_router() -> Router:
    router = Router(name="business")
    router.business_connection.register(connection_changed)
    router.business_message.register(business_line)
    return router
