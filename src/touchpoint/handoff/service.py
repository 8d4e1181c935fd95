"""Handoff state as the rest of the system sees it: escalation, conversations, transcript, CSAT."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, text, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.checks import present, saved_id
from touchpoint.clock import utcnow
from touchpoint.config import Settings, get_settings
from touchpoint.customers.models import Customer
from touchpoint.customers.service import record_event
from touchpoint.formatting import format_weekday_time
from touchpoint.handoff.models import Conversation, TopicPost, TranscriptMessage
from touchpoint.handoff.rules import WorkingHours, expected_wait_minutes
from touchpoint.i18n import get_translator, resolve_locale
from touchpoint.messaging.outbox import enqueue
from touchpoint.messaging.rules import Lane, register_veto

TRANSCRIPT_TEXT_LIMIT = 1000  # characters kept per message: enough for context, not an archive
LOW_CSAT = 2  # a rating at or below this escalates again
TOPIC_TEXT_LIMIT = 3900  # a console reply in the topic: with its "💬 name (console):" under Telegram's 4096


@dataclass(frozen=True, slots=True)
class Escalation:
    conversation: Conversation | None  # None: no staff group is configured
    created: bool  # False: the customer was already with staff (or nobody can take over)
    text: str  # what to tell the customer, in their language


def working_hours(settings: Settings) -> WorkingHours:
    return WorkingHours(
        settings.handoff_timezone,
        settings.handoff_hours_start,
        settings.handoff_hours_end,
        frozenset(settings.handoff_work_days),
    )


def staff_chat_ids(settings: Settings) -> list[int]:
    ids = [settings.staff_chat_id] if settings.staff_chat_id else []
    return ids + [i for i in settings.handoff_extra_staff_chat_ids if i not in ids]


def customer_locale(customer: Customer, settings: Settings) -> str:
    return resolve_locale(customer.locale, customer.language_code, settings.default_locale)


async def has_active_handoff(session: AsyncSession, customer_id: int) -> bool:
    return customer_id in await customers_in_handoff(session, [customer_id])


async def customers_in_handoff(session: AsyncSession, customer_ids: Collection[int]) -> set[int]:
    """Which of these customers are talking to a person right now (an open conversation)."""
    query = select(Conversation.customer_id).distinct().where(
        col(Conversation.customer_id).in_(customer_ids), Conversation.status == "open")
    return set((await session.exec(query)).all())


# While a person is talking with the customer, marketing stays silent.
register_veto("active_handoff", customers_in_handoff, rank=20)


async def active_conversation(session: AsyncSession, customer_id: int) -> Conversation | None:
    query = (
        select(Conversation)
        .where(Conversation.customer_id == customer_id, Conversation.status == "open")
        .order_by(col(Conversation.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def escalate(
    session: AsyncSession,
    customer: Customer,
    reason: str,
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> Escalation:
    """Hand the customer to staff (idempotent while a conversation is open).

    ``reason`` says why: button, command, faq_miss, distress, low_csat. The staff desk in the
    bot opens the forum topic and posts the context card for every open conversation without
    one; the returned text tells the customer honestly what happens next.
    """
    settings = settings or get_settings()
    now = now or utcnow()
    locale = customer_locale(customer, settings)
    t = get_translator(settings.locales_dir, settings.default_locale)  # the configured catalogues
    saved_id(customer)
    current = await active_conversation(session, customer.id)
    if current is not None:
        return Escalation(current, False, t(locale, "handoff.already"))
    staff_chat_id = await _staff_chat_for(session, customer.id, settings)
    if staff_chat_id is None:
        return Escalation(None, False, t(locale, "handoff.unavailable"))
    hours = working_hours(settings)
    conversation = Conversation(
        customer_id=customer.id,
        status="open",
        reason=reason[:32],
        opened_at=now,
        staff_chat_id=staff_chat_id,
        out_of_hours=not hours.is_open(now),
    )
    session.add(conversation)
    await session.flush()
    record_event(session, "handoff.escalated", customer_id=customer.id, payload={"reason": reason})
    if conversation.out_of_hours:
        when = format_weekday_time(hours.next_opening(now), locale, customer.timezone)
        return Escalation(conversation, True, t(locale, "handoff.wait.closed", when=when))
    ahead = await waiting_count(session) - 1
    minutes = expected_wait_minutes(ahead, settings.handoff_minutes_per_customer)
    return Escalation(conversation, True, t(locale, "handoff.wait.open", minutes=minutes))


async def _staff_chat_for(session: AsyncSession, customer_id: int, settings: Settings) -> int | None:
    """The group of the customer's earlier conversations (their topic lives there), else spread."""
    chats = staff_chat_ids(settings)
    if not chats:
        return None
    query = (
        select(Conversation.staff_chat_id)
        .where(Conversation.customer_id == customer_id, col(Conversation.staff_chat_id).in_(chats))
        .order_by(col(Conversation.id).desc())
        .limit(1)
    )
    previous = (await session.exec(query)).first()
    return previous if previous is not None else chats[customer_id % len(chats)]


