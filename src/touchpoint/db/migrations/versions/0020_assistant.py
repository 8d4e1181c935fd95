"""assistant: capability switches, answers and drafts with their sources and ratings, staff
translation settings and kept translations

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assistant_switches",
        sa.Column("capability", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("capability", name=op.f("pk_assistant_switches")),
    )
    op.create_table(
        "assistant_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("question", sa.String(), nullable=False),
        sa.Column("answer", sa.String(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_assistant_answers_customer_id_customers")),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_assistant_answers_conversation_id_conversations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assistant_answers")),
    )
    op.create_index(op.f("ix_assistant_answers_customer_id"), "assistant_answers", ["customer_id"])
    op.create_index(op.f("ix_assistant_answers_outcome"), "assistant_answers", ["outcome"])
    op.create_index(op.f("ix_assistant_answers_created_at"), "assistant_answers", ["created_at"])
    op.create_table(
        "assistant_translation_settings",
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_assistant_translation_settings")),
    )
    op.create_table(
        "assistant_translations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_sha", sa.String(length=64), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assistant_translations")),
        sa.UniqueConstraint("source_sha", "locale", name=op.f("uq_assistant_translations_source_sha_locale")),
    )


def downgrade() -> None:
    op.drop_table("assistant_translations")
    op.drop_table("assistant_translation_settings")
    op.drop_index(op.f("ix_assistant_answers_created_at"), table_name="assistant_answers")
    op.drop_index(op.f("ix_assistant_answers_outcome"), table_name="assistant_answers")
    op.drop_index(op.f("ix_assistant_answers_customer_id"), table_name="assistant_answers")
    op.drop_table("assistant_answers")
    op.drop_table("assistant_switches")
