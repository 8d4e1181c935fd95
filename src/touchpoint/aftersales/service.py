"""After-sales tickets: requests from the chat, the lifecycle staff drive, notifications, CSAT.

Staff surfaces (handoff commands, console, CLI) call the functions here; none of them change a
ticket's status any other way, so every change is recorded, evented and told to the customer.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.aftersales.models import AftersalesDraft, Ticket, TicketEvent
from touchpoint.aftersales.policy import Decision, ItemFacts, PolicyRules, check_request
from touchpoint.catalog.models import Category, Product, Stock
from touchpoint.checks import present
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.customers.service import record_event
from touchpoint.handoff.rules import is_distress
from touchpoint.handoff.service import LOW_CSAT, escalate
from touchpoint.messaging.outbox import enqueue
from touchpoint.messaging.rules import Lane, register_veto
from touchpoint.orders.models import Order, OrderItem

SERVICE_CASE_KINDS = ("complaint", "return", "exchange", "repair")
CLOSED_STATUSES = ("closed", "rejected", "cancelled")
# Units in these tickets count as "already returned" for the same order item.
CLAIMING_KINDS = ("return", "exchange")
STATUSES = (
    "new", "in_review", "approved", "rejected", "item_received", "refunded", "replaced", "repaired",
    "closed", "cancelled",
)
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("in_review", "approved", "rejected", "closed", "cancelled"),
    "in_review": ("approved", "rejected", "closed", "cancelled"),
    "approved": ("item_received", "rejected", "closed"),
    "item_received": ("refunded", "replaced", "repaired", "closed"),
    "refunded": ("closed",),
    "replaced": ("closed",),
    "repaired": ("closed",),
    "rejected": ("in_review", "closed"),
    "closed": ("in_review",),
    "cancelled": (),
}
REASONS = ("defective", "damaged", "wrong_item", "not_as_described", "changed_mind", "other")
# "Changed my mind" is a reason to send something back, not to repair it or complain about it.
_MIND_CHANGES = ("return", "exchange")


def reasons_for(kind: str | None) -> tuple[str, ...]:
    """The reasons offered for a kind of request."""
    return REASONS if kind in _MIND_CHANGES else tuple(r for r in REASONS if r != "changed_mind")
MAX_TEXT = 2000


class TicketError(ValueError):
    """A request staff or the customer made that the lifecycle refuses; ``code`` says why."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


async def has_open_service_case(session: AsyncSession, customer_id: int) -> bool:
    """True while the customer waits on us: marketing must stay silent then."""
    return customer_id in await customers_with_open_service_case(session, [customer_id])


async def customers_with_open_service_case(session: AsyncSession, customer_ids: Collection[int]) -> set[int]:
    """Which of these customers wait on us (an open complaint, return, exchange or repair)."""
    query = select(Ticket.customer_id).distinct().where(
        col(Ticket.customer_id).in_(customer_ids),
        Ticket.kind.in_(SERVICE_CASE_KINDS),  # type: ignore[attr-defined]
        Ticket.status.not_in(CLOSED_STATUSES),  # type: ignore[attr-defined]
    )
    return set((await session.exec(query)).all())


# An open complaint, return, exchange or repair silences marketing (messaging asks, never imports us).
register_veto("open_service_case", customers_with_open_service_case, rank=10)


def policy_rules(settings: Settings) -> PolicyRules:
    return PolicyRules(
        settings.return_window_days, dict(settings.return_window_days_by_category),
        frozenset(settings.non_returnable_categories),
    )


# --- orders and policy -------------------------------------------------------------------------

async def customer_orders(session: AsyncSession, customer: Customer, limit: int = 10) -> list[Order]:
    """The customer's orders, newest first: only through their linked store record."""
    if not customer.store_customer_id:
        return []
    query = (
        select(Order).where(Order.store_customer_id == customer.store_customer_id)
        .order_by(col(Order.created_at).desc()).limit(limit)
    )
    return list((await session.exec(query)).all())


