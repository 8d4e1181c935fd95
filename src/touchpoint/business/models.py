"""Business connections (a brand's Telegram account lent to the bot) and the chats seen through them."""

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field

from touchpoint.db.base import SQLModel
from touchpoint.db.types import bigint_field, utc_field


class BusinessConnection(SQLModel, table=True):
    """One ``business_connection`` as Telegram last described it. The owner is a person: their name
    is personal data, shown in the console, never logged."""

    __tablename__ = "business_connections"

    id: str = Field(primary_key=True, max_length=128)  # Telegram's connection id
    owner_user_id: int = bigint_field(index=True)
    owner_name: str = Field(default="", max_length=128)
    owner_username: str | None = Field(default=None, max_length=64)
    can_reply: bool = False  # may answer on the owner's behalf (chats active in the last 24 hours)
    is_enabled: bool = True  # False once the owner disconnected or paused the bot
    connected_at: datetime = utc_field()
    updated_at: datetime = utc_field()


class BusinessChat(SQLModel, table=True):
    """A customer's chat with the brand's account: when they last wrote (Telegram's 24-hour rule),
    until when the owner has taken over, and whether they also have a chat with the bot itself."""

    __tablename__ = "business_chats"
    __table_args__ = (
        UniqueConstraint("connection_id", "chat_id", name="uq_business_chats_connection_chat"),
        Index("ix_business_chats_chat", "chat_id", "bot_chat"),
        Index("ix_business_chats_customer", "customer_id", "bot_chat"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection_id: str = Field(foreign_key="business_connections.id", max_length=128)
    chat_id: int = bigint_field()  # the customer's user id (their Telegram id)
    customer_id: int = Field(foreign_key="customers.id")
    last_incoming_at: datetime | None = utc_field(nullable=True, default=None)
    owner_quiet_until: datetime | None = utc_field(nullable=True, default=None)  # the human took over
    bot_chat: bool = False  # the customer has started the bot itself (proactive messages go there)
    created_at: datetime = utc_field()