async def waiting_count(session: AsyncSession) -> int:
    """Open conversations no staff member has answered yet."""
    query = (
        select(func.count())
        .select_from(Conversation)
        .where(Conversation.status == "open", col(Conversation.first_response_at).is_(None))
    )
    return int((await session.exec(query)).one())


async def previous_topic(session: AsyncSession, customer_id: int, staff_chat_id: int) -> int | None:
    query = (
        select(Conversation.topic_id)
        .where(
            Conversation.customer_id == customer_id,
            Conversation.staff_chat_id == staff_chat_id,
            col(Conversation.topic_id).is_not(None),
        )
        .order_by(col(Conversation.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def conversation_by_topic(
    session: AsyncSession, staff_chat_id: int, topic_id: int
) -> Conversation | None:
    """The topic's conversation: the open one, else the latest."""
    query = (
        select(Conversation)
        .where(Conversation.staff_chat_id == staff_chat_id, Conversation.topic_id == topic_id)
        .order_by((Conversation.status == "open").desc(), col(Conversation.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def set_topic(session: AsyncSession, conversation_id: int, topic_id: int) -> bool:
    """Record the conversation's topic unless another process already did (then False)."""
    result = await session.execute(
        update(Conversation)
        .where(col(Conversation.id) == conversation_id, col(Conversation.topic_id).is_(None))
        .values(topic_id=topic_id)
    )
    return bool(getattr(result, "rowcount", 0))


async def conversations_without_topic(session: AsyncSession) -> list[Conversation]:
    query = (
        select(Conversation)
        .where(
            Conversation.status == "open",
            col(Conversation.topic_id).is_(None),
            col(Conversation.staff_chat_id).is_not(None),
        )
        .order_by(col(Conversation.id))
    )
    return list((await session.exec(query)).all())


def record_staff_reply(
    session: AsyncSession, conversation: Conversation, now: datetime | None = None
) -> None:
    if conversation.first_response_at is None:
        conversation.first_response_at = now or utcnow()
        session.add(conversation)


def claim(session: AsyncSession, conversation: Conversation, staff_user_id: int) -> None:
    conversation.assigned_staff_id = staff_user_id
    session.add(conversation)


def close(session: AsyncSession, conversation: Conversation, now: datetime | None = None) -> bool:
    """End the handoff; False if it was closed already."""
    if conversation.status != "open":
        return False
    conversation.status = "closed"
    conversation.closed_at = now or utcnow()
    session.add(conversation)
    record_event(
        session,
        "handoff.closed",
        customer_id=conversation.customer_id,
        payload={"conversation_id": conversation.id},
    )
    return True


async def send_staff_reply(
    session: AsyncSession, settings: Settings, conversation: Conversation, author: str, text: str
) -> TranscriptMessage:
    """A staff reply written outside the topic (the console): kept in the transcript, counted as the
    first response, sent to the customer through the outbox (no bot at hand here) and shown in the
    conversation's staff topic by the desk."""
    customer = present(await session.get(Customer, conversation.customer_id), "the conversation's customer")
    entry = add_transcript(session, saved_id(customer), "staff", text, author=author,
                           conversation_id=conversation.id)
    record_staff_reply(session, conversation)
    _post_to_topic(session, conversation, "reply", author, text)
    await enqueue(session, settings, customer, "handoff.staff_reply", {"author": author, "text": text},
                  lane=Lane.TRANSACTIONAL, wait_for_quiet_hours=False)
    await session.flush()
    return entry


def record_staff_file(
    session: AsyncSession, conversation: Conversation, author: str, kind: str, caption: str, *,
    file_id: str, file_name: str, telegram_message_id: int,
) -> TranscriptMessage:
    """A photo or document staff sent from outside the topic (the console sends it to the
    customer's chat itself: the outbox carries text only): kept in the transcript, counted as the
    first response, named in the staff topic."""
    entry = add_transcript(session, conversation.customer_id, "staff", caption, kind=kind, author=author,
                           conversation_id=conversation.id, telegram_message_id=telegram_message_id,
                           file_id=file_id, file_name=file_name)
    record_staff_reply(session, conversation)
    _post_to_topic(session, conversation, "reply", author, " ".join(filter(None, ("📎", file_name, caption))))
    return entry


def announce_claim(session: AsyncSession, conversation: Conversation, author: str) -> None:
    """A colleague took the conversation outside the topic (the console): the topic hears it as a
    claim made there (posted with the console's other lines)."""
    _post_to_topic(session, conversation, "claim", author)


async def close_and_ask_csat(
    session: AsyncSession,
    settings: Settings,
    conversation: Conversation,
    author: str,
    now: datetime | None = None,
) -> bool:
    """Close from outside the topic (the console): the customer is asked for a rating once, through
    the outbox, with the same buttons as /close; the desk says so in the staff topic and closes it.
    False if it was closed already (nothing is sent)."""
    if not close(session, conversation, now):
        return False
    _post_to_topic(session, conversation, "close", author)
    customer = present(await session.get(Customer, conversation.customer_id), "the conversation's customer")
    await session.flush()
    await enqueue(session, settings, customer, "handoff.csat", {"conversation_id": conversation.id},
                  lane=Lane.TRANSACTIONAL, wait_for_quiet_hours=False,
                  dedupe_key=f"handoff.csat:{conversation.id}")
    return True


def _post_to_topic(
    session: AsyncSession, conversation: Conversation, kind: str, author: str, text: str = ""
) -> None:
    """Leave a line for the staff desk to post in the conversation's topic (there is no bot here).

    Without a topic there is nothing to show it in: the card of a topic opened later carries the
    transcript anyway."""
    if conversation.id is None or conversation.staff_chat_id is None or conversation.topic_id is None:
        return
    session.add(TopicPost(conversation_id=conversation.id, kind=kind, author=author[:64],
                          text=text[:TOPIC_TEXT_LIMIT], created_at=utcnow()))


async def take_topic_posts(session: AsyncSession) -> list[tuple[TopicPost, Conversation]]:
    """The lines waiting for the staff topics, oldest first, each taken by one desk only.

    A line is deleted as it is taken: with several bot processes, the one whose delete removed
    the row posts it. The caller commits before posting."""
    query = (
        select(TopicPost, Conversation)
        .join(Conversation, col(Conversation.id) == TopicPost.conversation_id)
        .order_by(col(TopicPost.id))
    )
    taken: list[tuple[TopicPost, Conversation]] = []
    for post, conversation in (await session.exec(query)).all():
        result = await session.execute(delete(TopicPost).where(col(TopicPost.id) == post.id))
        if getattr(result, "rowcount", 0):
            taken.append((post, conversation))
    return taken


async def record_csat(
    session: AsyncSession, customer: Customer, conversation_id: int, score: int
) -> Conversation | None:
    """Store the rating once, for the customer's own closed conversation."""
    conversation = await session.get(Conversation, conversation_id)
    if (
        conversation is None
        or conversation.customer_id != customer.id
        or conversation.status != "closed"
        or conversation.csat is not None
        or not 1 <= score <= 5
    ):
        return None
    conversation.csat = score
    session.add(conversation)
    record_event(session, "handoff.csat", customer_id=customer.id, payload={"score": score})
    return conversation


async def rated_already(session: AsyncSession, customer: Customer, conversation_id: int) -> bool:
    """The customer's own conversation, rated before (a second tap on the rating buttons)."""
    conversation = await session.get(Conversation, conversation_id)
    return (
        conversation is not None
        and conversation.customer_id == customer.id
        and conversation.csat is not None
    )


# ------------------------------------------------------------------ transcript


def add_transcript(
    session: AsyncSession, customer_id: int, direction: str, body: str, **details: Any
) -> TranscriptMessage:
    """One line of the chat, in the caller's transaction; ``details`` as for ``transcript_row``."""
    entry = TranscriptMessage(**transcript_row(customer_id, direction, body, **details))
    session.add(entry)
    return entry


def transcript_row(
    customer_id: int,
    direction: str,
    body: str,
    *,
    kind: str = "text",
    author: str = "",
    conversation_id: int | None = None,
    telegram_message_id: int | None = None,
    file_id: str | None = None,
    file_name: str = "",
) -> dict[str, Any]:
    """The column values of a transcript line (direction in | out | staff | note; text capped; a
    photo or document by its Telegram file id), for ``add_transcript`` or a plain INSERT."""
    return {
        "customer_id": customer_id, "conversation_id": conversation_id, "direction": direction,
        "author": author[:64], "kind": kind[:16], "text": body[:TRANSCRIPT_TEXT_LIMIT],
        "telegram_message_id": telegram_message_id, "file_id": file_id[:256] if file_id else None,
        "file_name": file_name[:255], "created_at": utcnow(),
    }


async def recent_transcript(
    session: AsyncSession, customer_id: int, limit: int = 20
) -> list[TranscriptMessage]:
    query = (
        select(TranscriptMessage)
        .where(TranscriptMessage.customer_id == customer_id)
        .order_by(col(TranscriptMessage.id).desc())
        .limit(limit)
    )
    return list(reversed((await session.exec(query)).all()))


async def prune_transcripts(session: AsyncSession, keep: int, customer_ids: set[int] | None = None) -> int:
    """Forget chat lines outside conversations beyond the newest ``keep`` per customer.

    ``customer_ids`` limits the work to customers who wrote since the last prune.
    """
    only = ""
    params: dict[str, object] = {"keep": keep}
    if customer_ids is not None:
        if not customer_ids:
            return 0
        ids = sorted(customer_ids)
        only = " AND customer_id IN (" + ", ".join(f":c{n}" for n in range(len(ids))) + ")"
        params.update({f"c{n}": value for n, value in enumerate(ids)})
    result = await session.execute(
        text(
            "DELETE FROM transcript_messages WHERE id IN (SELECT id FROM ("
            "SELECT id, row_number() OVER (PARTITION BY customer_id ORDER BY id DESC) AS rn "
            f"FROM transcript_messages WHERE conversation_id IS NULL{only}) AS ranked WHERE rn > :keep)"
        ).bindparams(**params)
    )
    return int(getattr(result, "rowcount", 0) or 0)
