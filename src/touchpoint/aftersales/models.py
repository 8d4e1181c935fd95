"""After-sales tickets: returns, exchanges, repairs, complaints."""

from datetime import datetime
from typing import Any

from sqlmodel import Field

from touchpoint.db.base import SQLModel
from touchpoint.db.types import json_field, utc_field


class Ticket(SQLModel, table=True):
    __tablename__ = "tickets"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=16)  # e.g. R-000123
    customer_id: int = Field(foreign_key="customers.id", index=True)
    order_id: int | None = Field(default=None, foreign_key="orders.id")
    kind: str = Field(max_length=16)  # return | exchange | repair | complaint | other
    status: str = Field(default="new", max_length=24, index=True)
    reason: str | None = None
    details: str = ""
    items: list[dict[str, Any]] = json_field(default_factory=list)
    photos: list[str] = json_field(default_factory=list)  # Telegram file ids
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    first_response_due_at: datetime | None = utc_field(nullable=True, default=None)
    first_response_at: datetime | None = utc_field(nullable=True, default=None)
    closed_at: datetime | None = utc_field(nullable=True, default=None)
    csat: int | None = None
    csat_comment: str | None = None
    resolution: str | None = None  # staff's last word: return instructions or the reason for a no


class TicketEvent(SQLModel, table=True):
    """A ticket's history: status changes and messages (customer, staff, notes), oldest first."""

    __tablename__ = "ticket_events"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    kind: str = Field(max_length=16)  # status | message | rating
    author: str = Field(default="customer", max_length=64)  # customer | staff:<id> | system
    status: str | None = Field(default=None, max_length=24)
    text: str = ""
    photos: list[str] = json_field(default_factory=list)
    created_at: datetime = utc_field()


class AftersalesDraft(SQLModel, table=True):
    """The request a customer is in the middle of: one per customer, so it survives restarts
    and any bot process can take the next step."""

    __tablename__ = "aftersales_drafts"

    customer_id: int = Field(foreign_key="customers.id", primary_key=True)
    step: str = Field(max_length=24)
    data: dict[str, Any] = json_field()
    updated_at: datetime = utc_field()


class WarrantyRegistration(SQLModel, table=True):
    """A product bought elsewhere or offline, registered for warranty; staff verify the receipt."""

    __tablename__ = "warranty_registrations"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    sku: str = Field(max_length=64)
    serial_number: str = Field(max_length=64)
    receipt_photo: str  # Telegram file id
    purchased_at: datetime = utc_field()
    warranty_ends_at: datetime = utc_field(index=True)
    status: str = Field(default="pending", max_length=16)  # pending | verified | rejected
    verified_by: str | None = Field(default=None, max_length=64)
    verified_at: datetime | None = utc_field(nullable=True, default=None)
    reminded_at: datetime | None = utc_field(nullable=True, default=None)
    created_at: datetime = utc_field()
