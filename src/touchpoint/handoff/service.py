"""Handoff state as the rest of the system sees it."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.handoff.models import Conversation


async def has_active_handoff(session: AsyncSession, customer_id: int) -> bool:
    query = select(Conversation.id).where(
        Conversation.customer_id == customer_id, Conversation.status == "open"
    ).limit(1)
    return (await session.exec(query)).first() is not None
