"""The durable outbox and delivery records: every outgoing message, whoever produced it."""

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field

from touchpoint.db.base import SQLModel
from touchpoint.db.types import bigint_field, json_field, utc_field


class OutboxMessage(SQLModel, table=True):
    """A proactive message, written in the same transaction as its cause, sent by the sender."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "priority", "due_at"),
        # The claim asks whether a chat has a row in flight or an earlier one pending.
        Index("ix_outbox_chat_status", "chat_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int | None = Field(default=None, foreign_key="customers.id", index=True)
    chat_id: int = bigint_field()
    lane: str = Field(max_length=16)  # reply | transactional | service | marketing
    priority: int = 0  # lower goes first: replies, then transactional, service, marketing
    template: str = Field(max_length=64)
    params: dict[str, Any] = json_field()
    dedupe_key: str | None = Field(default=None, unique=True, max_length=160)
    enrolment_id: int | None = Field(default=None, foreign_key="enrolments.id")
    # Messages sharing a card key are one "live card": later ones edit the earlier message in place.
    card_key: str | None = Field(default=None, max_length=120)
    edit_in_place: bool = False  # True: edit the card silently; False: post anew (with sound)
    journey_key: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(default="pending", max_length=16)  # pending|claimed|sending|sent|failed|skipped
    reason: str | None = Field(default=None, max_length=64)  # why it was delayed, skipped or failed
    due_at: datetime = utc_field()
    expires_at: datetime | None = utc_field(nullable=True, default=None)
    lease_until: datetime | None = utc_field(nullable=True, default=None)
    attempts: int = 0
    last_error: str | None = None  # the channel's words on the latest failed or retried send
    created_at: datetime = utc_field()
    sent_at: datetime | None = utc_field(nullable=True, default=None)


class Delivery(SQLModel, table=True):
    """One per outbox row that the sender tried and settled: sent, or failed for good (blocked:
    the customer blocked the bot). ``sent_at`` is when that was settled; a failed delivery has
    no ``telegram_message_id``."""

    __tablename__ = "deliveries"
    # A button press arrives with (chat, message): find the delivery it belongs to (click-through).
    __table_args__ = (Index("ix_deliveries_chat_message", "chat_id", "telegram_message_id"),)

    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(foreign_key="outbox.id", unique=True)
    customer_id: int | None = Field(default=None, foreign_key="customers.id", index=True)
    chat_id: int = bigint_field()
    telegram_message_id: int | None = None
    card_key: str | None = Field(default=None, max_length=120, index=True)
    status: str = Field(default="sent", max_length=16)  # sent | failed | blocked
    sent_at: datetime = utc_field()
    clicked_at: datetime | None = utc_field(nullable=True, default=None)
