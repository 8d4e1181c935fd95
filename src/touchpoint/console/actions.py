"""What staff do from the console that reaches other capabilities.

Each action hands over to the capability that owns the logic: the handoff service (replies, close
and its CSAT question), the after-sales lifecycle (ticket status), the journeys package (pause
switch, campaigns). The console only adds who did it.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.aftersales import service as aftersales
from touchpoint.aftersales.models import Ticket
from touchpoint.checks import present
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.console.models import Campaign, ConsoleNote, JourneySetting, StaffAccount
from touchpoint.console.telegram_files import Attachment, SendFailed, send_attachment
from touchpoint.customers.models import Customer
from touchpoint.handoff import service as handoff
from touchpoint.handoff.models import Conversation, TranscriptMessage
from touchpoint.i18n import get_translator
from touchpoint.journeys import pause
from touchpoint.journeys.campaign import campaign_key, queue_campaign
from touchpoint.markup import esc
from touchpoint.messaging.outbox import enqueue
from touchpoint.messaging.rules import ContactQuestion, Lane, check_contacts


def author_name(staff: StaffAccount) -> str:
    return staff.display_name or staff.username


async def send_staff_reply(
    session: AsyncSession, settings: Settings, conversation: Conversation, staff: StaffAccount, text: str
) -> TranscriptMessage:
    """A reply typed in the console: transcript, first response, the customer's chat and the staff
    topic (handoff)."""
    return await handoff.send_staff_reply(session, settings, conversation, author_name(staff)[:64], text)


def add_conversation_note(
    session: AsyncSession, conversation: Conversation, staff: StaffAccount, text: str, kind: str = "text"
) -> TranscriptMessage:
    """Internal notes live in the transcript with direction "note": never sent to the customer."""
    assert conversation.id is not None
    return handoff.add_transcript(session, conversation.customer_id, "note", text, kind=kind,
                                  author=author_name(staff), conversation_id=conversation.id)


def claim_conversation(
    session: AsyncSession, settings: Settings, conversation: Conversation, staff: StaffAccount
) -> None:
    """Claiming is recorded as a "claim" note (console staff are not Telegram users) and said in the
    staff topic, as a /claim there is shown here."""
    add_conversation_note(session, conversation, staff, f"claimed by {author_name(staff)}", kind="claim")
    handoff.announce_claim(session, conversation, author_name(staff)[:64])


async def send_staff_attachment(
    session: AsyncSession, settings: Settings, conversation: Conversation, staff: StaffAccount,
    attachment: Attachment, caption: str,
) -> TranscriptMessage:
    """A photo or document attached to a console reply: sent to the customer's chat first (nothing
    is written if Telegram refuses it: ``SendFailed``; one who blocked the bot is marked unreachable,
    as the sender does), then kept like any staff reply."""
    customer = present(await session.get(Customer, conversation.customer_id), "the conversation's customer")
    if settings.bot_token is None:
        raise SendFailed("unavailable")
    t = get_translator(settings.locales_dir, settings.default_locale)
    locale = handoff.customer_locale(customer, settings)
    author = author_name(staff)[:64]
    shown = t(locale, "console.reply.message", name=esc(author), text=esc(caption)) if caption else \
        t(locale, "console.reply.file", name=esc(author))
    token = settings.bot_token.get_secret_value()
    try:
        message_id, file_id = await send_attachment(settings.telegram_api_base, token, customer.telegram_id,
                                                    attachment, shown)
    except SendFailed as exc:
        if exc.code == "blocked":
            customer.reachable = False
            session.add(customer)
        raise
    return handoff.record_staff_file(session, conversation, author, attachment.kind, caption, file_id=file_id,
                                     file_name=attachment.file_name, telegram_message_id=message_id)


async def close_conversation(
    session: AsyncSession, settings: Settings, conversation: Conversation, staff: StaffAccount
) -> bool:
    """Close the handoff like /close in the topic: the customer is asked for a rating, once, and the
    topic says who closed it and is closed."""
    if not await handoff.close_and_ask_csat(session, settings, conversation, author_name(staff)):
        return False
    add_conversation_note(session, conversation, staff, f"closed by {author_name(staff)}", kind="close")
    return True


async def change_ticket_status(
    session: AsyncSession, settings: Settings, ticket: Ticket, status: str, staff: StaffAccount,
    note: str | None = None,
) -> None:
    """Move the ticket along the after-sales lifecycle (the customer is told by it).

    Raises ``aftersales.TicketError`` ("bad_transition", "reason_required") and changes nothing."""
    await aftersales.set_status(session, settings, ticket, status, staff=f"console:{author_name(staff)}"[:64],
                                note=note or None)


def add_ticket_note(session: AsyncSession, ticket: Ticket, staff: StaffAccount, text: str) -> None:
    """An internal note on the ticket (never sent to the customer)."""
    session.add(ConsoleNote(subject="ticket", subject_id=ticket.id, kind="note", author=author_name(staff),
                            text=text, created_at=utcnow()))


async def set_journey_paused(
    session: AsyncSession, journey_key: str, paused: bool, staff: StaffAccount
) -> JourneySetting:
    return await pause.set_paused(session, journey_key, paused, by=author_name(staff))


async def schedule_campaign(
    session: AsyncSession, settings: Settings, campaign: Campaign, customers: list[Customer]
) -> int:
    """Queue the campaign through the journeys' campaign code for everyone in ``customers`` the
    contact rules let it reach (marketing lane: consent, open cases, caps, quiet hours apply per
    customer), and keep why the others were held back or wait, with how many — the rules' own reasons."""
    session.add(campaign)
    await session.flush()
    questions = [ContactQuestion(customer, Lane.MARKETING, "console.campaign") for customer in customers]
    verdicts = await check_contacts(session, settings, questions, campaign.scheduled_at)
    held = Counter(verdict.reason or verdict.action for verdict in verdicts if verdict.action != "send")
    counts = await queue_campaign(session, settings, campaign_journey_key(campaign), "console.campaign",
                                  {"texts": campaign.texts}, customers, at=campaign.scheduled_at)
    if counts.get("already"):
        held["already"] = counts["already"]
    campaign.recipients = counts["queued"]
    campaign.held_back = dict(held)
    session.add(campaign)
    return campaign.recipients


async def send_campaign_test(
    session: AsyncSession, settings: Settings, staff: StaffAccount, texts: dict[str, str]
) -> str | None:
    """The campaign as a customer would get it, to the staff member's own Telegram chat (right away:
    a test is not marketing, so no caps or quiet hours, and it counts in no campaign's numbers).
    Returns what stopped it: "no_telegram" (no id in My settings), "no_chat" (never wrote to the bot)."""
    if staff.telegram_id is None:
        return "no_telegram"
    me = (await session.exec(select(Customer).where(Customer.telegram_id == staff.telegram_id))).first()
    if me is None or not me.reachable:
        return "no_chat"
    await enqueue(session, settings, me, "console.campaign", {"texts": texts}, lane=Lane.TRANSACTIONAL,
                  wait_for_quiet_hours=False)
    return None


def campaign_journey_key(campaign: Campaign) -> str:
    return campaign_key(f"{campaign.id}_{campaign.name}")


def parse_when(value: str, now: datetime, zone: str) -> datetime:
    """``YYYY-MM-DDTHH:MM`` from the form, a wall-clock time in the shop's time zone; empty means
    now. Raises ValueError for anything else."""
    if not value.strip():
        return now
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is not None:
        raise ValueError("a time without a zone: the shop's is meant")
    return moment.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
