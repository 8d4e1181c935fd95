"""Store events already seen, by the store's own event id: a second delivery is acknowledged and ignored."""

from datetime import datetime

from sqlmodel import Field

from touchpoint.db.base import SQLModel
from touchpoint.db.types import utc_field


class ProcessedStoreEvent(SQLModel, table=True):
    __tablename__ = "processed_store_events"

    id: str = Field(primary_key=True, max_length=64)
    type: str = Field(max_length=64)
    received_at: datetime = utc_field(index=True)
