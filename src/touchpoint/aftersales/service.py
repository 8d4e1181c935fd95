"""After-sales cases as the rest of the system sees them."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.aftersales.models import Ticket

SERVICE_CASE_KINDS = ("complaint", "return", "exchange", "repair")
CLOSED_STATUSES = ("closed", "rejected", "cancelled")


async def has_open_service_case(session: AsyncSession, customer_id: int) -> bool:
    """True while the customer waits on us: marketing must stay silent then."""
    query = select(Ticket.id).where(
        Ticket.customer_id == customer_id,
        Ticket.kind.in_(SERVICE_CASE_KINDS),  # type: ignore[attr-defined]
        Ticket.status.not_in(CLOSED_STATUSES),  # type: ignore[attr-defined]
    ).limit(1)
    return (await session.exec(query)).first() is not None