async def customer_order(session: AsyncSession, customer: Customer, order_id: int) -> Order | None:
    """One order, if it is this customer's (ids in buttons are never trusted on their own)."""
    order = await session.get(Order, order_id)
    if order is None or not customer.store_customer_id:
        return None
    return order if order.store_customer_id == customer.store_customer_id else None


async def order_items(session: AsyncSession, order_id: int) -> list[OrderItem]:
    query = select(OrderItem).where(OrderItem.order_id == order_id).order_by(col(OrderItem.id))
    return list((await session.exec(query)).all())


async def item_facts(session: AsyncSession, order: Order, item_ids: list[int]) -> list[ItemFacts]:
    items = [i for i in await order_items(session, order.id or 0) if i.id in item_ids]
    claimed: dict[int, int] = {}
    tickets = await session.exec(select(Ticket).where(
        Ticket.order_id == order.id, col(Ticket.kind).in_(CLAIMING_KINDS),
        col(Ticket.status).not_in(("rejected", "cancelled")),
    ))
    for ticket in tickets.all():
        for line in ticket.items:
            key = int(line.get("order_item_id", 0))
            claimed[key] = claimed.get(key, 0) + int(line.get("quantity", 1))
    facts = []
    for item in items:
        product = await session.get(Product, item.sku)
        category = await session.get(Category, product.category_id) if product else None
        stock = (await session.exec(
            select(func.coalesce(func.sum(Stock.quantity - Stock.reserved), 0)).where(Stock.sku == item.sku)
        )).one()
        facts.append(ItemFacts(
            order_item_id=item.id or 0, sku=item.sku,
            category_id=product.category_id if product else None,
            returnable=(product is None or product.returnable)
            and (category is None or category.returnable),
            warranty_months=product.warranty_months if product else 0,
            quantity=item.quantity, already_claimed=claimed.get(item.id or 0, 0), in_stock=int(stock or 0),
        ))
    return facts


async def check_policy(
    session: AsyncSession, settings: Settings, order: Order, item_ids: list[int], kind: str,
    now: datetime | None = None,
) -> Decision:
    facts = await item_facts(session, order, item_ids)
    if not facts:
        raise TicketError("no_items")
    return check_request(kind, facts, order.delivered_at, now or utcnow(), policy_rules(settings))


# --- the request draft (persisted flow state) --------------------------------------------------

# The request flow, in order; "ticket_message" and "csat_comment" are one-step side flows.
FLOW_STEPS = ("order", "items", "kind", "reason", "details", "photos", "summary")


def previous_step(step: str) -> str | None:
    index = FLOW_STEPS.index(step) if step in FLOW_STEPS else 0
    return FLOW_STEPS[index - 1] if index > 0 else None


async def get_draft(session: AsyncSession, customer_id: int) -> AftersalesDraft | None:
    return await session.get(AftersalesDraft, customer_id)


async def save_draft(
    session: AsyncSession, customer_id: int, step: str, data: dict[str, Any]
) -> AftersalesDraft:
    draft = await get_draft(session, customer_id)
    if draft is None:
        draft = AftersalesDraft(customer_id=customer_id, step=step, data=data, updated_at=utcnow())
    else:
        # A new dict, so the JSON column is seen as changed.
        draft.step, draft.data, draft.updated_at = step, dict(data), utcnow()
    session.add(draft)
    return draft


async def drop_draft(session: AsyncSession, customer_id: int) -> AftersalesDraft | None:
    draft = await get_draft(session, customer_id)
    if draft is not None:
        await session.delete(draft)
    return draft


# Steps that wait for the customer's own words: what they type belongs there, angry or not.
WORDS_STEPS = ("details", "ticket_message", "csat_comment")


async def awaits_words(session: AsyncSession, customer_id: int) -> bool:
    """True while a request waits for the customer's words (the handoff's distress check steps
    aside then; ``hand_over_if_upset`` flags the words once they are stored)."""
    draft = await get_draft(session, customer_id)
    return draft is not None and draft.step in WORDS_STEPS


