"""What the chat does with journey messages: click-through, unsubscribe, answers to questions."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.clock import utcnow
from touchpoint.customers.models import Customer
from touchpoint.customers.service import record_event
from touchpoint.journeys.engine import on_behaviour_event
from touchpoint.messaging.models import Delivery, OutboxMessage

# The button's answer → the event it records (an exit goal of its journey) and its payload.
ANSWERS = {
    "happy": ("journey.checkin_answered", "happy"),
    "sad": ("journey.checkin_answered", "unhappy"),
    "solved": ("journey.followup_answered", "solved"),
    "unsolved": ("journey.followup_answered", "unsolved"),
}


async def record_click(session: AsyncSession, chat_id: int, message_id: int) -> str | None:
    """A button was pressed on one of our proactive messages: count the first press (click-through).
    Returns the journey key, or None if the message was not a journey message."""
    row = (await session.exec(
        select(Delivery.id, Delivery.clicked_at, Delivery.customer_id, OutboxMessage.journey_key,
               OutboxMessage.template)
        .join(OutboxMessage, col(OutboxMessage.id) == col(Delivery.outbox_id))
        .where(Delivery.chat_id == chat_id, Delivery.telegram_message_id == message_id)
        .order_by(col(Delivery.id).desc()).limit(1)
    )).first()
    if row is None:
        return None
    delivery_id, clicked_at, customer_id, journey_key, template = row
    if clicked_at is None:
        await session.exec(update(Delivery).where(  # type: ignore[call-overload]
            Delivery.id == delivery_id, col(Delivery.clicked_at).is_(None)).values(clicked_at=utcnow()))
        record_event(session, "journey.clicked", customer_id=customer_id,
                     payload={"journey": journey_key, "template": template})
    return journey_key


def unsubscribe_marketing(session: AsyncSession, customer: Customer) -> None:
    """The unsubscribe button: no marketing from now on (the sender checks again before sending)."""
    customer.marketing_consent = False
    session.add(customer)
    record_event(session, "journey.unsubscribed", customer_id=customer.id)


async def record_answer(session: AsyncSession, customer: Customer, action: str) -> str:
    """The customer answered a check-in or follow-up; ends that journey at once. Returns the answer."""
    event_type, answer = ANSWERS[action]
    event = record_event(session, event_type, customer_id=customer.id, payload={"answer": answer})
    await on_behaviour_event(session, event)
    return answer
