"""business: Telegram Business connections and the customers' chats with the brand's account

Revision ID: 0018
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0018"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "business_connections",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("owner_user_id", sa.BigInteger(), nullable=False),
        sa.Column("owner_name", sa.String(length=128), nullable=False),
        sa.Column("owner_username", sa.String(length=64), nullable=True),
        sa.Column("can_reply", sa.Boolean(), nullable=False),
        sa.Column("is_enabled", sa.Boolean(), nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_business_connections_owner_user_id", "business_connections", ["owner_user_id"])
    op.create_table(
        "business_chats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.String(length=128), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("last_incoming_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner_quiet_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("bot_chat", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["business_connections.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("connection_id", "chat_id", name="uq_business_chats_connection_chat"),
    )
    op.create_index("ix_business_chats_chat", "business_chats", ["chat_id", "bot_chat"])
    op.create_index("ix_business_chats_customer", "business_chats", ["customer_id", "bot_chat"])


def downgrade() -> None:
    op.drop_index("ix_business_chats_customer", table_name="business_chats")
    op.drop_index("ix_business_chats_chat", table_name="business_chats")
    op.drop_table("business_chats")
    op.drop_index("ix_business_connections_owner_user_id", table_name="business_connections")
    op.drop_table("business_connections")
