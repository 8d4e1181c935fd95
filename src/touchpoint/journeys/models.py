"""Journey enrolments, the trigger cursor and the pause switches (the outbox is messaging's)."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, UniqueConstraint
from sqlmodel import Field

from touchpoint.db.base import SQLModel
from touchpoint.db.types import json_field, utc_field


class Enrolment(SQLModel, table=True):
    __tablename__ = "enrolments"
    # One enrolment per customer × journey × trigger occurrence, whatever the process count.
    __table_args__ = (UniqueConstraint("journey_key", "customer_id", "occurrence_key"),)

    id: int | None = Field(default=None, primary_key=True)
    journey_key: str = Field(max_length=64, index=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    occurrence_key: str = Field(max_length=128)
    status: str = Field(default="active", max_length=16)  # active | completed | exited | held_out
    holdout: bool = False
    step_index: int = 0
    next_step_at: datetime | None = utc_field(nullable=True, default=None, index=True)
    context: dict[str, Any] = json_field()
    enrolled_at: datetime = utc_field()
    exited_at: datetime | None = utc_field(nullable=True, default=None)
    exit_reason: str | None = None
    converted_at: datetime | None = utc_field(nullable=True, default=None)


class JourneyCursor(SQLModel, table=True):
    """How far the trigger tick has read the behaviour event log (events are re-read idempotently)."""

    __tablename__ = "journey_cursors"

    name: str = Field(primary_key=True, max_length=32)
    last_event_id: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = utc_field()


class JourneySetting(SQLModel, table=True):
    """A journey switched off from the console; the journey engine reads ``paused``."""

    __tablename__ = "journey_settings"

    journey_key: str = Field(primary_key=True, max_length=64)
    paused: bool = False
    updated_at: datetime = utc_field()
    updated_by: str = Field(default="", max_length=64)
