"""Queueing proactive messages: the one way any capability asks for a message to be sent.

``enqueue`` writes the outbox row in the caller's transaction (together with its cause), after
the contact rules decided when it may go. A skipped message is still written, with its reason,
so that every skip is on record; the sender ignores it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.checks import present
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.messaging.models import OutboxMessage
from touchpoint.messaging.rules import Lane, check_contact


async def enqueue(
    session: AsyncSession,
    settings: Settings,
    customer: Customer,
    template: str,
    params: dict[str, Any] | None = None,
    *,
    lane: Lane,
    due_at: datetime | None = None,
    expires_at: datetime | None = None,
    wait_for_quiet_hours: bool = True,
    dedupe_key: str | None = None,
    card_key: str | None = None,
    edit_in_place: bool = False,
    journey_key: str | None = None,
    enrolment_id: int | None = None,
) -> OutboxMessage:
    """Queue ``template`` for ``customer``; returns the row (status "pending" or "skipped").

    ``wait_for_quiet_hours`` only matters for transactional messages (marketing and service
    always wait). ``dedupe_key`` makes the call idempotent: the database refuses a second row.
    """
    now = utcnow()
    due = max(due_at or now, now)
    verdict = await check_contact(
        session, settings, customer, lane, due, template=template,
        wait_for_quiet_hours=wait_for_quiet_hours,
    )
    status, reason = "pending", None
    if verdict.action == "delay":
        due, reason = present(verdict.not_before, "a delay's time"), verdict.reason
    elif verdict.action == "skip":
        status, reason = "skipped", verdict.reason
    if status == "pending" and expires_at is not None and due >= expires_at:
        status, reason = "skipped", "expired"
    message = OutboxMessage(
        customer_id=customer.id, chat_id=customer.telegram_id, lane=lane.value,
        priority=lane.priority, template=template, params=params or {}, dedupe_key=dedupe_key,
        card_key=card_key, edit_in_place=edit_in_place, journey_key=journey_key,
        enrolment_id=enrolment_id, status=status, reason=reason, due_at=due,
        expires_at=expires_at, created_at=now,
    )
    session.add(message)
    return message
