"""What the staff console owns: staff accounts, journey pause switches, campaigns, notes."""

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field

from touchpoint.db.base import SQLModel
from touchpoint.db.types import bigint_field, json_field, utc_field

# The journey pause switch is the journeys' own table (the console flips it).
from touchpoint.journeys.models import JourneySetting

__all__ = ["Campaign", "ConsoleNote", "JourneySetting", "StaffAccount"]

ROLES = ("agent", "manager")


class StaffAccount(SQLModel, table=True):
    __tablename__ = "staff_accounts"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, max_length=64)
    display_name: str = Field(default="", max_length=120)
    password_hash: str  # argon2id, never the password
    role: str = Field(default="agent", max_length=16)  # agent | manager
    locale: str = Field(default="en", max_length=8)  # the console's language for this person
    timezone: str = Field(default="", max_length=64)  # IANA name; empty: the shop's (handoff_timezone)
    # Their own Telegram user id (a private chat with the bot): where "send a test to me" goes.
    telegram_id: int | None = bigint_field(default=None, nullable=True)
    active: bool = True
    # Made by `touchpoint demo` with a published password: logs in only while the demo runs.
    is_demo: bool = False
    created_at: datetime = utc_field()
    last_login_at: datetime | None = utc_field(nullable=True, default=None)


class ConsoleSession(SQLModel, table=True):
    """A signed-in browser. The cookie carries a random token, this row its SHA-256: deleting the
    row (log-out, password reset, `touchpoint staff disable|logout`) ends the session at once."""

    __tablename__ = "console_sessions"

    id: str = Field(primary_key=True, max_length=64)  # sha256 hex of the cookie's token
    staff_id: int = Field(foreign_key="staff_accounts.id", index=True)
    created_at: datetime = utc_field()
    expires_at: datetime = utc_field(index=True)


class Campaign(SQLModel, table=True):
    """A one-off message to a segment, queued in the outbox for its scheduled time."""

    __tablename__ = "campaigns"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    segment: str = Field(max_length=32)
    texts: dict[str, Any] = json_field()  # {"en": "...", "ru": "...", "zh": "..."}
    status: str = Field(default="scheduled", max_length=16)
    scheduled_at: datetime = utc_field()
    recipients: int = 0
    held_back: dict[str, Any] = json_field()  # {reason: customers} not queued, e.g. {"quiet_hours": 3}
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = utc_field()


class ConsoleNote(SQLModel, table=True):
    """Internal notes and status changes staff made on a ticket (its history in the console)."""

    __tablename__ = "console_notes"
    __table_args__ = (Index("ix_console_notes_subject", "subject", "subject_id"),)

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(max_length=16)  # ticket
    subject_id: int
    kind: str = Field(default="note", max_length=16)  # note | status
    author: str = Field(default="", max_length=64)
    text: str = ""
    created_at: datetime = utc_field()
