"""Read-only queries behind the console pages, straight from each capability's tables."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
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
from touchpoint.customers.models import BehaviourEvent, Customer, StoreCustomer
from touchpoint.formatting import format_money
from touchpoint.handoff.models import Conversation, TranscriptMessage
from touchpoint.i18n import resolve_locale
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
    return [(c, customer, last) for c, customer, last, _ in await inbox(session, "open")]


INBOX_VIEWS = ("open", "mine", "unassigned", "resolved")


async def inbox(
    session: AsyncSession, view: str = "open", me: str | None = None, limit: int = 200,
) -> list[tuple[Conversation, Customer, str | None, str | None]]:
    """Handoffs for a view, with the customer, the last thing said and who took it (or None).

    open: every open one, oldest first; mine: open ones ``me`` took; unassigned: open ones nobody
    took; resolved: closed ones, latest first. Taking one (console "Take it" or /claim in the
    staff topic) is a "claim" line in the transcript: the latest one names the assignee."""
    query = select(Conversation, Customer).join(Customer, col(Customer.id) == Conversation.customer_id)
    if view == "resolved":
        query = query.where(Conversation.status == "closed").order_by(
            col(Conversation.closed_at).desc(), col(Conversation.id).desc())
    else:
        query = query.where(Conversation.status == "open").order_by(
            col(Conversation.opened_at), col(Conversation.id))
    rows = (await session.exec(query.limit(limit if view == "resolved" else 2000))).all()
    assignees = await _assignees(session, [c.id for c, _ in rows if c.id is not None])
    result = []
    for conversation, customer in rows:
        assignee = assignees.get(conversation.id or 0)
        if (view == "mine" and (assignee is None or assignee != me)) or (view == "unassigned" and assignee):
            continue
        last = (await session.exec(
            select(TranscriptMessage.text).where(TranscriptMessage.conversation_id == conversation.id,
                                                 TranscriptMessage.direction != "note")
            .order_by(col(TranscriptMessage.id).desc()).limit(1)
        )).first()
        result.append((conversation, customer, last, assignee))
        if len(result) >= limit:
            break
    return result


async def _assignees(session: AsyncSession, ids: list[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for chunk in _chunks(ids):
        for conversation_id, author in (await session.exec(
            select(TranscriptMessage.conversation_id, TranscriptMessage.author)
            .where(col(TranscriptMessage.conversation_id).in_(chunk), TranscriptMessage.direction == "note",
                   TranscriptMessage.kind == "claim").order_by(col(TranscriptMessage.id))
        )).all():
            if conversation_id is not None:
                found[conversation_id] = author  # the latest claim wins
    return found


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
    locale: str = "en"  # the customer's language (their choice, else Telegram's)
    store_account: StoreCustomer | None = None
    spend: dict[str, int] = field(default_factory=dict)  # kept orders' totals by currency


async def context_card(session: AsyncSession, customer: Customer) -> ContextCard:
    orders = await customer_orders(session, customer)
    tickets = (await session.exec(select(Ticket).where(
        Ticket.customer_id == customer.id, col(Ticket.status).not_in(CLOSED_STATUSES)
    ))).all()
    journeys = (await session.exec(select(Enrolment).where(
        Enrolment.customer_id == customer.id, Enrolment.status == "active"
    ))).all()
    stages = await customer_stages(session, [customer])
    locale = resolve_locale(customer.locale, customer.language_code, "en")
    store_id = customer.store_customer_id
    account = await session.get(StoreCustomer, store_id) if store_id else None
    spend: dict[str, int] = defaultdict(int)
    for order in orders:
        if order.status not in NOT_SPENT:
            spend[order.currency] += order.total_minor
    return ContextCard(customer, FUNNEL_STAGES[stages.get(customer.id or 0, 0)], orders, list(tickets),
                       list(journeys), locale, account, dict(spend))


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
    kind: str  # status | message | rating | note
    text: str
    status: str | None = None  # the status moved to (kind "status")


async def ticket_history(session: AsyncSession, ticket: Ticket) -> list[HistoryItem]:
    """The lifecycle's own history (status changes, messages, rating) and the console's notes."""
    events = (await session.exec(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                                 .order_by(col(TicketEvent.id)))).all()
    notes = (await session.exec(
        select(ConsoleNote).where(ConsoleNote.subject == "ticket", ConsoleNote.subject_id == ticket.id)
        .order_by(col(ConsoleNote.id)))).all()
    items = [HistoryItem(e.created_at, e.author, e.kind, e.text, e.status if e.kind == "status" else None)
             for e in events]
    items += [HistoryItem(n.created_at, n.author, n.kind, n.text) for n in notes]
    return sorted(items, key=lambda item: item.created_at)


# --- customers ---

async def find_customers(session: AsyncSession, text: str) -> list[Customer]:
    """By name, @username, Telegram id, phone, or the linked store account's name, e-mail or phone,
    or one of its order numbers; the most recently seen first."""
    query = select(Customer).order_by(col(Customer.last_seen_at).desc()).limit(50)
    text = text.strip().lstrip("@")
    if text:
        like = f"%{text.lower()}%"
        store_ids = select(StoreCustomer.id).where(or_(
            func.lower(StoreCustomer.name).like(like), func.lower(StoreCustomer.email).like(like),
            col(StoreCustomer.phone).like(f"%{text.lstrip('+')}%")))
        ordered = select(Order.store_customer_id).where(func.lower(Order.number) == text.lower().lstrip("#"))
        linked = col(Customer.store_customer_id)
        conditions = [func.lower(Customer.first_name).like(like), func.lower(Customer.username).like(like),
                      linked.in_(store_ids), linked.in_(ordered)]
        if text.lstrip("+").isdigit():
            conditions += [col(Customer.phone).like(f"%{text.lstrip('+')}%"),
                           Customer.telegram_id == int(text.lstrip("+"))]
        query = query.where(or_(*conditions))
    return list((await session.exec(query)).all())


async def store_accounts(session: AsyncSession, customers: list[Customer]) -> dict[str, StoreCustomer]:
    """The linked store records of these customers, by id (to tell two Annas apart)."""
    ids = [c.store_customer_id for c in customers if c.store_customer_id]
    found: dict[str, StoreCustomer] = {}
    for chunk in _chunks(ids):
        query = select(StoreCustomer).where(col(StoreCustomer.id).in_(chunk))
        for record in (await session.exec(query)).all():
            found[record.id] = record
    return found


# Payload fields worth showing a person (values only, never "key=value").
READABLE_FIELDS = ("text", "query", "question", "number", "ticket", "ticket_number", "order_number", "order",
                   "sku", "name", "title", "code", "score")


@dataclass(order=True)
class TimelineItem:
    """One line: ``parts`` are (group, value) pairs the page turns into words: group "" is text shown
    as it is, "key" a console text key, anything else a code named through ``Words.label``."""

    at: datetime
    kind: str = field(compare=False)  # event | message | order | ticket | referral | nudge
    parts: list[tuple[str, str]] = field(compare=False, default_factory=list)
    detail: str = field(default="", compare=False)
    link: str | None = field(default=None, compare=False)
    amount: tuple[int, str] | None = field(default=None, compare=False)


TIMELINE_KINDS = ("event", "message", "order", "ticket", "referral", "nudge")


async def timeline(session: AsyncSession, customer: Customer, limit: int = 300) -> list[TimelineItem]:
    """Everything that happened with this customer, newest first."""
    cid = customer.id
    items: list[TimelineItem] = []
    for event in (await session.exec(select(BehaviourEvent).where(BehaviourEvent.customer_id == cid)
                                     .order_by(col(BehaviourEvent.id).desc()).limit(limit))).all():
        items.append(TimelineItem(event.occurred_at, "event", [("event", event.type)],
                                  _payload_summary(event.payload)))
    for message in (await session.exec(select(TranscriptMessage).where(TranscriptMessage.customer_id == cid)
                                       .order_by(col(TranscriptMessage.id).desc()).limit(limit))).all():
        parts = [("key", f"console.ui.who.{message.direction}")]
        if message.direction in ("staff", "note") and message.author:
            parts.append(("author", message.author))
        link = f"/inbox/{message.conversation_id}" if message.conversation_id else None
        text = message.text
        if message.direction == "note" and message.kind in ("claim", "close"):
            # Taking and closing are shown in words (the stored line is for the record only).
            parts, text = [("author", message.author), ("key", f"console.ui.tl.{message.kind}")], ""
        items.append(TimelineItem(message.created_at, "message", parts, text, link))
    for order in await customer_orders(session, customer):
        parts = [("key", "console.ui.tl.order"), ("", order.number), ("order_status", order.status)]
        amount = (order.total_minor, order.currency)
        items.append(TimelineItem(order.created_at, "order", parts, amount=amount))
    for ticket in (await session.exec(select(Ticket).where(Ticket.customer_id == cid))).all():
        parts = [("kind", ticket.kind), ("", ticket.number), ("ticket_status", ticket.status)]
        link = f"/tickets/{ticket.id}"
        items.append(TimelineItem(ticket.created_at, "ticket", parts, ticket.details, link))
    for referral in (await session.exec(select(Referral).where(
        or_(Referral.referrer_id == cid, Referral.referee_id == cid)
    ))).all():
        role = "console.ui.tl.referred" if referral.referrer_id == cid else "console.ui.tl.was_referred"
        other = referral.referee_id if referral.referrer_id == cid else referral.referrer_id
        items.append(TimelineItem(referral.created_at, "referral",
                                  [("key", role), ("referral_status", str(referral.status))], "",
                                  f"/customers/{other}"))
    for row in (await session.exec(select(OutboxMessage).where(OutboxMessage.customer_id == cid)
                                   .order_by(col(OutboxMessage.id).desc()).limit(limit))).all():
        parts = [("journey", row.journey_key) if row.journey_key else ("lane", row.lane),
                 ("outbox_status", row.status)]
        if row.reason:
            parts.append(("outbox_reason", row.reason))
        items.append(TimelineItem(row.sent_at or row.due_at, "nudge", parts))
    return sorted(items, reverse=True)[:limit]


def _payload_summary(payload: dict[str, Any]) -> str:
    """The payload's human parts (a question's words, an order or ticket number), values only."""
    values = [str(payload[name]) for name in READABLE_FIELDS
              if isinstance(payload.get(name), str | int) and not isinstance(payload.get(name), bool)
              and str(payload[name]).strip()]
    return " · ".join(values[:3])


def money(minor: int, currency: str, locale: str = "en") -> str:
    return format_money(minor, currency, locale)


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


async def csat_trend(
    session: AsyncSession, since: datetime, now: datetime, label: Callable[[datetime], str] | None = None,
) -> list[tuple[str, float | None, int]]:
    """Average CSAT (1–5) and how many ratings, per week of the period: rated tickets and rated
    handoff conversations. ``label`` names each week's first day (the staff member's date format)."""
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
    name = label or (lambda day: day.date().isoformat())
    return [(name(since + timedelta(weeks=w)), round(statistics.fmean(scores[w]), 2) if scores[w] else None,
             len(scores[w])) for w in range(weeks)]


async def weekly_counts(
    session: AsyncSession, since: datetime, now: datetime, label: Callable[[datetime], str] | None = None,
) -> list[tuple[str, list[int]]]:
    """Per week of the period (named by its first day): handoff conversations opened, tickets opened,
    journey conversions (messaged customers only: the holdout's are the comparison, not a result)."""
    weeks = max(1, min(26, (now - since).days // 7 + 1))
    opened_query = select(Conversation.opened_at).where(col(Conversation.opened_at) >= since)
    opened = (await session.exec(opened_query)).all()
    tickets = (await session.exec(select(Ticket.created_at).where(col(Ticket.created_at) >= since))).all()
    converted = (await session.exec(select(Enrolment.converted_at).where(
        col(Enrolment.converted_at) >= since, col(Enrolment.holdout).is_(False)))).all()
    counts = [[0, 0, 0] for _ in range(weeks)]
    for index, moments in enumerate((opened, tickets, converted)):
        for moment in moments:
            if moment is not None:
                counts[min(weeks - 1, (moment - since).days // 7)][index] += 1
    name = label or (lambda day: day.date().isoformat())
    return [(name(since + timedelta(weeks=w)), counts[w]) for w in range(weeks)]


async def csat_summary(session: AsyncSession, since: datetime) -> tuple[float | None, int]:
    """The period's average rating (1–5) and how many ratings it rests on (tickets and handoffs)."""
    scores = list((await session.exec(select(Ticket.csat).where(
        col(Ticket.csat).is_not(None), col(Ticket.updated_at) >= since))).all())
    scores += (await session.exec(select(Conversation.csat).where(
        col(Conversation.csat).is_not(None),
        func.coalesce(Conversation.closed_at, Conversation.opened_at) >= since))).all()
    values = [int(score) for score in scores if score is not None]
    return (round(statistics.fmean(values), 2) if values else None), len(values)


DEFAULT_ATTRIBUTION = timedelta(days=7)  # a journey without a conversion goal (and every campaign)


def attribution_windows(settings: Settings) -> dict[str, timedelta]:
    """How long after a journey's message an order still counts for it: its conversion goals' window."""
    windows: dict[str, timedelta] = {}
    for key, journey in load_journey_specs(settings).items():
        goals = [goal.within for goal in journey.exit if goal.conversion]
        windows[key] = max(goals) if goals else DEFAULT_ATTRIBUTION
    return windows


async def journey_revenue(
    session: AsyncSession, settings: Settings, since: datetime,
) -> dict[str, dict[str, int]]:
    """Money of kept orders placed in the period by a customer within a journey's attribution window
    after that journey messaged them, by journey and currency. Each order counts once, for the latest
    journey message before it (the last touch); customers held out get no messages, so none count."""
    windows = attribution_windows(settings)
    longest = max([DEFAULT_ATTRIBUTION, *windows.values()])
    orders = (await session.exec(select(Order.store_customer_id, Order.created_at, Order.total_minor,
                                        Order.currency).where(
        col(Order.created_at) >= since, col(Order.store_customer_id).is_not(None),
        col(Order.status).not_in(NOT_SPENT)))).all()
    if not orders:
        return {}
    touches: dict[str, list[tuple[datetime, str]]] = defaultdict(list)  # store account → (sent, journey)
    for store_id, sent_at, key in (await session.exec(
        select(Customer.store_customer_id, OutboxMessage.sent_at, OutboxMessage.journey_key)
        .join(Customer, col(Customer.id) == OutboxMessage.customer_id)
        .where(col(OutboxMessage.journey_key).is_not(None), OutboxMessage.status == "sent",
               col(OutboxMessage.sent_at) >= since - longest, col(Customer.store_customer_id).is_not(None))
    )).all():
        if store_id and sent_at and key:
            touches[store_id].append((sent_at, key))
    revenue: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for store_id, placed_at, total, currency in orders:
        before = [(sent, key) for sent, key in touches.get(store_id or "", ())
                  if sent <= placed_at and placed_at - sent <= windows.get(key, DEFAULT_ATTRIBUTION)]
        if before:
            revenue[max(before)[1]][currency] += total
    return {key: dict(amounts) for key, amounts in revenue.items()}


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


def load_journey_specs(settings: Settings) -> dict[str, Any]:
    """The journeys' own definitions by key (for the readable summary), none if the file is broken."""
    try:
        return {j.key: j for j in load_journeys(settings.journeys_file).journeys}
    except JourneyFileError:
        return {}


SEGMENTS = {
    "everyone": "Everyone who opted in to marketing",
    "buyers": "Customers who bought at least once",
    "no_purchase": "Customers who never bought",
    "lapsed_30d": "Not seen for 30 days",
}


async def segment_customers(
    session: AsyncSession, segment: str, now: datetime, *, marketable_only: bool = True,
) -> list[Customer]:
    """Customers in a segment; with ``marketable_only`` only those who may get marketing at all
    (consent, reachable, not paused) — without it, everyone, so a campaign can say who was held back
    and why (the contact rules decide that per customer)."""
    query = select(Customer)
    if marketable_only:
        query = query.where(Customer.marketing_consent, Customer.reachable,
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
