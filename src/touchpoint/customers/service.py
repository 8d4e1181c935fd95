"""Customer records: upsert from a chat, language, consent and behaviour events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.checks import present
from touchpoint.clock import utcnow
from touchpoint.config import SUPPORTED_LOCALES
from touchpoint.customers.models import BehaviourEvent, Customer


@dataclass(frozen=True, slots=True)
class ChatUser:
    """What a chat tells us about a person; the core never sees aiogram's types."""

    telegram_id: int
    first_name: str = ""
    username: str | None = None
    language_code: str | None = None


def insert_ignoring_conflicts(session: AsyncSession, model: type[Any]) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the session's dialect."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(model).on_conflict_do_nothing()


# "Last seen" feeds win-back (days) and the console: a minute's precision spares most updates a write.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


async def upsert_customer(session: AsyncSession, user: ChatUser, default_timezone: str) -> Customer:
    """Find the customer for a chat user, creating them on first contact (safe across processes)."""
    customer = await get_customer_by_telegram_id(session, user.telegram_id)
    if customer is None:
        return await add_customer(session, user, default_timezone)
    seen_customer(session, customer, user, utcnow())
    return customer


async def add_customer(session: AsyncSession, user: ChatUser, default_timezone: str) -> Customer:
    """First contact: insert the customer, unless another process just did, and load them."""
    now = utcnow()
    await session.exec(
        insert_ignoring_conflicts(session, Customer).values(
            telegram_id=user.telegram_id, first_name=user.first_name[:128],
            username=user.username, language_code=user.language_code,
            timezone=default_timezone, created_at=now, last_seen_at=now,
            marketing_consent=False, nudges_paused=False, reachable=True,
        )
    )
    return present(await get_customer_by_telegram_id(session, user.telegram_id), "the customer just upserted")


def seen_customer(session: AsyncSession, customer: Customer, user: ChatUser, now: datetime) -> None:
    """A known customer wrote: what the chat says about them now. Only changed fields are set, so
    most updates leave the row alone (no UPDATE, nothing for the flush to compare)."""
    fields: dict[str, Any] = {
        "first_name": user.first_name[:128], "username": user.username,
        "language_code": user.language_code,
        "reachable": True,  # a message from the customer proves they no longer block the bot
    }
    if now - customer.last_seen_at >= LAST_SEEN_RESOLUTION:
        fields["last_seen_at"] = now
    for name, value in fields.items():
        if getattr(customer, name) != value:
            setattr(customer, name, value)
    session.add(customer)


async def get_customer_by_telegram_id(session: AsyncSession, telegram_id: int) -> Customer | None:
    result = await session.exec(select(Customer).where(Customer.telegram_id == telegram_id))
    return result.first()


def set_locale(session: AsyncSession, customer: Customer, locale: str) -> None:
    if locale not in SUPPORTED_LOCALES:
        raise ValueError(f"unsupported locale {locale!r}")
    customer.locale = locale
    session.add(customer)


def set_nudges_paused(session: AsyncSession, customer: Customer, paused: bool) -> None:
    customer.nudges_paused = paused
    session.add(customer)


def set_marketing_consent(session: AsyncSession, customer: Customer, granted: bool, *, via: str) -> None:
    """Offers and reminders (marketing journeys) need this opt-in; ``via``: chat | store."""
    customer.marketing_consent = granted
    session.add(customer)
    record_event(session, "consent.marketing", customer_id=customer.id,
                 store_customer_id=customer.store_customer_id, payload={"granted": granted, "via": via})


async def has_decided_marketing(session: AsyncSession, customer: Customer) -> bool:
    query = select(BehaviourEvent.id).where(BehaviourEvent.customer_id == customer.id,
                                            BehaviourEvent.type == "consent.marketing").limit(1)
    return (await session.exec(query)).first() is not None


def record_event(session: AsyncSession, event_type: str, **columns: Any) -> BehaviourEvent:
    """Append a behaviour event in the caller's transaction (journeys react to these); ``columns``
    as for ``event_row``."""
    event = BehaviourEvent(**event_row(event_type, **columns))
    session.add(event)
    return event


def event_row(
    event_type: str,
    *,
    customer_id: int | None = None,
    store_customer_id: str | None = None,
    payload: dict[str, Any] | None = None,
    source: str = "bot",
) -> dict[str, Any]:
    """The column values of a behaviour event, for ``record_event`` or a plain INSERT."""
    return {
        "customer_id": customer_id, "store_customer_id": store_customer_id, "type": event_type,
        "payload": payload or {}, "source": source, "occurred_at": utcnow(),
    }
