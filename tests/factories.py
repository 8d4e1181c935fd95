"""Small builders for test data, so each test states only what matters to it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.clock import utcnow
from touchpoint.customers.models import Customer


async def make_customer(session: AsyncSession, telegram_id: int, **fields: Any) -> Customer:
    now = utcnow()
    values: dict[str, Any] = dict(
        telegram_id=telegram_id, first_name="Test", timezone="Europe/Berlin",
        created_at=now, last_seen_at=now, marketing_consent=True,
    )
    values.update(fields)
    customer = Customer(**values)
    session.add(customer)
    await session.flush()
    return customer


def quiet_hours_elsewhere(timezone: str = "Europe/Berlin") -> dict[str, int]:
    """A one-hour quiet window twelve hours from now (customers' default time zone): tests that send
    are never held until morning by the hour they happen to run at."""
    start = (datetime.now(ZoneInfo(timezone)).hour + 12) % 24
    return {"quiet_hours_start": start, "quiet_hours_end": (start + 1) % 24}
