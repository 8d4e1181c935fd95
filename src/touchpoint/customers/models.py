"""Customers as the bot knows them, the store's own customer records, and behaviour events."""

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field

from touchpoint.db.base import SQLModel
from touchpoint.db.types import bigint_field, json_field, utc_field


class Customer(SQLModel, table=True):
    """A person in a private chat with the bot. Name and phone are personal data: never log them."""

    __tablename__ = "customers"

    id: int | None = Field(default=None, primary_key=True)
    telegram_id: int = bigint_field(unique=True, index=True)
    first_name: str = ""
    username: str | None = None
    language_code: str | None = None  # as Telegram reports it, e.g. "ru-RU"
    locale: str | None = None  # the customer's own choice through /language
    timezone: str
    store_customer_id: str | None = Field(default=None, index=True)  # linked store record
    phone: str | None = None  # E.164, only once the customer shared it
    marketing_consent: bool = False  # marketing needs an explicit opt-in
    nudges_paused: bool = False  # /stop pauses every proactive nudge; /start resumes
    reachable: bool = True  # False once Telegram answered 403 (blocked the bot)
    created_at: datetime = utc_field()
    last_seen_at: datetime = utc_field()


class StoreCustomer(SQLModel, table=True):
    """The store's record of a customer, pushed through the events API."""

    __tablename__ = "store_customers"

    id: str = Field(primary_key=True, max_length=64)
    name: str = ""
    phone: str | None = Field(default=None, index=True)
    email: str | None = None
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()


class BehaviourEvent(SQLModel, table=True):
    """Something a customer did (in the chat or on the web shop); journeys react to these."""

    __tablename__ = "behaviour_events"
    __table_args__ = (
        Index("ix_behaviour_events_customer_time", "customer_id", "occurred_at"),
        Index("ix_behaviour_events_type_time", "type", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int | None = Field(default=None, foreign_key="customers.id")
    store_customer_id: str | None = Field(default=None, index=True)
    type: str = Field(max_length=64)
    source: str = Field(default="bot", max_length=16)  # bot | store | system
    payload: dict[str, Any] = json_field()
    occurred_at: datetime = utc_field()