async def hand_over_if_upset(
    session: AsyncSession, settings: Settings, customer: Customer, text: str
) -> str | None:
    """Words stored in a request that count as distress hand the customer to staff (reason
    "distress"; the card lists the ticket). Returns the wait message, or None if nothing opened."""
    if not is_distress(text, settings.handoff_distress_words):
        return None
    escalation = await escalate(session, customer, "distress", settings=settings)
    if not escalation.created:
        return None
    await drop_draft(session, customer.id or 0)  # from now on the customer talks to a person
    return escalation.text


# --- tickets --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NewTicket:
    kind: str
    order_id: int | None = None
    items: tuple[dict[str, Any], ...] = ()  # {"order_item_id", "sku", "quantity", "name"}
    reason: str | None = None
    details: str = ""
    photos: tuple[str, ...] = ()


def is_overdue(ticket: Ticket, now: datetime | None = None) -> bool:
    """No first response yet and its due time has passed."""
    return (
        ticket.first_response_at is None and ticket.status not in CLOSED_STATUSES
        and ticket.first_response_due_at is not None and (now or utcnow()) > ticket.first_response_due_at
    )


async def create_ticket(
    session: AsyncSession, settings: Settings, customer: Customer, request: NewTicket,
    *, author: str = "customer",
) -> Ticket:
    """Opens a ticket numbered R-000123 with its first-response due time."""
    now = utcnow()
    ticket = Ticket(
        number=f"tmp-{uuid.uuid4().hex[:12]}", customer_id=customer.id or 0, order_id=request.order_id,
        kind=request.kind, reason=request.reason, details=request.details[:MAX_TEXT],
        items=list(request.items), photos=list(request.photos), created_at=now, updated_at=now,
        first_response_due_at=now + timedelta(hours=settings.ticket_first_response_hours),
    )
    session.add(ticket)
    await session.flush()  # the id makes the number: unique across processes without a counter
    ticket.number = f"R-{ticket.id:06d}"
    session.add(ticket)
    session.add(TicketEvent(ticket_id=ticket.id or 0, kind="status", author=author, status="new",
                            text=ticket.details, photos=list(ticket.photos), created_at=now))
    record_event(session, "aftersales.submitted", customer_id=customer.id, payload={
        "ticket": ticket.number, "kind": ticket.kind, "reason": ticket.reason,
        "photos": len(ticket.photos), "via": author.split(":")[0],
    })
    return ticket


async def create_ticket_from_conversation(
    session: AsyncSession, settings: Settings, customer_id: int, kind: str, details: str,
    *, staff: str, order_id: int | None = None,
) -> Ticket:
    """Staff turn a handed-over chat into a ticket; counts as the first response."""
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise TicketError("no_customer")
    ticket = await create_ticket(
        session, settings, customer, NewTicket(kind=kind, order_id=order_id, details=details),
        author=f"staff:{staff}",
    )
    ticket.first_response_at = ticket.created_at
    await _send(session, settings, customer, "aftersales.status",
                {"ticket_id": ticket.id, "number": ticket.number, "kind": kind, "status": "new", "note": ""},
                f"ticket:{ticket.id}:created")
    return ticket


async def get_ticket(session: AsyncSession, number_or_id: str | int) -> Ticket | None:
    if isinstance(number_or_id, int) or str(number_or_id).isdigit():
        return await session.get(Ticket, int(number_or_id))
    query = select(Ticket).where(Ticket.number == str(number_or_id).upper())
    return (await session.exec(query)).first()


async def customer_ticket(session: AsyncSession, customer: Customer, ticket_id: int) -> Ticket | None:
    ticket = await session.get(Ticket, ticket_id)
    return ticket if ticket is not None and ticket.customer_id == customer.id else None


