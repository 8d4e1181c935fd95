"""money: 64-bit minor units for order totals, order item prices, cart totals and product prices

A price of 2^31 minor units or more (the events API accepts up to 10^12) overflowed the 32-bit
columns on PostgreSQL. SQLite stores every INTEGER in 64 bits already; the tables are rebuilt in
batch mode there only so the declared type matches the models.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY_COLUMNS = (("orders", "total_minor"), ("order_items", "unit_price_minor"), ("carts", "total_minor"),
                 ("products", "price_minor"))


def _retype(old: sa.types.TypeEngine, new: sa.types.TypeEngine) -> None:
    for table, column in MONEY_COLUMNS:
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column(column, existing_type=old, type_=new, existing_nullable=False)


def upgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger())


def downgrade() -> None:
    # Values beyond 32 bits cannot go back: PostgreSQL refuses the downgrade rather than lose them.
    _retype(sa.BigInteger(), sa.Integer())
