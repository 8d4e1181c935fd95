"""A few weeks of activity for `touchpoint demo` (the demo only): every console page has something.

Four customers who chatted before (linked to the demo store's records): tickets in different
states, a closed conversation with its transcript and a rating, journey enrolments with their
sent messages, and questions the bot could not answer (the dashboard's content gaps). Seeded once
(the first seeded customer is the marker); every run also keeps one of Anna's orders delivered
recently enough to return, relative to today.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select

from touchpoint.aftersales.models import Ticket, TicketEvent
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.console.models import Campaign
from touchpoint.customers.models import BehaviourEvent, Customer
from touchpoint.db import Database
from touchpoint.handoff.models import Conversation, TranscriptMessage
from touchpoint.journeys.models import Enrolment
from touchpoint.messaging.models import Delivery, OutboxMessage
from touchpoint.orders.models import Order, OrderItem, OrderStatus, ShipmentEvent

# Telegram ids of the seeded chat customers: far from the sandbox's own (1001 up) and staff ids.
SEEDED_CUSTOMERS = (
    # telegram id, first name, locale, store customer id, phone
    (7_000_002, "Olga", "ru", "C-1002", "+4917623456782"),
    (7_000_003, "Wang", "zh", "C-1003", "+4915209876543"),
    (7_000_004, "Jonas", "en", "C-1004", "+4916034567894"),
    (7_000_006, "Sophie", "en", "C-1006", None),
)
RETURNABLE_ORDER = "BH-100250"  # Anna's (C-1001): delivered a few days ago, inside the return window
RETURNABLE_AGE = timedelta(days=5)
STAFF = "staff:900001"


async def seed_demo_activity(db: Database, settings: Settings) -> dict[str, int]:
    """Seeds the activity once; keeps Anna's returnable order recent on every run."""
    counts: dict[str, int] = {}
    async with db.session() as session:
        counts["returnable_orders"] = await _returnable_order(session, settings)
        marker = (await session.exec(
            select(Customer.id).where(Customer.telegram_id == SEEDED_CUSTOMERS[0][0])
        )).first()
        if marker is None:
            counts.update(await _activity(session, settings))
    return counts


def seeded_people() -> list[tuple[int, str, str]]:
    """(telegram id, first name, language) of the seeded chat customers, for the sandbox."""
    return [(tid, name, locale) for tid, name, locale, _store, _phone in SEEDED_CUSTOMERS]


async def _returnable_order(session: Any, settings: Settings) -> int:
    """Creates Anna's recent delivery, or moves its dates forward once it nears the window's end."""
    now = utcnow()
    order = (await session.exec(select(Order).where(Order.number == RETURNABLE_ORDER))).first()
    if order is None:
        template = (await session.exec(select(Order).where(Order.number == "BH-100198"))).first()
        if template is None:  # the catalogue seed did not run
            return 0
        delivered = now - RETURNABLE_AGE
        order = Order(
            number=RETURNABLE_ORDER, store_customer_id="C-1001", status=OrderStatus.DELIVERED,
            total_minor=0, currency=template.currency, delivery_method="delivery",
            delivery_address=template.delivery_address, carrier="DHL",
            tracking_number="00340434161094250017",
            tracking_url="https://www.dhl.de/en/privatkunden/pakete-empfangen/verfolgen.html"
                         "?piececode=00340434161094250017",
            contact_phone=template.contact_phone, contact_email=template.contact_email,
            created_at=delivered - timedelta(days=3), updated_at=delivered, delivered_at=delivered,
        )
        session.add(order)
        await session.flush()
        items = (await session.exec(select(OrderItem).where(OrderItem.order_id == template.id))).all()
        for item in items:
            session.add(OrderItem(order_id=order.id, sku=item.sku, name=item.name, quantity=item.quantity,
                                  unit_price_minor=item.unit_price_minor))
        order.total_minor = sum(item.unit_price_minor * item.quantity for item in items)
        for status, before in (("placed", 3.0), ("paid", 2.99), ("packed", 2.2), ("shipped", 1.8),
                               ("out_for_delivery", 0.3), ("delivered", 0.0)):
            session.add(ShipmentEvent(order_id=order.id, status=status,
                                      occurred_at=delivered - timedelta(days=before)))
        return 1
    keep_until = max(timedelta(days=1), timedelta(days=settings.return_window_days) - timedelta(days=7))
    if order.delivered_at is not None and now - order.delivered_at <= keep_until:
        return 0
    shift = now - RETURNABLE_AGE - (order.delivered_at or now)
    order.created_at += shift
    order.updated_at += shift
    order.delivered_at = now - RETURNABLE_AGE
    session.add(order)
    for event in (await session.exec(select(ShipmentEvent).where(ShipmentEvent.order_id == order.id))).all():
        event.occurred_at += shift
        session.add(event)
    return 1


