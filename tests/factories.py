"""Small builders for test data, so each test states only what matters to it."""

from __future__ import annotations

from typing import Any

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
