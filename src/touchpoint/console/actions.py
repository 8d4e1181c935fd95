"""What staff do from the console that reaches other capabilities.

Each action is ONE function so that, when the owning capability's service lands (handoff relay,
after-sales lifecycle, journey engine), it can be pointed there in one place.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.aftersales.models import Ticket
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.console.models import Campaign, ConsoleNote, JourneySetting, StaffAccount
from touchpoint.console.templates import TICKET_STATUSES
from touchpoint.customers.models import Customer
from touchpoint.handoff.models import Conversation, TranscriptMessage
from touchpoint.journeys.models import OutboxMessage
from touchpoint.journeys.outbox import enqueue
from touchpoint.journeys.rules import Lane

CLOSED_TICKET_STATUSES = {"resolved", "closed", "rejected"}
PAUSED_REASON = "journey_paused"


def author_name(staff: StaffAccount) -> str:
    return staff.display_name or staff.username


async def send_staff_reply(
    session: AsyncSession, settings: Settings, conversation: Conversation, staff: StaffAccount, text: str
) -> TranscriptMessage:
    """A reply typed in the console reaches the customer's chat (transactional outbox lane).

    Lead: point this at the handoff relay once it exists."""
    customer = await session.get(Customer, conversation.customer_id)
    assert customer is not None
    now = utcnow()
    message = TranscriptMessage(
        customer_id=customer.id, conversation_id=conversation.id, direction="staff",
        author=author_name(staff)[:64], text=text, created_at=now,
    )
    session.add(message)
    if conversation.first_response_at is None:
        conversation.first_response_at = now
        session.add(conversation)
    await enqueue(session, settings, customer, "console.staff_reply",
                  {"author": author_name(staff), "text": text},
                  lane=Lane.TRANSACTIONAL, wait_for_quiet_hours=False)
    await session.flush()
    return message


def add_conversation_note(
    session: AsyncSession, conversation: Conversation, staff: StaffAccount, text: str, kind: str = "text"
) -> TranscriptMessage:
    """Internal notes live in the transcript with direction "note": never sent to the customer."""
    note = TranscriptMessage(
        customer_id=conversation.customer_id, conversation_id=conversation.id, direction="note",
        author=author_name(staff)[:64], kind=kind, text=text, created_at=utcnow(),
    )
    session.add(note)
    return note


def claim_conversation(session: AsyncSession, conversation: Conversation, staff: StaffAccount) -> None:
    """Claiming is recorded as a "claim" note (console staff are not Telegram users)."""
    add_conversation_note(session, conversation, staff, f"claimed by {author_name(staff)}", kind="claim")


async def close_conversation(
    session: AsyncSession, settings: Settings, conversation: Conversation, staff: StaffAccount
) -> None:
    """Close a handoff and tell the customer. Lead: point at the handoff service (topic + CSAT)."""
    if conversation.status == "closed":
        return
    customer = await session.get(Customer, conversation.customer_id)
    assert customer is not None
    conversation.status = "closed"
    conversation.closed_at = utcnow()
    session.add(conversation)
    add_conversation_note(session, conversation, staff, f"closed by {author_name(staff)}", kind="close")
    await enqueue(session, settings, customer, "console.handoff_closed", {},
                  lane=Lane.TRANSACTIONAL, wait_for_quiet_hours=False,
                  dedupe_key=f"console.handoff_closed:{conversation.id}")


async def change_ticket_status(
    session: AsyncSession, settings: Settings, ticket: Ticket, status: str, staff: StaffAccount
) -> bool:
    """Set a ticket's status and notify the customer. Lead: point at the after-sales lifecycle.

    Returns False (and changes nothing) for an unknown or unchanged status."""
    if status not in TICKET_STATUSES or status == ticket.status:
        return False
    customer = await session.get(Customer, ticket.customer_id)
    assert customer is not None
    now = utcnow()
    previous, ticket.status, ticket.updated_at = ticket.status, status, now
    if ticket.first_response_at is None:
        ticket.first_response_at = now
    ticket.closed_at = now if status in CLOSED_TICKET_STATUSES else None
    session.add(ticket)
    session.add(ConsoleNote(subject="ticket", subject_id=ticket.id, kind="status", author=author_name(staff),
                            text=f"{previous} → {status}", created_at=now))
    await enqueue(session, settings, customer, "console.ticket_status",
                  {"number": ticket.number, "status": status},
                  lane=Lane.TRANSACTIONAL, wait_for_quiet_hours=False)
    return True


def add_ticket_note(session: AsyncSession, ticket: Ticket, staff: StaffAccount, text: str) -> None:
    session.add(ConsoleNote(subject="ticket", subject_id=ticket.id, kind="note", author=author_name(staff),
                            text=text, created_at=utcnow()))


async def set_journey_paused(
    session: AsyncSession, journey_key: str, paused: bool, staff: StaffAccount
) -> JourneySetting:
    """The switch the journey engine reads; pausing also holds this journey's queued nudges back
    (resuming releases those still in time), so a pause takes effect at once."""
    setting = await session.get(JourneySetting, journey_key)
    if setting is None:
        setting = JourneySetting(journey_key=journey_key, updated_at=utcnow())
    setting.paused, setting.updated_at, setting.updated_by = paused, utcnow(), author_name(staff)[:64]
    session.add(setting)
    rows = col(OutboxMessage.journey_key) == journey_key
    if paused:
        await session.exec(update(OutboxMessage).where(rows, col(OutboxMessage.status) == "pending")
                           .values(status="skipped", reason=PAUSED_REASON))
    else:
        now = utcnow()
        await session.exec(update(OutboxMessage).where(
            rows, col(OutboxMessage.status) == "skipped", col(OutboxMessage.reason) == PAUSED_REASON,
            (col(OutboxMessage.expires_at).is_(None)) | (col(OutboxMessage.expires_at) > now),
        ).values(status="pending", reason=None))
    return setting


async def is_journey_paused(session: AsyncSession, journey_key: str) -> bool:
    setting = await session.get(JourneySetting, journey_key)
    return bool(setting and setting.paused)


async def schedule_campaign(
    session: AsyncSession, settings: Settings, campaign: Campaign, customers: list[Customer]
) -> int:
    """Queue the campaign on the marketing lane: consent, quiet hours and caps apply per customer."""
    session.add(campaign)
    await session.flush()
    queued = 0
    for customer in customers:
        row = await enqueue(session, settings, customer, "console.campaign", {"texts": campaign.texts},
                            lane=Lane.MARKETING, due_at=campaign.scheduled_at,
                            journey_key=f"campaign:{campaign.id}",
                            dedupe_key=f"campaign:{campaign.id}:{customer.id}")
        queued += row.status == "pending"
    campaign.recipients = queued
    session.add(campaign)
    return queued


def parse_when(value: str, now: datetime) -> datetime:
    """``YYYY-MM-DDTHH:MM`` in UTC from the form; empty means now."""
    from datetime import UTC

    if not value.strip():
        return now
    return datetime.fromisoformat(value.strip()).replace(tzinfo=UTC)