async def _activity(session: Any, settings: Settings) -> dict[str, int]:
    now = utcnow()
    customers: dict[str, Customer] = {}
    for tid, name, locale, store_id, phone in SEEDED_CUSTOMERS:
        customer = Customer(
            telegram_id=tid, first_name=name, language_code=locale, locale=locale,
            timezone=settings.default_timezone, store_customer_id=store_id, phone=phone,
            marketing_consent=True, created_at=now - timedelta(days=30),
            last_seen_at=now - timedelta(hours=3),
        )
        session.add(customer)
        customers[name] = customer
    await session.flush()
    orders = {o.number: o for o in (await session.exec(
        select(Order).where(col(Order.number).in_(("BH-100204", "BH-100229", "BH-100236")))
    )).all()}

    def order_id(number: str) -> int | None:
        found = orders.get(number)
        return found.id if found is not None else None

    tickets = [
        # customer, kind, status, order, reason, details, opened ago, answered, csat
        ("Olga", "return", "approved", order_id("BH-100204"), "changed_mind",
         "The grinder is louder than I expected, I would like to return it.", timedelta(days=3), True, None),
        ("Wang", "repair", "new", order_id("BH-100229"), "defective",
         "The steam wand drips after two days of use.", timedelta(hours=30), False, None),
        ("Jonas", "complaint", "closed", order_id("BH-100236"), "damaged",
         "The courier left the parcel in the rain.", timedelta(days=6), True, 4),
        ("Sophie", "exchange", "in_review", None, "wrong_item",
         "I got the 250 g bag instead of the 1 kg bag.", timedelta(hours=20), True, None),
    ]
    for name, kind, status, order, reason, details, ago, answered, csat in tickets:
        await _ticket(session, customers[name], now, kind=kind, status=status, order_id=order, reason=reason,
                      details=details, opened=now - ago, answered=answered, csat=csat,
                      response_hours=settings.ticket_first_response_hours)

    # A handed-over chat, closed by staff and rated 5.
    olga = customers["Olga"]
    opened = now - timedelta(days=2, hours=4)
    conversation = Conversation(
        customer_id=olga.id or 0, status="closed", reason="button", assigned_staff_id=900001,
        opened_at=opened, first_response_at=opened + timedelta(minutes=3),
        closed_at=opened + timedelta(minutes=25), csat=5,
    )
    session.add(conversation)
    await session.flush()
    for minutes, direction, author, text in (
        (0, "in", "customer", "Здравствуйте! Где мой заказ BH-100204?"),
        (3, "staff", STAFF, "Здравствуйте, Ольга! Заказ доставлен вчера, DHL оставил его у соседа."),
        (6, "in", "customer", "Нашла, спасибо! А можно вернуть кофемолку?"),
        (9, "staff", STAFF, "Конечно: нажмите «Вернуть товар» в меню заказа, я одобрю заявку."),
    ):
        session.add(TranscriptMessage(customer_id=olga.id or 0, conversation_id=conversation.id,
                                      direction=direction, author=author, text=text,
                                      created_at=opened + timedelta(minutes=minutes)))

    # Journeys: a cart reminder that converted, a post-delivery check-in, one in the holdout group.
    sent = 0
    for name, journey, occurrence, template, status, days_ago, converted in (
        ("Jonas", "abandoned_cart", "cart-demo-1", "journey.cart_reminder", "completed", 4, True),
        ("Wang", "post_delivery_checkin", "BH-100229", "journey.checkin", "completed", 1, False),
        ("Sophie", "browse_abandonment", "ESP-003", "journey.browse_nudge", "exited", 2, False),
        ("Olga", "abandoned_cart", "cart-demo-2", None, "held_out", 5, False),
    ):
        sent += await _enrolment(session, customers[name], now - timedelta(days=days_ago), journey=journey,
                                 occurrence=occurrence, template=template, status=status, converted=converted)

    # Questions the bot could not answer (or only guessed at): the dashboard's content gaps.
    gaps = [
        ("Jonas", "presale.question_unanswered", "Do you ship to Switzerland?"),
        ("Sophie", "presale.question_unanswered", "do you ship to switzerland"),
        ("Wang", "presale.question_unanswered", "Can I pay with Alipay?"),
        ("Jonas", "presale.question_suggested", "Is the burr grinder dishwasher safe?"),
        ("Olga", "presale.question_unanswered", "Есть ли у вас подарочные сертификаты?"),
    ]
    for index, (name, event_type, text) in enumerate(gaps):
        session.add(BehaviourEvent(customer_id=customers[name].id, type=event_type, source="bot",
                                   payload={"text": text, "intent": "question"},
                                   occurred_at=now - timedelta(hours=5 + 7 * index)))
    # A campaign a manager sent to buyers three days ago.
    session.add(Campaign(
        name="Autumn espresso week", segment="buyers", recipients=3, created_by="demo",
        texts={"en": "Autumn espresso week: 15% off every espresso machine until Sunday.",
               "ru": "Осенняя неделя эспрессо: скидка 15% на все эспрессо-машины до воскресенья.",
               "zh": "秋季浓缩咖啡周：所有浓缩咖啡机 85 折，截至周日。"},
        scheduled_at=now - timedelta(days=3), created_at=now - timedelta(days=3, hours=1),
    ))
    return {"chat_customers": len(customers), "tickets": len(tickets), "conversations": 1,
            "journey_messages": sent, "content_gaps": len(gaps), "campaigns": 1}


