"""messaging: claim a chat's messages in order (the claim looks up a chat's rows by status)

Revision ID: 0016
Revises: 0014 (0015 when merged: the lead re-chains)
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_chat_status", "outbox", ["chat_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_outbox_chat_status", table_name="outbox")
