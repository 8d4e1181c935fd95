"""referrals: rewards held as pending until the qualifying order's return window ends

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "referral_rewards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("voucher_minor", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_referral_rewards_customer_id_customers")),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.id"],
                                name=op.f("fk_referral_rewards_referral_id_referrals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_rewards")),
        sa.UniqueConstraint("referral_id", "side", name=op.f("uq_referral_rewards_referral_id_side")),
    )
    with op.batch_alter_table("referral_rewards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_rewards_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_referral_rewards_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("referral_rewards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_rewards_status"))
        batch_op.drop_index(batch_op.f("ix_referral_rewards_customer_id"))
    op.drop_table("referral_rewards")
