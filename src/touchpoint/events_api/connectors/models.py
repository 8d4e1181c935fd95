"""The connectors' durable state: the queue of deliveries, and what is known of each platform resource."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field

from touchpoint.db.base import SQLModel
from touchpoint.db.types import json_field, utc_field


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # queued, not applied yet
    APPLIED = "applied"  # its effects are in the database
    STALE = "stale"  # older than the state already applied for its resource
    SKIPPED = "skipped"  # nothing to do (a guest checkout, an unmapped location, ...)
    REJECTED = "rejected"  # the payload cannot be applied (e.g. an unknown store); kept for a look
    FAILED = "failed"  # kept failing on the database; parked after `connectors_max_attempts`


class ConnectorDelivery(SQLModel, table=True):
    """A webhook delivery, committed before the platform gets its 200 and applied after, in id order.

    The payload is personal data: it is cleared once the delivery is applied or found stale."""

    __tablename__ = "connector_deliveries"
    __table_args__ = (Index("ix_connector_deliveries_status_id", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    delivery_id: str = Field(max_length=64)
    topic: str = Field(max_length=64)
    payload: dict[str, Any] = json_field()
    status: str = Field(default=DeliveryStatus.PENDING, max_length=16)
    attempts: int = 0
    error: str | None = Field(default=None, max_length=200)  # a reason and a field name, never data
    received_at: datetime = utc_field()
    done_at: datetime | None = utc_field(nullable=True, default=None)


class ConnectorResource(SQLModel, table=True):
    """One platform resource (an order, a customer, an inventory level...): the ``updated_at`` of the
    newest state applied, so an older one delivered late never overwrites it, and our key for it
    (an order's number, an inventory item's SKU)."""

    __tablename__ = "connector_resources"

    platform: str = Field(primary_key=True, max_length=16)
    kind: str = Field(primary_key=True, max_length=32)
    external_id: str = Field(primary_key=True, max_length=64)
    updated_at: datetime | None = utc_field(nullable=True, default=None)
    ref: str | None = Field(default=None, max_length=64)