async def _ticket(
    session: Any, customer: Customer, now: datetime, *, kind: str, status: str, order_id: int | None,
    reason: str, details: str, opened: datetime, answered: bool, csat: int | None, response_hours: float,
) -> None:
    closed = status in ("closed", "rejected", "cancelled")
    ticket = Ticket(
        number=f"tmp-demo-{customer.telegram_id}", customer_id=customer.id or 0, order_id=order_id, kind=kind,
        status=status, reason=reason, details=details, created_at=opened,
        updated_at=opened + timedelta(hours=2) if answered else opened,
        first_response_due_at=opened + timedelta(hours=response_hours),
        first_response_at=opened + timedelta(hours=1) if answered else None,
        closed_at=opened + timedelta(days=1) if closed else None, csat=csat,
        resolution="Sorry about that: a 10% voucher is on its way." if closed else None,
    )
    session.add(ticket)
    await session.flush()
    ticket.number = f"R-{ticket.id:06d}"
    session.add(ticket)
    events = [TicketEvent(ticket_id=ticket.id or 0, kind="status", author="customer", status="new",
                          text=details, created_at=opened)]
    if answered:
        events.append(TicketEvent(ticket_id=ticket.id or 0, kind="message", author=STAFF,
                                  text="Thanks, we are looking into it.",
                                  created_at=opened + timedelta(hours=1)))
    if status != "new":
        events.append(TicketEvent(ticket_id=ticket.id or 0, kind="status", author=STAFF, status=status,
                                  created_at=opened + timedelta(hours=2)))
    if csat is not None:
        events.append(TicketEvent(ticket_id=ticket.id or 0, kind="rating", author="customer", text=str(csat),
                                  created_at=opened + timedelta(days=1, hours=1)))
    session.add_all(events)
    session.add(BehaviourEvent(customer_id=customer.id, type="aftersales.submitted", source="bot",
                               payload={"ticket": ticket.number, "kind": kind, "reason": reason,
                                        "photos": 0, "via": "customer"}, occurred_at=opened))


async def _enrolment(
    session: Any, customer: Customer, at: datetime, *, journey: str, occurrence: str, template: str | None,
    status: str, converted: bool,
) -> int:
    enrolment = Enrolment(
        journey_key=journey, customer_id=customer.id or 0, occurrence_key=occurrence, status=status,
        holdout=status == "held_out", step_index=1 if template else 0, context={"demo": True},
        enrolled_at=at, exited_at=at + timedelta(hours=26) if status != "active" else None,
        exit_reason={"completed": "finished", "exited": "exit_event", "held_out": "holdout"}.get(status),
        converted_at=at + timedelta(hours=5) if converted else None,
    )
    session.add(enrolment)
    await session.flush()
    if template is None:
        return 0
    sent_at = at + timedelta(hours=1)
    outbox = OutboxMessage(
        customer_id=customer.id, chat_id=customer.telegram_id, lane="marketing" if "cart" in journey
        or "browse" in journey else "service", priority=30, template=template, params={},
        dedupe_key=f"demo:{journey}:{occurrence}", enrolment_id=enrolment.id, journey_key=journey,
        status="sent", due_at=sent_at, attempts=1, created_at=at, sent_at=sent_at,
    )
    session.add(outbox)
    await session.flush()
    session.add(Delivery(outbox_id=outbox.id or 0, customer_id=customer.id, chat_id=customer.telegram_id,
                         telegram_message_id=100 + (enrolment.id or 0), status="sent", sent_at=sent_at,
                         clicked_at=sent_at + timedelta(minutes=40) if converted else None))
    return 1
