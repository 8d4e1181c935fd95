"""handoff: CSAT, out-of-hours and reminder state on conversations; topic look-up index

Revision ID: 0005
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("out_of_hours", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("announced_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("csat", sa.Integer(), nullable=True))
        batch_op.create_index("ix_conversations_topic", ["staff_chat_id", "topic_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_topic")
        batch_op.drop_column("csat")
        batch_op.drop_column("reminded_at")
        batch_op.drop_column("announced_at")
        batch_op.drop_column("out_of_hours")
