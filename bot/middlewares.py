"""The middleware chain every update passes: transaction (with de-dup) → customer → flood → i18n.

Behaviour events are recorded by an inner middleware from the handler's ``event`` flag.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.flags import get_flag
from aiogram.types import CallbackQuery, Chat, Message, TelegramObject, Update, User
from aiogram.utils.i18n import I18n, I18nMiddleware
from sqlalchemy import bindparam, insert
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.aftersales.models import AftersalesDraft
from touchpoint.channels.flood import FloodGate, FloodVerdict
from touchpoint.channels.models import ProcessedUpdate
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import BehaviourEvent, Customer
from touchpoint.customers.service import (
    ChatUser,
    add_customer,
    event_row,
    insert_ignoring_conflicts,
    seen_customer,
    upsert_customer,
)
from touchpoint.db import Database
from touchpoint.handoff.models import Conversation
from touchpoint.handoff.service import has_active_handoff
from touchpoint.i18n import resolve_locale
from touchpoint.messaging.models import Delivery

log = logging.getLogger(__name__)
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class SerializePerChat(BaseMiddleware):
    """Updates of one chat (one forum topic) are handled one after another, in arrival order.

    Polling handles updates concurrently; without this a customer's second message could
    overtake the first on its way to staff. Registered first: the lock is taken before any
    await, and asyncio locks are fair, so the order is the order updates arrived in.
    """

    def __init__(self) -> None:
        self._locks: dict[tuple[int, int | None], asyncio.Lock] = {}
        self._users: dict[tuple[int, int | None], int] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        chat: Chat | None = data.get("event_chat")
        if chat is None:
            return await handler(event, data)
        key = (chat.id, data.get("event_thread_id"))
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                return await handler(event, data)
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]


# Built once (SQLAlchemy then reuses the compiled statement instead of re-deriving its cache key)
# and run on the session's connection: plain SQL, none of the ORM's per-statement work.
_PROCESSED = ProcessedUpdate.__table__
_HANDLED = sa_select(_PROCESSED.c.update_id).where(
    _PROCESSED.c.update_id == bindparam("update_id"), _PROCESSED.c.bot_id == bindparam("bot_id")
)
_MARK = insert(_PROCESSED)
_EVENT = insert(BehaviourEvent.__table__)  # type: ignore[arg-type]


class UpdateTransaction(BaseMiddleware):
    """One session and one commit per update: its id (de-dup), the customer and the handler's work.

    Telegram may deliver an update twice. Updates of one chat are handled one after another (the
    per-chat lock here, Redis event isolation across processes), so a redelivery finds the first
    delivery's id committed and is skipped; the unique key stays the last guard. The id is written
    with the commit, not first: on SQLite an early write would hold the database lock while the
    handler waits on Telegram, and a handler that commits midway (an escalation) would commit the
    id with its first half, so a crash after it would skip the redelivery. If the handler fails,
    its work is rolled back but the update is still marked handled, so a poison update is not
    retried forever.
    """

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        ids = {"update_id": event.update_id, "bot_id": data["bot"].id}
        async with self.db.sessions() as session:
            if (await (await session.connection()).execute(_HANDLED, ids)).first() is not None:
                log.info("update %s already handled, skipped", event.update_id)
                return None
            data["session"] = session
            try:
                result = await handler(event, data)
                await session.flush()  # the handler's own errors surface here, not as a duplicate
            except BaseException:
                await session.rollback()
                await self._mark_handled(event.update_id, ids["bot_id"], data.get("chat_user"))
                raise
            try:
                # The session's connection now: a handler that committed midway released the first.
                await (await session.connection()).execute(_MARK, {**ids, "received_at": utcnow()})
                await session.commit()
            except IntegrityError:
                await session.rollback()
                log.info("update %s handled by another process, its work rolled back", event.update_id)
                return None
        return result

    async def _mark_handled(self, update_id: int, bot_id: int, user: ChatUser | None) -> None:
        """After a failure: the update counts as handled and a first-time customer is kept."""
        try:
            async with self.db.session() as session:
                await session.exec(insert_ignoring_conflicts(session, ProcessedUpdate).values(
                    update_id=update_id, bot_id=bot_id, received_at=utcnow()))
                if user is not None:
                    await upsert_customer(session, user, self.settings.default_timezone)
        except Exception:  # the database itself is down: the redelivery will be handled then
            log.warning("could not mark update %s handled", update_id)


@dataclass(frozen=True, slots=True)
class CustomerState:
    """What routing asks about a customer on every update, read with the customer in one statement
    (as it was when the update arrived): their open conversation with staff, the after-sales step
    they are in, and for a button the proactive message (delivery) it was on. Filters use it to
    skip their own query when there is nothing to find."""

    open_conversation_id: int | None = None
    draft_step: str | None = None
    delivery_id: int | None = None


_CUSTOMER_WITH_STATE = select(
    Customer,
    select(Conversation.id)
    .where(Conversation.customer_id == Customer.id, Conversation.status == "open")
    .order_by(col(Conversation.id).desc()).limit(1).scalar_subquery(),
    select(AftersalesDraft.step).where(AftersalesDraft.customer_id == Customer.id).scalar_subquery(),
    select(Delivery.id)
    .where(Delivery.chat_id == bindparam("chat_id"), Delivery.telegram_message_id == bindparam("message_id"))
    .order_by(col(Delivery.id).desc()).limit(1).scalar_subquery(),
).where(Customer.telegram_id == bindparam("telegram_id"))


# A customer's business message arrives here as a plain message (bot/business.py); what stays a
# business update is the owner's or Telegram's, and has no customer behind it.
BUSINESS_UPDATE_TYPES = frozenset({"business_connection", "business_message", "edited_business_message",
                                   "deleted_business_messages"})


class KnownCustomer(BaseMiddleware):
    """Upserts the customer behind a private chat and works out their locale."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        data["customer"] = None
        data["locale"] = resolve_locale(
            None, user.language_code if user else None, self.settings.default_locale
        )
        if user is not None and not user.is_bot and (chat is None or chat.type == "private") and not (
            isinstance(event, Update) and event.event_type in BUSINESS_UPDATE_TYPES
        ):
            chat_user = ChatUser(user.id, user.first_name, user.username, user.language_code)
            data["chat_user"] = chat_user  # kept by the transaction even if the handler fails
            customer, data["customer_state"] = await self._load(data["session"], chat_user, event)
            data["customer"] = customer
            data["locale"] = resolve_locale(
                customer.locale, customer.language_code, self.settings.default_locale
            )
        return await handler(event, data)

    async def _load(
        self, session: AsyncSession, user: ChatUser, event: TelegramObject
    ) -> tuple[Customer, CustomerState | None]:
        button = event.callback_query.message if isinstance(event, Update) and event.callback_query else None
        row = (await session.exec(_CUSTOMER_WITH_STATE, params={
            "telegram_id": user.telegram_id,
            "chat_id": button.chat.id if button else None,
            "message_id": button.message_id if button else None,
        })).first()
        if row is None:
            # First contact: a new customer has no conversation, draft or proactive message yet.
            return await add_customer(session, user, self.settings.default_timezone), CustomerState()
        customer, conversation_id, draft_step, delivery_id = row
        seen_customer(session, customer, user, utcnow())
        return customer, CustomerState(conversation_id, draft_step, delivery_id)