async def customer_tickets(session: AsyncSession, customer_id: int, limit: int = 10) -> list[Ticket]:
    query = (select(Ticket).where(Ticket.customer_id == customer_id)
             .order_by(col(Ticket.id).desc()).limit(limit))
    return list((await session.exec(query)).all())


async def list_tickets(
    session: AsyncSession, *, status: str | None = None, overdue: bool = False, limit: int = 100,
) -> list[Ticket]:
    query = select(Ticket).order_by(col(Ticket.id).desc())
    if status == "open":
        query = query.where(col(Ticket.status).not_in(CLOSED_STATUSES))
    elif status:
        query = query.where(Ticket.status == status)
    if overdue:
        query = query.where(
            col(Ticket.first_response_at).is_(None), col(Ticket.status).not_in(CLOSED_STATUSES),
            col(Ticket.first_response_due_at) < utcnow(),
        )
    return list((await session.exec(query.limit(limit))).all())


async def ticket_history(session: AsyncSession, ticket_id: int) -> list[TicketEvent]:
    query = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(col(TicketEvent.id))
    return list((await session.exec(query)).all())


async def set_status(
    session: AsyncSession, settings: Settings, ticket: Ticket, status: str,
    *, staff: str, note: str | None = None,
) -> Ticket:
    """Moves a ticket along its lifecycle and tells the customer (transactional lane)."""
    if status not in TRANSITIONS.get(ticket.status, ()):
        raise TicketError("bad_transition")
    if status == "rejected" and not (note and note.strip()):
        raise TicketError("reason_required")
    now = utcnow()
    previous = ticket.status
    ticket.status, ticket.updated_at = status, now
    if note:
        ticket.resolution = note.strip()[:MAX_TEXT]
    if ticket.first_response_at is None and not staff.startswith("customer"):
        ticket.first_response_at = now
    ticket.closed_at = now if status in CLOSED_STATUSES else None
    session.add(ticket)
    customer = present(await session.get(Customer, ticket.customer_id), "the ticket's customer")
    await _notify(session, settings, customer, ticket, note, author=staff,
                  tell_customer=not staff.startswith("customer"))
    record_event(session, "aftersales.status_changed", customer_id=customer.id, payload={
        "ticket": ticket.number, "from": previous, "to": status,
    })
    if status == "closed":
        # The ticket_followup journey ("sorted?" three days later) triggers on this.
        record_event(session, "ticket.closed", customer_id=customer.id,
                     payload={"ticket_number": ticket.number})
        await _send(session, settings, customer, "aftersales.csat",
                    {"ticket_id": ticket.id, "number": ticket.number},
                    f"ticket:{ticket.id}:csat:{ticket.csat is None}:{int(now.timestamp())}")
    return ticket


async def _notify(
    session: AsyncSession, settings: Settings, customer: Customer, ticket: Ticket, note: str | None,
    *, author: str = "system", tell_customer: bool = True,
) -> None:
    event = TicketEvent(ticket_id=ticket.id or 0, kind="status", author=author, status=ticket.status,
                        text=note or "", created_at=utcnow())
    session.add(event)
    await session.flush()
    if tell_customer:
        await _send(
            session, settings, customer, "aftersales.status",
            {"ticket_id": ticket.id, "number": ticket.number, "kind": ticket.kind,
             "status": ticket.status, "note": note or ""},
            f"ticket:{ticket.id}:event:{event.id}",
        )


async def _send(
    session: AsyncSession, settings: Settings, customer: Customer, template: str,
    params: dict[str, Any], dedupe_key: str,
) -> None:
    await enqueue(session, settings, customer, template, params, lane=Lane.TRANSACTIONAL,
                  dedupe_key=dedupe_key)


async def cancel_ticket(
    session: AsyncSession, settings: Settings, customer: Customer, ticket: Ticket
) -> Ticket:
    """The customer withdraws a request nobody has acted on yet."""
    if ticket.customer_id != customer.id or "cancelled" not in TRANSITIONS[ticket.status]:
        raise TicketError("bad_transition")
    return await set_status(session, settings, ticket, "cancelled", staff="customer")


