"""console: each staff member's time zone and Telegram chat, files in the transcript, why a
campaign held customers back

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_accounts") as batch:
        batch.add_column(sa.Column("timezone", sa.String(length=64), nullable=False, server_default=""))
        batch.add_column(sa.Column("telegram_id", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("transcript_messages") as batch:
        batch.add_column(sa.Column("file_id", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("file_name", sa.String(length=255), nullable=False, server_default=""))
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("held_back", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("held_back")
    with op.batch_alter_table("transcript_messages") as batch:
        batch.drop_column("file_name")
        batch.drop_column("file_id")
    with op.batch_alter_table("staff_accounts") as batch:
        batch.drop_column("telegram_id")
        batch.drop_column("timezone")
