"""Conversations handed to staff and the transcript of every chat."""

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field

from touchpoint.db.base import SQLModel
from touchpoint.db.types import bigint_field, utc_field


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_topic", "staff_chat_id", "topic_id"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    status: str = Field(default="open", max_length=16, index=True)  # open | closed
    reason: str = Field(default="button", max_length=32)
    staff_chat_id: int | None = bigint_field(default=None, nullable=True)
    topic_id: int | None = None
    assigned_staff_id: int | None = bigint_field(default=None, nullable=True)
    opened_at: datetime = utc_field()
    first_response_at: datetime | None = utc_field(nullable=True, default=None)
    closed_at: datetime | None = utc_field(nullable=True, default=None)
    out_of_hours: bool = False  # opened while staff were away: announced when they are back
    announced_at: datetime | None = utc_field(nullable=True, default=None)
    reminded_at: datetime | None = utc_field(nullable=True, default=None)
    csat: int | None = None


class TranscriptMessage(SQLModel, table=True):
    """One message of a chat, both ways, with who wrote it."""

    __tablename__ = "transcript_messages"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversations.id")
    direction: str = Field(max_length=8)  # in | out | staff | note
    author: str = Field(default="", max_length=64)
    kind: str = Field(default="text", max_length=16)
    text: str = ""
    telegram_message_id: int | None = None
    # A photo or document: its Telegram file id (the console fetches it through the Bot API).
    file_id: str | None = Field(default=None, max_length=256)
    file_name: str = Field(default="", max_length=255)
    created_at: datetime = utc_field()


class TopicPost(SQLModel, table=True):
    """A line for a conversation's staff topic written where no bot is at hand (the console).

    The staff desk takes each row once, posts it through its paced group queue and deletes it.
    """

    __tablename__ = "topic_posts"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id")
    kind: str = Field(max_length=16)  # reply | claim | close
    author: str = Field(default="", max_length=64)
    text: str = ""
    created_at: datetime = utc_field()