async def add_message(
    session: AsyncSession, ticket: Ticket, *, author: str, text: str = "", photos: list[str] | None = None,
    settings: Settings | None = None,
) -> TicketEvent:
    """A message on an open ticket: from the customer (with photos) or from staff (told to them)."""
    if ticket.status in CLOSED_STATUSES:
        raise TicketError("ticket_closed")
    if len(text) > MAX_TEXT:
        raise TicketError("too_long")
    now = utcnow()
    event = TicketEvent(ticket_id=ticket.id or 0, kind="message", author=author, text=text,
                        photos=list(photos or []), created_at=now)
    session.add(event)
    if photos:
        ticket.photos = [*ticket.photos, *photos]
    ticket.updated_at = now
    session.add(ticket)
    if author.startswith("staff:"):
        if ticket.first_response_at is None:
            ticket.first_response_at = now
        customer = present(await session.get(Customer, ticket.customer_id), "the ticket's customer")
        settings = present(settings, "settings")
        await session.flush()
        await _send(session, settings, customer, "aftersales.staff_message",
                    {"ticket_id": ticket.id, "number": ticket.number, "text": text},
                    f"ticket:{ticket.id}:event:{event.id}")
    else:
        record_event(session, "aftersales.message_added", customer_id=ticket.customer_id,
                     payload={"ticket": ticket.number, "photos": len(photos or [])})
    return event


# --- CSAT -----------------------------------------------------------------------------------

async def rate_ticket(
    session: AsyncSession, customer: Customer, ticket_id: int, score: int, *,
    settings: Settings | None = None,
) -> tuple[Ticket, bool]:
    """Stores a 1–5 rating of a closed ticket; 1–2 hands the customer to staff (a handoff with its
    topic and context card, like "Talk to a person").

    Returns the ticket and whether the customer is now with staff (False without a staff group).
    """
    if not 1 <= score <= 5:
        raise TicketError("bad_score")
    ticket = await customer_ticket(session, customer, ticket_id)
    if ticket is None or ticket.status != "closed":
        raise TicketError("not_rateable")
    ticket.csat = score
    session.add(ticket)
    session.add(TicketEvent(ticket_id=ticket.id or 0, kind="rating", author="customer", text=str(score),
                            created_at=utcnow()))
    record_event(session, "aftersales.rated", customer_id=customer.id,
                 payload={"ticket": ticket.number, "score": score})
    reopened = False
    if score <= LOW_CSAT:
        escalation = await escalate(session, customer, "low_csat", settings=settings)
        reopened = escalation.conversation is not None
    return ticket, reopened


async def comment_rating(session: AsyncSession, customer: Customer, ticket_id: int, comment: str) -> Ticket:
    ticket = await customer_ticket(session, customer, ticket_id)
    if ticket is None or ticket.csat is None:
        raise TicketError("not_rateable")
    ticket.csat_comment = comment[:MAX_TEXT]
    session.add(ticket)
    return ticket


@dataclass(frozen=True, slots=True)
class CsatReport:
    rated: int
    average: float | None
    by_score: dict[int, int]
    closed: int


async def csat_report(session: AsyncSession, since: datetime | None = None) -> CsatReport:
    query = select(Ticket.csat, func.count()).where(col(Ticket.csat).is_not(None)).group_by(Ticket.csat)
    closed_query = select(func.count()).select_from(Ticket).where(Ticket.status == "closed")
    if since is not None:
        query = query.where(col(Ticket.closed_at) >= since)
        closed_query = closed_query.where(col(Ticket.closed_at) >= since)
    by_score = {int(score): int(count) for score, count in (await session.exec(query)).all()}
    rated = sum(by_score.values())
    average = sum(s * c for s, c in by_score.items()) / rated if rated else None
    return CsatReport(rated, average, by_score, int((await session.exec(closed_query)).one()))
