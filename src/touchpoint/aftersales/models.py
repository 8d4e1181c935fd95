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
