"""The business rules in one place: recording connections and chats, the owner's takeover, and how a
customer is reached (their chat with the bot, or the brand's account within Telegram's 24 hours).

A customer who only ever wrote to the brand's account is *business-only*: Telegram lets the bot
answer them through the connection only while they wrote within the last 24 hours, and never
start a conversation. Everything proactive goes to the bot's own chat, which such a customer
does not have: the contact vetoes in ``touchpoint.business.rules`` skip it with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.business.models import BusinessChat, BusinessConnection
from touchpoint.checks import present, saved_id
from touchpoint.clock import utcnow
from touchpoint.customers.models import Customer
from touchpoint.customers.service import insert_ignoring_conflicts

# Telegram's rule: a business bot may reply only in chats with an incoming message this recent.
REPLY_WINDOW = timedelta(hours=24)


class Closed(StrEnum):
    """Why the bot may not write in a business chat now (also the recorded skip reason)."""

    DISCONNECTED = "business_disconnected"  # the owner disabled or removed the connection
    NO_REPLY_RIGHT = "business_no_reply_right"  # connected without the right to reply
    WINDOW = "business_window_closed"  # the customer's last message is over 24 hours old


@dataclass(frozen=True, slots=True)
class ConnectionFacts:
    id: str
    owner_user_id: int
    owner_name: str
    owner_username: str | None
    can_reply: bool
    is_enabled: bool


async def record_connection(session: AsyncSession, facts: ConnectionFacts,
                            at: datetime | None = None) -> BusinessConnection:
    """A ``business_connection`` update (or getBusinessConnection's answer): the latest word wins.
    Safe when the update and a first business message record it at the same time."""
    now = at or utcnow()
    await session.exec(insert_ignoring_conflicts(session, BusinessConnection).values(
        id=facts.id, owner_user_id=facts.owner_user_id, owner_name="", can_reply=False, is_enabled=True,
        connected_at=now, updated_at=now))
    connection = present(await session.get(BusinessConnection, facts.id, populate_existing=True),
                         "the business connection just recorded")
    connection.owner_user_id = facts.owner_user_id
    connection.owner_name = facts.owner_name[:128]
    connection.owner_username = facts.owner_username
    connection.can_reply = facts.can_reply
    connection.is_enabled = facts.is_enabled
    connection.updated_at = now
    await session.flush()
    return connection


async def _chat(session: AsyncSession, connection_id: str, customer: Customer, now: datetime, *,
                new_customer: bool) -> BusinessChat:
    """The customer's chat with the account, recorded on first sight (safe across processes)."""
    query = select(BusinessChat).where(BusinessChat.connection_id == connection_id,
                                       BusinessChat.chat_id == customer.telegram_id)
    chat = (await session.exec(query)).first()
    if chat is not None:
        return chat
    bot_chat = not new_customer and await _has_bot_chat(session, saved_id(customer))
    await session.exec(insert_ignoring_conflicts(session, BusinessChat).values(
        connection_id=connection_id, chat_id=customer.telegram_id, customer_id=saved_id(customer),
        created_at=now, bot_chat=bot_chat))
    return present((await session.exec(query)).first(), "the business chat just recorded")


async def _has_bot_chat(session: AsyncSession, customer_id: int) -> bool:
    """A customer known before their first business chat came through the bot itself (every
    customer from before Business mode did), unless they too came through a brand's account."""
    business_only = (await session.exec(select(BusinessChat.id).where(
        BusinessChat.customer_id == customer_id, col(BusinessChat.bot_chat).is_(False)).limit(1))).first()
    return business_only is None


async def customer_wrote(session: AsyncSession, connection_id: str, customer: Customer, *,
                         new_customer: bool, at: datetime | None = None) -> BusinessChat:
    """A customer's message in a business chat opens Telegram's 24-hour reply window.
    ``new_customer``: this message is the first we know of them (they have no chat with the bot)."""
    now = at or utcnow()
    chat = await _chat(session, connection_id, customer, now, new_customer=new_customer)
    chat.last_incoming_at = now
    await session.flush()
    return chat


async def owner_wrote(session: AsyncSession, connection_id: str, customer: Customer, quiet: timedelta, *,
                      new_customer: bool, at: datetime | None = None) -> BusinessChat:
    """The owner typed in the chat themselves: the bot keeps quiet there for ``quiet``."""
    now = at or utcnow()
    chat = await _chat(session, connection_id, customer, now, new_customer=new_customer)
    chat.owner_quiet_until = now + quiet
    await session.flush()
    return chat


def owner_has_taken_over(chat: BusinessChat, now: datetime | None = None) -> bool:
    return chat.owner_quiet_until is not None and chat.owner_quiet_until > (now or utcnow())


async def bot_chat_started(session: AsyncSession, chat_id: int) -> None:
    """The customer started the bot itself: proactive messages may go there from now on."""
    await session.exec(update(BusinessChat).where(  # type: ignore[call-overload]
        col(BusinessChat.chat_id) == chat_id, col(BusinessChat.bot_chat).is_(False)).values(bot_chat=True))


@dataclass(frozen=True, slots=True)
class Route:
    """How a business-only customer is reached: the connection of the chat they wrote in last."""

    connection_id: str
    closed: Closed | None  # None: the bot may write there now


def judge(connection: BusinessConnection, chat: BusinessChat, now: datetime) -> Closed | None:
    """Telegram's rules for writing in ``chat`` through ``connection`` at ``now``."""
    if not connection.is_enabled:
        return Closed.DISCONNECTED
    if not connection.can_reply:
        return Closed.NO_REPLY_RIGHT
    if chat.last_incoming_at is None or chat.last_incoming_at <= now - REPLY_WINDOW:
        return Closed.WINDOW
    return None


async def business_routes(session: AsyncSession, *, chat_ids: set[int] | None = None,
                          customer_ids: set[int] | None = None,
                          at: datetime | None = None) -> dict[int, Route]:
    """The business route of each business-only customer among ``chat_ids`` (Telegram ids) or
    ``customer_ids``, keyed the same way; customers with a bot chat are not in it."""
    by_customer = customer_ids is not None
    wanted = customer_ids if by_customer else chat_ids
    if not wanted:
        return {}
    now = at or utcnow()
    key = col(BusinessChat.customer_id) if by_customer else col(BusinessChat.chat_id)
    rows = (await session.exec(
        select(BusinessChat, BusinessConnection)
        .join(BusinessConnection, col(BusinessConnection.id) == BusinessChat.connection_id)
        .where(key.in_(wanted), col(BusinessChat.bot_chat).is_(False))
    )).all()
    latest: dict[int, tuple[BusinessChat, BusinessConnection]] = {}
    for chat, connection in rows:
        who = chat.customer_id if by_customer else chat.chat_id
        seen = latest.get(who)
        if seen is None or _last(chat) > _last(seen[0]):
            latest[who] = (chat, connection)
    return {who: Route(connection.id, judge(connection, chat, now))
            for who, (chat, connection) in latest.items()}


def _last(chat: BusinessChat) -> datetime:
    return chat.last_incoming_at or chat.created_at


async def route_for(session: AsyncSession, chat_id: int, at: datetime | None = None) -> Route | None:
    """None: the customer has a chat with the bot (or no business chat at all); send there."""
    return (await business_routes(session, chat_ids={chat_id}, at=at)).get(chat_id)


async def connections(session: AsyncSession) -> list[tuple[BusinessConnection, int]]:
    """Every connection with its number of chats, the newest first (the console's list)."""
    rows = (await session.exec(select(BusinessConnection).order_by(
        col(BusinessConnection.connected_at).desc()))).all()
    counts: dict[str, int] = {}
    for connection_id in (await session.exec(select(BusinessChat.connection_id))).all():
        counts[connection_id] = counts.get(connection_id, 0) + 1
    return [(connection, counts.get(connection.id, 0)) for connection in rows]