class FloodControl(BaseMiddleware):
    """Too many messages too fast: one localised "slow down", then silence for a moment.

    Messages are what floods; button taps are navigation and have their own, far looser budget
    (``button_gate``), so browsing the menu never mutes anyone."""

    def __init__(self, gate: FloodGate, i18n: I18n, button_gate: FloodGate | None = None) -> None:
        self.gate = gate
        self.i18n = i18n
        self.button_gate = button_gate

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        customer: Customer | None = data.get("customer")
        if customer is None or (event.message is None and event.callback_query is None):
            return await handler(event, data)
        gate = self.gate if event.callback_query is None else self.button_gate
        if gate is None:
            return await handler(event, data)
        verdict = await gate.check(customer.telegram_id)
        # A customer talking to staff may paste many lines: the relay coalesces, nothing is dropped.
        if verdict is FloodVerdict.ALLOW or await self._in_handoff(data, customer):
            return await handler(event, data)
        text = self.i18n.gettext("flood.slow_down", locale=data["locale"])
        if event.callback_query is not None:
            await event.callback_query.answer(text if verdict is FloodVerdict.WARN else None)
        elif verdict is FloodVerdict.WARN:
            await data["bot"].send_message(customer.telegram_id, text)
        return None

    @staticmethod
    async def _in_handoff(data: dict[str, Any], customer: Customer) -> bool:
        state: CustomerState | None = data.get("customer_state")
        if state is not None:
            return state.open_conversation_id is not None
        return await has_active_handoff(data["session"], customer.id or 0)


class CustomerI18n(I18nMiddleware):
    """aiogram's i18n, in the locale the customer middleware worked out."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        return str(data.get("locale") or self.i18n.default_locale)


class BehaviourEvents(BaseMiddleware):
    """Records the handler's ``event`` flag as a behaviour event once the handler succeeded."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        result = await handler(event, data)
        event_type = get_flag(data, "event")
        customer: Customer | None = data.get("customer")
        if event_type and customer is not None:
            payload = data.get("event_payload") or {}
            if isinstance(event, CallbackQuery | Message):
                payload = {"via": "button" if isinstance(event, CallbackQuery) else "text", **payload}
            # A plain INSERT, not an ORM object: this runs on most updates. Events the handler
            # recorded go in first, so ids keep the order things happened in.
            session: AsyncSession = data["session"]
            await session.flush()
            row = event_row(event_type, customer_id=customer.id, payload=payload)
            await (await session.connection()).execute(_EVENT, row)
        return result
