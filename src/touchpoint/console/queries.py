"""Read-only queries behind the console pages, straight from each capability's tables."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.aftersales.models import Ticket, TicketEvent
from touchpoint.aftersales.policy import KINDS
from touchpoint.aftersales.service import CLOSED_STATUSES
from touchpoint.catalog.models import FaqEntry
from touchpoint.config import Settings
from touchpoint.console.models import Campaign, ConsoleNote, JourneySetting
from touchpoint.customers.models import BehaviourEvent, Customer
from touchpoint.handoff.models import Conversation, TranscriptMessage
from touchpoint.journeys.engine import NOT_SPENT
from touchpoint.journeys.models import Enrolment
from touchpoint.journeys.spec import JourneyFileError, load_journeys
from touchpoint.journeys.stats import journey_stats
from touchpoint.messaging.models import OutboxMessage
from touchpoint.orders.models import Order, OrderItem
from touchpoint.referrals.models import Referral
from touchpoint.understanding.text import normalize

FUNNEL_STAGES = ("new", "engaged", "considering", "purchased", "repeat", "advocate")
# Event types that count as looking at products or filling a cart (events API and chat alike).
CONSIDERING_MARKERS = ("view", "cart", "wishlist", "product")
# What a free-text question records (touchpoint.understanding.service.understand_message).
UNANSWERED = "presale.question_unanswered"
SUGGESTED = "presale.question_suggested"
ANSWERED = "presale.question_answered"
FEEDBACK = "presale.feedback"  # {kind, id, helpful}: the 👍 / 👎 under an answer
SIMILAR = 90  # rapidfuzz ratio at which two phrasings of a question count as one (typos)

TICKET_KINDS = KINDS


# --- inbox ---

async def open_conversations(session: AsyncSession) -> list[tuple[Conversation, Customer, str | None]]:
    """Open handoffs, oldest first, with the customer and the last thing said."""
    rows = (await session.exec(
        select(Conversation, Customer).join(Customer, col(Customer.id) == Conversation.customer_id)
        .where(Conversation.status == "open").order_by(col(Conversation.opened_at), col(Conversation.id))
    )).all()
    result = []
    for conversation, customer in rows:
        last = (await session.exec(
            select(TranscriptMessage.text).where(TranscriptMessage.conversation_id == conversation.id,
                                                 TranscriptMessage.direction != "note")
            .order_by(col(TranscriptMessage.id).desc()).limit(1)
        )).first()
        result.append((conversation, customer, last))
    return result


async def transcript(
    session: AsyncSession, conversation: Conversation, after_id: int = 0, context: int = 20
) -> list[TranscriptMessage]:
    """The conversation's messages plus the customer's chat just before the handoff."""
    query = select(TranscriptMessage).where(
        TranscriptMessage.customer_id == conversation.customer_id, col(TranscriptMessage.id) > after_id,
        or_(TranscriptMessage.conversation_id == conversation.id,
            col(TranscriptMessage.created_at) >= conversation.opened_at - timedelta(days=1)),
    ).order_by(col(TranscriptMessage.id))
    rows = list((await session.exec(query)).all())
    return rows[-200:] if after_id else rows[-(200 + context):]


def claimed_by(messages: list[TranscriptMessage]) -> str | None:
    claims = [m.author for m in messages if m.direction == "note" and m.kind == "claim"]
    return claims[-1] if claims else None


@dataclass
class ContextCard:
    customer: Customer
    stage: str
    orders: list[Order]
    open_tickets: list[Ticket]
    journeys: list[Enrolment]


async def context_card(session: AsyncSession, customer: Customer) -> ContextCard:
    orders = await customer_orders(session, customer)
    tickets = (await session.exec(select(Ticket).where(
        Ticket.customer_id == customer.id, col(Ticket.status).not_in(CLOSED_STATUSES)
    ))).all()
    journeys = (await session.exec(select(Enrolment).where(
        Enrolment.customer_id == customer.id, Enrolment.status == "active"
    ))).all()
    stages = await customer_stages(session, [customer])
    return ContextCard(customer, FUNNEL_STAGES[stages.get(customer.id or 0, 0)], orders, list(tickets),
                       list(journeys))


async def customer_orders(session: AsyncSession, customer: Customer) -> list[Order]:
    if not customer.store_customer_id:
        return []
    return list((await session.exec(
        select(Order).where(Order.store_customer_id == customer.store_customer_id)
        .order_by(col(Order.created_at).desc())
    )).all())


# --- tickets ---

async def tickets(
    session: AsyncSession, now: datetime, kind: str = "", status: str = "", overdue: bool = False
) -> list[tuple[Ticket, Customer]]:
    query = select(Ticket, Customer).join(Customer, col(Customer.id) == Ticket.customer_id)
    if kind:
        query = query.where(Ticket.kind == kind)
    if status == "open":
        query = query.where(col(Ticket.status).not_in(CLOSED_STATUSES))
    elif status:
        query = query.where(Ticket.status == status)
    if overdue:
        query = query.where(col(Ticket.first_response_at).is_(None),
                            col(Ticket.first_response_due_at) < now)
    return list((await session.exec(query.order_by(col(Ticket.created_at).desc()).limit(500))).all())


def is_overdue(ticket: Ticket, now: datetime) -> bool:
    due = ticket.first_response_due_at
    return ticket.first_response_at is None and due is not None and due < now


@dataclass
class HistoryItem:
    created_at: datetime
    author: str
    kind: str
    text: str


async def ticket_history(session: AsyncSession, ticket: Ticket) -> list[HistoryItem]:
    """The lifecycle's own history (status changes, messages, rating) and the console's notes."""
    events = (await session.exec(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                                 .order_by(col(TicketEvent.id)))).all()
    notes = (await session.exec(
        select(ConsoleNote).where(ConsoleNote.subject == "ticket", ConsoleNote.subject_id == ticket.id)
        .order_by(col(ConsoleNote.id)))).all()
    items = [HistoryItem(e.created_at, e.author, e.kind,
                         " · ".join(filter(None, (e.status if e.kind == "status" else "", e.text))))
             for e in events]
    items += [HistoryItem(n.created_at, n.author, n.kind, n.text) for n in notes]
    return sorted(items, key=lambda item: item.created_at)


# --- customers ---

async def find_customers(session: AsyncSession, text: str) -> list[Customer]:
    query = select(Customer).order_by(col(Customer.last_seen_at).desc()).limit(50)
    text = text.strip()
    if text:
        like = f"%{text.lower()}%"
        conditions = [func.lower(Customer.first_name).like(like), func.lower(Customer.username).like(like)]
        if text.lstrip("+").isdigit():
            conditions += [col(Customer.phone).like(f"%{text.lstrip('+')}%"),
                           Customer.telegram_id == int(text.lstrip("+"))]
        query = query.where(or_(*conditions))
    return list((await session.exec(query)).all())


@dataclass(order=True)
class TimelineItem:
    at: datetime
    kind: str = field(compare=False)  # event | message | order | ticket | referral | nudge
    title: str = field(compare=False)
    detail: str = field(default="", compare=False)
    link: str | None = field(default=None, compare=False)


async def timeline(session: AsyncSession, customer: Customer, limit: int = 300) -> list[TimelineItem]:
    """Everything that happened with this customer, newest first."""
    cid = customer.id
    items: list[TimelineItem] = []
    for event in (await session.exec(select(BehaviourEvent).where(BehaviourEvent.customer_id == cid)
                                     .order_by(col(BehaviourEvent.id).desc()).limit(limit))).all():
        items.append(TimelineItem(event.occurred_at, "event", event.type, _payload_summary(event.payload)))
    for message in (await session.exec(select(TranscriptMessage).where(TranscriptMessage.customer_id == cid)
                                       .order_by(col(TranscriptMessage.id).desc()).limit(limit))).all():
        who = {"in": "customer", "out": "bot", "staff": f"staff · {message.author}",
               "note": f"note · {message.author}"}.get(message.direction, message.direction)
        link = f"/inbox/{message.conversation_id}" if message.conversation_id else None
        items.append(TimelineItem(message.created_at, "message", who, message.text, link))
    for order in await customer_orders(session, customer):
        items.append(TimelineItem(order.created_at, "order", f"order {order.number} · {order.status}",
                                  money(order.total_minor, order.currency)))
    for ticket in (await session.exec(select(Ticket).where(Ticket.customer_id == cid))).all():
        title = f"{ticket.kind} {ticket.number} · {ticket.status}"
        link = f"/tickets/{ticket.id}"
        items.append(TimelineItem(ticket.created_at, "ticket", title, ticket.details, link))
    for referral in (await session.exec(select(Referral).where(
        or_(Referral.referrer_id == cid, Referral.referee_id == cid)
    ))).all():
        role = "referred a friend" if referral.referrer_id == cid else "was referred"
        other = referral.referee_id if referral.referrer_id == cid else referral.referrer_id
        items.append(TimelineItem(referral.created_at, "referral", f"{role} · {referral.status}", "",
                                  f"/customers/{other}"))
    for row in (await session.exec(select(OutboxMessage).where(OutboxMessage.customer_id == cid)
                                   .order_by(col(OutboxMessage.id).desc()).limit(limit))).all():
        detail = row.journey_key or row.lane
        items.append(TimelineItem(row.sent_at or row.due_at, "nudge", f"{row.template} · {row.status}",
                                  f"{detail}{f' ({row.reason})' if row.reason else ''}"))
    return sorted(items, reverse=True)[:limit]


def _payload_summary(payload: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in list(payload.items())[:4])


def money(minor: int, currency: str) -> str:
    return f"{minor / 100:.2f} {currency}"


# --- dashboard ---

async def customer_stages(session: AsyncSession, customers: list[Customer]) -> dict[int, int]:
    """Each customer's furthest stage as an index into FUNNEL_STAGES."""
    ids = [c.id for c in customers if c.id is not None]
    if not ids:
        return {}
    engaged: set[int] = set()
    considering: set[int] = set()
    for chunk in _chunks(ids):
        for customer_id, event_type in (await session.exec(
            select(BehaviourEvent.customer_id, BehaviourEvent.type).distinct()
            .where(col(BehaviourEvent.customer_id).in_(chunk))
        )).all():
            if customer_id is None:
                continue
            if event_type not in ("chat.start", "chat.stop"):
                engaged.add(customer_id)
            if not event_type.startswith("chat.") and any(m in event_type for m in CONSIDERING_MARKERS):
                considering.add(customer_id)
    store_ids = {c.store_customer_id: c.id for c in customers if c.store_customer_id}
    orders: Counter[int] = Counter()
    for chunk in _chunks(list(store_ids)):
        for store_id, count in (await session.exec(
            select(Order.store_customer_id, func.count()).where(col(Order.store_customer_id).in_(chunk),
                                                                col(Order.status).not_in(NOT_SPENT))
            .group_by(col(Order.store_customer_id))
        )).all():
            orders[store_ids[store_id]] = count
    advocates: set[int] = set()
    for chunk in _chunks(ids):
        advocates |= set((await session.exec(
            select(Referral.referrer_id).distinct().where(col(Referral.referrer_id).in_(chunk))
        )).all())
    stages: dict[int, int] = {}
    for customer_id in ids:
        # Stages build on each other: a purchase implies consideration, a referral implies a customer.
        # A purchase is an order the customer kept: cancelled, returned or refunded ones do not count.
        level = 0
        if customer_id in engaged:
            level = 1
        if customer_id in considering:
            level = 2
        if orders[customer_id] >= 1:
            level = 3
        if orders[customer_id] >= 2:
            level = 4
        if customer_id in advocates:
            level = max(level, 5)
        stages[customer_id] = level
    return stages


