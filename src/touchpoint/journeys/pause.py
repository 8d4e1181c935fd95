"""Pausing a journey (from the console): it enrols nobody, takes no step and sends nothing until
resumed. The switch is a row in ``journey_settings``."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.clock import utcnow
from touchpoint.journeys.models import JourneySetting
from touchpoint.messaging.models import OutboxMessage

PAUSED_REASON = "journey_paused"


async def paused_keys(session: AsyncSession) -> set[str]:
    rows = await session.exec(select(JourneySetting.journey_key).where(col(JourneySetting.paused)))
    return set(rows.all())


async def is_paused(session: AsyncSession, journey_key: str) -> bool:
    setting = await session.get(JourneySetting, journey_key)
    return bool(setting and setting.paused)


async def set_paused(
    session: AsyncSession, journey_key: str, paused: bool, *, by: str = ""
) -> JourneySetting:
    """Flip the switch. Pausing also holds this journey's queued messages back (the sender skips
    them with reason ``journey_paused``); resuming releases those not expired meanwhile."""
    now = utcnow()
    setting = await session.get(JourneySetting, journey_key)
    if setting is None:
        setting = JourneySetting(journey_key=journey_key, updated_at=now)
    setting.paused, setting.updated_at, setting.updated_by = paused, now, by[:64]
    session.add(setting)
    rows = col(OutboxMessage.journey_key) == journey_key
    if paused:
        await session.exec(update(OutboxMessage).where(  # type: ignore[call-overload]
            rows, col(OutboxMessage.status) == "pending").values(status="skipped", reason=PAUSED_REASON))
    else:
        await session.exec(update(OutboxMessage).where(  # type: ignore[call-overload]
            rows, col(OutboxMessage.status) == "skipped", col(OutboxMessage.reason) == PAUSED_REASON,
            col(OutboxMessage.expires_at).is_(None) | (col(OutboxMessage.expires_at) > now),
        ).values(status="pending", reason=None))
    return setting
