"""Claiming outbox rows so that each chat's messages go in queue order, whichever process sends.

A chat is taken as a whole: only the head of a chat is claimable (no row of the chat in flight, no
pending row of it before this one in sending order), with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
the same transaction then takes the chat's other due rows behind it. Another process sees the head
still pending (uncommitted claim) or in flight (committed), so it never takes a later row of that
chat while an earlier one is on its way. The staff lane (groups) and the customers' lanes are
claimed by their own drainers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Row, select, text, update

from touchpoint.clock import utcnow
from touchpoint.db import Database
from touchpoint.messaging.models import OutboxMessage
from touchpoint.messaging.rules import Lane

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
IN_FLIGHT = ("claimed", "sending")  # a chat with a row in these states is busy
Claimed = Row[Any]  # a claimed outbox row, as read (attribute access like OutboxMessage)


async def claim_heads(db: Database, *, staff: bool, lease: timedelta, batch_size: int) -> list[Claimed]:
    """Lease up to ``batch_size`` chats' heads and the due rows behind them, in sending order
    (plain rows: no ORM objects to build). ``staff``: the staff lane's rows, else every other lane's."""
    now = utcnow()
    # The chat's first row among those pending or in flight, in-flight ones first: a row is the
    # chat's head if that is itself (one index probe per row looked at, whatever the table's size).
    other = OUTBOX.alias("other")
    first_of_chat = (
        select(other.c.id)
        .where(other.c.chat_id == OUTBOX.c.chat_id, other.c.status.in_(("pending", *IN_FLIGHT)))
        .order_by(other.c.status == "pending", other.c.priority, other.c.due_at, other.c.id)
        .limit(1)
        .correlate(OUTBOX)
        .scalar_subquery()
    )
    lane = OUTBOX.c.lane == Lane.STAFF.value if staff else OUTBOX.c.lane != Lane.STAFF.value
    # Heads in the order of the due index (ix_outbox_due: status, priority, due_at), so the scan
    # stops after ``batch_size`` heads: ordering by id too would sort every pending row per claim,
    # and claims would slow down as the queue grows. Chats due at the same moment go in the
    # index's order (their rows' insertion order); within a chat the order is the head's.
    heads = (
        select(OUTBOX.c.id)
        .where(OUTBOX.c.status == "pending", OUTBOX.c.due_at <= now, lane, OUTBOX.c.id == first_of_chat)
        .order_by(OUTBOX.c.priority, OUTBOX.c.due_at)
        .limit(batch_size)
    )
    if db.dialect == "postgresql":
        heads = heads.with_for_update(skip_locked=True, of=OUTBOX)
    leased = dict(status="claimed", lease_until=now + lease, attempts=OUTBOX.c.attempts + 1)
    async with db.session() as session:
        if db.dialect == "postgresql":
            # The planner cannot tell how many rows are heads and deems the claim costly enough to
            # compile: the compilation costs more than the query (tens of ms per claim).
            await session.execute(text("SET LOCAL jit = off"))
        rows = list((await session.execute(
            update(OUTBOX).where(OUTBOX.c.id.in_(heads.scalar_subquery()))
            .values(**leased).returning(*OUTBOX.c))).all())
        if chats := {row.chat_id for row in rows}:
            # The rest of those chats' due rows: nobody else can take them while their head is ours.
            behind = (
                select(OUTBOX.c.id)
                .where(OUTBOX.c.chat_id.in_(chats), OUTBOX.c.status == "pending", OUTBOX.c.due_at <= now)
                .order_by(OUTBOX.c.priority, OUTBOX.c.due_at, OUTBOX.c.id)
                .limit(batch_size)
            )
            rows += list((await session.execute(
                update(OUTBOX).where(OUTBOX.c.id.in_(behind.scalar_subquery()))
                .values(**leased).returning(*OUTBOX.c))).all())
    return sorted(rows, key=lambda r: (r.priority, r.due_at, r.id))