def _chunks(values: list[Any], size: int = 500) -> list[list[Any]]:
    return [values[i:i + size] for i in range(0, len(values), size)]


async def funnel(session: AsyncSession, since: datetime) -> list[tuple[str, int]]:
    """Customers active in the period, counted at every stage they reached."""
    customers = list((await session.exec(select(Customer).where(col(Customer.last_seen_at) >= since))).all())
    levels = (await customer_stages(session, customers)).values()
    return [(stage, sum(1 for level in levels if level >= index))
            for index, stage in enumerate(FUNNEL_STAGES)]


@dataclass
class JourneyNumbers:
    key: str
    sent: int = 0
    delivered: int = 0
    clicked: int = 0
    converted: int = 0
    enrolled: int = 0
    holdout: int = 0
    holdout_converted: int = 0
    paused: bool = False

    @property
    def conversion(self) -> float | None:
        treated = self.enrolled - self.holdout
        return (self.converted / treated) if treated else None

    @property
    def holdout_conversion(self) -> float | None:
        return (self.holdout_converted / self.holdout) if self.holdout else None

    @property
    def uplift_points(self) -> float | None:
        """Conversion of messaged customers minus that of the holdout, in percentage points."""
        if self.conversion is None or self.holdout_conversion is None:
            return None
        return round(100 * (self.conversion - self.holdout_conversion), 1)


