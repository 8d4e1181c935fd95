"""Inbound de-duplication: Telegram may deliver an update twice."""

from datetime import datetime

from touchpoint.db.base import SQLModel
from touchpoint.db.types import bigint_field, utc_field


class ProcessedUpdate(SQLModel, table=True):
    __tablename__ = "processed_updates"

    update_id: int = bigint_field(primary_key=True)
    bot_id: int = bigint_field(primary_key=True)
    received_at: datetime = utc_field(index=True)
