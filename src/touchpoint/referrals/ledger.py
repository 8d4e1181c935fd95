"""The points ledger: immutable entries; a balance is always their sum, never a stored counter.

Each entry names what caused it (``reference``); the unique (customer, kind, reference) makes
every earn, reversal or redemption idempotent, even when two processes race to write it.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.clock import utcnow
from touchpoint.customers.models import Customer
from touchpoint.customers.service import insert_ignoring_conflicts
from touchpoint.referrals.models import LedgerEntry, LedgerKind


async def add_entry(
    session: AsyncSession, customer_id: int, kind: LedgerKind, points: int, reason: str, reference: str
) -> bool:
    """Write one entry; False if an entry of this kind for this reference already exists."""
    if (kind is LedgerKind.EARN) != (points > 0):
        raise ValueError("earn entries add points, every other kind takes them away")
    inserted = await session.exec(
        insert_ignoring_conflicts(session, LedgerEntry)
        .values(customer_id=customer_id, kind=kind.value, points=points, reason=reason,
                reference=reference, created_at=utcnow())
        .returning(col(LedgerEntry.id))
    )
    return inserted.first() is not None


async def balance(session: AsyncSession, customer_id: int) -> int:
    total = await session.exec(
        select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(LedgerEntry.customer_id == customer_id)
    )
    return int(total.one())


async def reverse(session: AsyncSession, customer_id: int, reference: str, reason: str) -> int:
    """Undo what was earned for ``reference`` (once); returns the points taken back."""
    earned = (await session.exec(
        select(LedgerEntry).where(
            LedgerEntry.customer_id == customer_id, LedgerEntry.kind == LedgerKind.EARN.value,
            LedgerEntry.reference == reference,
        )
    )).first()
    if earned is None or not await add_entry(
        session, customer_id, LedgerKind.REVERSE, -earned.points, reason, reference
    ):
        return 0
    return earned.points


async def redeem(session: AsyncSession, customer_id: int, points: int, reference: str) -> bool:
    """Spend points if the balance covers them; False if it does not or this was already redeemed."""
    if points <= 0:
        raise ValueError("redeem a positive number of points")
    # Serialise spending per customer (PostgreSQL), so two redemptions cannot both see the old balance.
    await session.exec(select(Customer.id).where(Customer.id == customer_id).with_for_update())
    if await balance(session, customer_id) < points:
        return False
    return await add_entry(session, customer_id, LedgerKind.REDEEM, -points, "redeem", reference)


async def recent(session: AsyncSession, customer_id: int, limit: int = 5) -> list[LedgerEntry]:
    rows = await session.exec(
        select(LedgerEntry).where(LedgerEntry.customer_id == customer_id)
        .order_by(col(LedgerEntry.created_at).desc(), col(LedgerEntry.id).desc()).limit(limit)
    )
    return list(rows.all())