async def journey_numbers(session: AsyncSession, since: datetime | None = None) -> dict[str, JourneyNumbers]:
    """The console's view of ``journeys.stats.journey_stats`` (the one definition of the numbers:
    customers who blocked the bot are left out of both groups), plus each journey's pause switch."""
    numbers = {stats.journey: JourneyNumbers(
        stats.journey, sent=stats.sent, delivered=stats.delivered, clicked=stats.clicked,
        converted=stats.converted, enrolled=stats.enrolled + stats.held_out, holdout=stats.held_out,
        holdout_converted=stats.converted_holdout,
    ) for stats in await journey_stats(session, since)}
    for setting in (await session.exec(select(JourneySetting))).all():
        numbers.setdefault(setting.journey_key, JourneyNumbers(setting.journey_key)).paused = setting.paused
    return numbers


async def csat_trend(session: AsyncSession, since: datetime, now: datetime) -> list[tuple[str, float | None]]:
    """Average CSAT (1–5) per week of the period: rated tickets and rated handoff conversations."""
    rows = list((await session.exec(select(Ticket.closed_at, Ticket.updated_at, Ticket.csat).where(
        col(Ticket.csat).is_not(None), col(Ticket.updated_at) >= since))).all())
    rated = select(Conversation.closed_at, Conversation.opened_at, Conversation.csat).where(
        col(Conversation.csat).is_not(None),
        func.coalesce(Conversation.closed_at, Conversation.opened_at) >= since)
    rows += (await session.exec(rated)).all()
    weeks = max(1, min(26, (now - since).days // 7 + 1))
    scores: dict[int, list[int]] = defaultdict(list)
    for closed_at, updated_at, csat in rows:
        week = min(weeks - 1, ((closed_at or updated_at) - since).days // 7)
        scores[week].append(csat)
    return [((since + timedelta(weeks=w)).strftime("%d %b"),
             round(statistics.fmean(scores[w]), 2) if scores[w] else None) for w in range(weeks)]


@dataclass
class HandoffTimes:
    opened: int
    still_open: int
    first_response_median_min: float | None
    resolution_median_min: float | None


async def handoff_times(session: AsyncSession, since: datetime) -> HandoffTimes:
    rows = (await session.exec(select(Conversation).where(col(Conversation.opened_at) >= since))).all()
    first = [(c.first_response_at - c.opened_at).total_seconds() / 60 for c in rows if c.first_response_at]
    resolved = [(c.closed_at - c.opened_at).total_seconds() / 60 for c in rows if c.closed_at]
    return HandoffTimes(
        len(rows), sum(1 for c in rows if c.status != "closed"),
        round(statistics.median(first), 1) if first else None,
        round(statistics.median(resolved), 1) if resolved else None,
    )


@dataclass
class ContentGap:
    """One question (its phrasings grouped) the bot could not answer well, with how it went."""

    text: str  # the phrasing customers used most
    unanswered: int = 0  # no match at all
    suggested: int = 0  # only suggestions offered
    disliked: int = 0  # answered, and the answer got 👎
    phrasings: Counter[str] = field(default_factory=Counter, repr=False)

    @property
    def total(self) -> int:
        return self.unanswered + self.suggested + self.disliked


async def content_gaps(session: AsyncSession, since: datetime, top: int = 10) -> list[ContentGap]:
    """Questions the bot could not answer, only guessed at, or answered with a 👎: most frequent first.

    Each question asked counts once, by how it ended (suggestions, then a 👎 on the one picked: 👎).
    Phrasings are grouped case-insensitively, ignoring punctuation and filler words (the matcher's own
    normalisation), and near-identical ones (typos) are merged.
    """
    disliked = await _disliked_questions(session, since)
    missed = (await session.exec(select(BehaviourEvent.id, BehaviourEvent.type, BehaviourEvent.payload).where(
        col(BehaviourEvent.type).in_((UNANSWERED, SUGGESTED)), col(BehaviourEvent.occurred_at) >= since
    ))).all()
    asked = [("unanswered" if event_type == UNANSWERED else "suggested", str(payload.get("text") or ""))
             for event_id, event_type, payload in missed if event_id not in disliked]
    asked += [("disliked", text) for text in disliked.values()]  # (how it went, the customer's words)
    return _group_gaps(asked)[:top]


async def _disliked_questions(session: AsyncSession, since: datetime) -> dict[int, str]:
    """The question behind each 👎, by its event id: the feedback names only the answer, so take the
    customer's last question before it that got this answer (or suggestions, where the FAQ entry was
    picked). A question 👎'd twice is one question."""
    feedback_rows = (await session.exec(
        select(BehaviourEvent.customer_id, BehaviourEvent.occurred_at, BehaviourEvent.payload).where(
            BehaviourEvent.type == FEEDBACK, col(BehaviourEvent.occurred_at) >= since,
            col(BehaviourEvent.customer_id).is_not(None))
    )).all()
    dislikes = [(customer_id, at, payload) for customer_id, at, payload in feedback_rows
                if payload.get("helpful") is False]
    questions: dict[int, list[tuple[datetime, int, str, dict[str, Any]]]] = defaultdict(list)
    for chunk in _chunks(sorted({customer_id for customer_id, _, _ in dislikes})):
        for customer_id, at, event_id, event_type, payload in (await session.exec(
            select(BehaviourEvent.customer_id, BehaviourEvent.occurred_at, BehaviourEvent.id,
                   BehaviourEvent.type, BehaviourEvent.payload)
            .where(col(BehaviourEvent.customer_id).in_(chunk),
                   col(BehaviourEvent.type).in_((ANSWERED, SUGGESTED)))
        )).all():
            questions[customer_id].append((at, event_id or 0, event_type, payload))
    texts: dict[int, str] = {}
    for customer_id, at, feedback in dislikes:
        earlier = sorted((q for q in questions[customer_id] if q[0] <= at), key=lambda q: q[:2], reverse=True)
        for _, event_id, event_type, payload in earlier:
            if (event_type == SUGGESTED and feedback.get("kind") == "faq") or (
                    (payload.get("kind"), payload.get("id")) == (feedback.get("kind"), feedback.get("id"))):
                texts[event_id] = str(payload.get("text") or "")
                break
    return texts


def _group_gaps(asked: list[tuple[str, str]]) -> list[ContentGap]:
    groups: dict[str, ContentGap] = {}
    for outcome, raw in asked:
        text = " ".join(raw.split())[:120]
        if not text:
            continue
        gap = groups.setdefault(normalize(text) or text.casefold(), ContentGap(text))
        setattr(gap, outcome, getattr(gap, outcome) + 1)
        gap.phrasings[text] += 1
    # Merge near-identical keys into the more frequent one; only the leading groups are merged into,
    # which keeps this linear in the number of phrasings.
    merged: dict[str, ContentGap] = {}
    leaders: list[str] = []
    for key, gap in sorted(groups.items(), key=lambda item: (-item[1].total, item[0])):
        found = process.extractOne(key, leaders, scorer=fuzz.ratio, score_cutoff=SIMILAR)
        if found is None:
            merged[key] = gap
            if len(leaders) < 300:
                leaders.append(key)
            continue
        target = merged[found[0]]
        target.unanswered += gap.unanswered
        target.suggested += gap.suggested
        target.disliked += gap.disliked
        target.phrasings.update(gap.phrasings)
    for gap in merged.values():
        gap.text = min(gap.phrasings.items(), key=lambda phrasing: (-phrasing[1], phrasing[0]))[0]
    return sorted(merged.values(), key=lambda gap: (-gap.total, -gap.unanswered, gap.text))


# --- journeys and campaigns ---

def load_journey_definitions(settings: Settings) -> dict[str, dict[str, Any]]:
    """Journey definitions by key, read by the journeys' own loader from the configured rules file."""
    try:
        journeys = load_journeys(settings.journeys_file).journeys
    except JourneyFileError:
        return {}  # the engine refuses to start on it; the page still shows what ran
    return {j.key: j.model_dump(mode="json", exclude_defaults=True) for j in journeys}


SEGMENTS = {
    "everyone": "Everyone who opted in to marketing",
    "buyers": "Customers who bought at least once",
    "no_purchase": "Customers who never bought",
    "lapsed_30d": "Not seen for 30 days",
}


async def segment_customers(session: AsyncSession, segment: str, now: datetime) -> list[Customer]:
    """Customers in a segment who may get marketing at all (consent, reachable, not paused)."""
    query = select(Customer).where(Customer.marketing_consent, Customer.reachable,
                                   col(Customer.nudges_paused).is_(False))
    buyers = select(Order.store_customer_id).where(col(Order.store_customer_id).is_not(None),
                                                   col(Order.status).not_in(NOT_SPENT))
    if segment == "buyers":
        query = query.where(col(Customer.store_customer_id).in_(buyers))
    elif segment == "no_purchase":
        query = query.where(or_(col(Customer.store_customer_id).is_(None),
                                col(Customer.store_customer_id).not_in(buyers)))
    elif segment == "lapsed_30d":
        query = query.where(col(Customer.last_seen_at) < now - timedelta(days=30))
    elif segment != "everyone":
        raise ValueError(f"unknown segment {segment!r}")
    return list((await session.exec(query.order_by(col(Customer.id)))).all())


async def campaigns(session: AsyncSession) -> list[Campaign]:
    return list((await session.exec(select(Campaign).order_by(col(Campaign.id).desc()).limit(100))).all())


async def order_items(session: AsyncSession, order_ids: list[int]) -> dict[int, list[OrderItem]]:
    items: dict[int, list[OrderItem]] = defaultdict(list)
    if order_ids:
        query = select(OrderItem).where(col(OrderItem.order_id).in_(order_ids))
        for item in (await session.exec(query)).all():
            items[item.order_id].append(item)
    return items


async def faq_choices(session: AsyncSession, locale: str) -> list[tuple[str, str]]:
    """Every FAQ entry as (id, its first question in the staff member's language), for pickers."""
    entries = (await session.exec(select(FaqEntry).order_by(col(FaqEntry.id)))).all()
    return [(entry.id, next(iter(entry.questions.get(locale) or entry.questions.get("en")
                                 or [q for qs in entry.questions.values() for q in qs] or [entry.id])))
            for entry in entries]
