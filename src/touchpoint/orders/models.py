"""Orders, their items and the shipment timeline, as pushed by the store."""

from datetime import datetime
from typing import Any

from sqlmodel import Field

from touchpoint.db.base import SQLModel
from touchpoint.db.types import bigint_field, json_field, utc_field
from touchpoint.orders.status import OrderStatus


class Order(SQLModel, table=True):
    __tablename__ = "orders"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, index=True, max_length=32)
    store_customer_id: str | None = Field(default=None, index=True, max_length=64)
    status: str = Field(default=OrderStatus.PLACED, max_length=32)
    total_minor: int = bigint_field(default=0)  # money: 64-bit minor units
    currency: str = Field(default="EUR", max_length=3)
    delivery_method: str = Field(default="delivery", max_length=16)  # delivery | pickup
    delivery_address: str | None = None
    pickup_store_id: str | None = Field(default=None, max_length=64)
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    contact_phone: str | None = None  # used (last 4 digits) to verify a guest look-up
    contact_email: str | None = None
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    delivered_at: datetime | None = utc_field(nullable=True, default=None)


class OrderItem(SQLModel, table=True):
    __tablename__ = "order_items"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    sku: str = Field(max_length=64)
    name: dict[str, str] = json_field()  # snapshot at order time
    quantity: int = 1
    unit_price_minor: int = bigint_field(default=0)


class ShipmentEvent(SQLModel, table=True):
    __tablename__ = "shipment_events"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    status: str = Field(max_length=32)
    details: dict[str, Any] = json_field()
    occurred_at: datetime = utc_field()


class LinkToken(SQLModel, table=True):
    """A one-time token the store issues to link a chat to its customer record (`/start link_…`).

    Only the token's SHA-256 is stored: a database leak does not hand out live links.
    """

    __tablename__ = "link_tokens"

    token_hash: str = Field(primary_key=True, max_length=64)
    store_customer_id: str = Field(max_length=64, index=True)
    expires_at: datetime = utc_field()
    used_at: datetime | None = utc_field(nullable=True, default=None)
    used_by_customer_id: int | None = Field(default=None, foreign_key="customers.id")
    created_at: datetime = utc_field()


class LookupAttempt(SQLModel, table=True):
    """A failed guest look-up by order number: counted to lock out brute force."""

    __tablename__ = "order_lookup_attempts"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    attempted_at: datetime = utc_field(index=True)


class Cart(SQLModel, table=True):
    """The store customer's current web-shop cart, as last pushed by the store."""

    __tablename__ = "carts"

    store_customer_id: str = Field(primary_key=True, max_length=64)
    items: list[dict[str, Any]] = json_field(default_factory=list)
    total_minor: int = bigint_field(default=0)  # money: 64-bit minor units
    currency: str = Field(default="EUR", max_length=3)
    updated_at: datetime = utc_field()
