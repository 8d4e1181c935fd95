"""Orders: applying the store's order events, linking chats to store customers, look-ups and
the live order card sent through the outbox."""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.catalog.models import Store
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import Customer, StoreCustomer
from touchpoint.customers.service import record_event
from touchpoint.messaging.outbox import enqueue
from touchpoint.messaging.rules import Lane
from touchpoint.orders.models import LinkToken, LookupAttempt, Order, OrderItem, OrderStatus, ShipmentEvent
from touchpoint.orders.phones import normalize_phone

LOOKUP_WINDOW = timedelta(hours=1)
FINAL_STATUSES = (OrderStatus.DELIVERED, OrderStatus.PICKED_UP)


# --- store events -------------------------------------------------------------------------------

@dataclass(slots=True)
class OrderRows:
    """Items and timeline rows waiting for their order's id: a batch of events then writes each
    table with one multi-row INSERT of plain rows (no ORM object per row, no flush per order)."""

    items: list[tuple[Order, dict[str, Any]]] = field(default_factory=list)
    timeline: list[tuple[Order, dict[str, Any]]] = field(default_factory=list)

    async def flush(self, session: AsyncSession) -> None:
        await session.flush()  # new orders get their ids
        for table, rows in ((OrderItem.__table__, self.items), (ShipmentEvent.__table__, self.timeline)):
            if rows:
                await session.execute(insert(table), [{**row, "order_id": order.id} for order, row in rows])
            rows.clear()


async def upsert_order(session: AsyncSession, data: Any, order: Order | None, at: datetime,
                       rows: OrderRows) -> Order:
    """Create the order from ``order.created``; a repeat for a known number replaces its contents."""
    total = data.total_minor if data.total_minor is not None else sum(
        i.quantity * i.unit_price_minor for i in data.items)
    fields = dict(
        store_customer_id=data.customer_id, status=data.status.value, total_minor=total,
        currency=data.currency, delivery_method=data.delivery_method,
        delivery_address=data.delivery_address, pickup_store_id=data.pickup_store_id,
        contact_phone=data.contact_phone, contact_email=data.contact_email, updated_at=at,
    )
    if order is None:
        order = Order(number=data.number, created_at=at, **fields)
        session.add(order)
    else:
        for name, value in fields.items():
            setattr(order, name, value)
        rows.items = [(o, r) for o, r in rows.items if o is not order]
        if order.id is not None:
            await session.exec(delete(OrderItem).where(col(OrderItem.order_id) == order.id))  # type: ignore[call-overload]
    for item in data.items:
        name = item.name if isinstance(item.name, dict) else {"en": item.name}
        rows.items.append((order, dict(sku=item.sku, quantity=item.quantity, name=name,
                                       unit_price_minor=item.unit_price_minor)))
    rows.timeline.append((order, dict(status=data.status.value, details={}, occurred_at=at)))
    return order


def change_status(order: Order, data: Any, at: datetime, rows: OrderRows) -> None:
    """A status older than the order's last change (the store's queue delivered it late) joins the
    timeline but does not move the order back."""
    details = {k: v for k, v in (("carrier", data.carrier), ("tracking_number", data.tracking_number),
                                 ("tracking_url", data.tracking_url), ("note", data.note)) if v}
    rows.timeline.append((order, dict(status=data.status.value, details=details, occurred_at=at)))
    if at < order.updated_at:
        return
    order.status = data.status.value
    order.carrier = data.carrier or order.carrier
    order.tracking_number = data.tracking_number or order.tracking_number
    order.tracking_url = data.tracking_url or order.tracking_url
    order.updated_at = at
    if data.status in FINAL_STATUSES:
        order.delivered_at = at


def card_params(order: Order) -> dict[str, Any]:
    """What the live order card shows; a snapshot, since the card renders outside the database."""
    return {"number": order.number, "status": order.status, "carrier": order.carrier,
            "tracking_number": order.tracking_number, "tracking_url": order.tracking_url,
            "delivery_method": order.delivery_method}


async def notify_status(
    session: AsyncSession, settings: Settings, customer: Customer, order: Order, event_id: str
) -> None:
    """Queue the live order card: statuses needing attention post anew (with sound), the others
    edit the card in place; only urgent statuses skip the customer's quiet hours."""
    await enqueue(
        session, settings, customer, "order.status", card_params(order), lane=Lane.TRANSACTIONAL,
        wait_for_quiet_hours=order.status not in settings.orders_urgent_statuses,
        dedupe_key=f"order:{event_id}"[:160], card_key=f"order:{order.number}",
        edit_in_place=order.status not in settings.orders_attention_statuses,
    )


# --- linking ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LinkResult:
    outcome: str  # linked | no_match | invalid_phone | invalid_token
    store_customer_id: str | None = None


def _link(session: AsyncSession, customer: Customer, store_customer_id: str, method: str) -> LinkResult:
    customer.store_customer_id = store_customer_id
    session.add(customer)
    record_event(session, "account.linked", customer_id=customer.id, store_customer_id=store_customer_id,
                 payload={"method": method})
    return LinkResult("linked", store_customer_id)


async def link_by_contact(session: AsyncSession, settings: Settings, customer: Customer,
                          phone: str) -> LinkResult:
    """The customer shared their own contact (the handler checked it is theirs)."""
    normalized = normalize_phone(phone, settings.orders_phone_region)
    if normalized is None:
        return LinkResult("invalid_phone")
    customer.phone = normalized
    session.add(customer)
    record = (await session.exec(select(StoreCustomer).where(StoreCustomer.phone == normalized))).first()
    if record is None:
        record_event(session, "account.link_failed", customer_id=customer.id, payload={"method": "contact"})
        return LinkResult("no_match")
    return _link(session, customer, record.id, "contact")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_link_token(
    session: AsyncSession, settings: Settings, store_customer_id: str
) -> tuple[str, datetime]:
    """A one-time token for ``/start link_<token>`` (32 URL-safe characters)."""
    token = secrets.token_urlsafe(24)
    now = utcnow()
    expires = now + timedelta(minutes=settings.orders_link_token_ttl_min)
    session.add(LinkToken(token_hash=_hash(token), store_customer_id=store_customer_id,
                          expires_at=expires, created_at=now))
    return token, expires


async def link_by_token(session: AsyncSession, customer: Customer, token: str) -> LinkResult:
    """Spend the token (one UPDATE, so two chats racing for it cannot both win)."""
    now = utcnow()
    spent = await session.exec(
        update(LinkToken)  # type: ignore[call-overload]
        .where(col(LinkToken.token_hash) == _hash(token), col(LinkToken.used_at).is_(None),
               col(LinkToken.expires_at) > now)
        .values(used_at=now, used_by_customer_id=customer.id)
        .returning(LinkToken.store_customer_id)
    )
    store_customer_id = spent.scalar_one_or_none()
    if store_customer_id is None:
        record_event(session, "account.link_failed", customer_id=customer.id, payload={"method": "token"})
        return LinkResult("invalid_token")
    return _link(session, customer, store_customer_id, "token")


def unlink(session: AsyncSession, customer: Customer) -> None:
    record_event(session, "account.unlinked", customer_id=customer.id,
                 store_customer_id=customer.store_customer_id)
    customer.store_customer_id = None
    session.add(customer)


# --- reading orders -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OrderView:
    order: Order
    items: list[OrderItem]
    timeline: list[ShipmentEvent]
    store: Store | None


async def list_orders(session: AsyncSession, store_customer_id: str, limit: int = 10) -> list[Order]:
    query = (select(Order).where(Order.store_customer_id == store_customer_id)
             .order_by(col(Order.created_at).desc(), col(Order.id).desc()).limit(limit))
    return list((await session.exec(query)).all())


async def order_view(session: AsyncSession, order: Order) -> OrderView:
    items = (await session.exec(select(OrderItem).where(OrderItem.order_id == order.id)
                                .order_by(col(OrderItem.id)))).all()
    timeline = (await session.exec(select(ShipmentEvent).where(ShipmentEvent.order_id == order.id)
                                   .order_by(col(ShipmentEvent.occurred_at), col(ShipmentEvent.id)))).all()
    store = await session.get(Store, order.pickup_store_id) if order.pickup_store_id else None
    return OrderView(order, list(items), list(timeline), store)


async def customer_order(session: AsyncSession, customer: Customer, number: str) -> OrderView | None:
    """The order, only if it belongs to the customer's linked store record."""
    if customer.store_customer_id is None:
        return None
    order = (await session.exec(select(Order).where(
        Order.number == number, Order.store_customer_id == customer.store_customer_id))).first()
    if order is None:
        return None
    record_event(session, "order.viewed", customer_id=customer.id,
                 store_customer_id=customer.store_customer_id, payload={"order_number": number})
    return await order_view(session, order)


# --- guest look-up ------------------------------------------------------------------------------

def clean_order_number(settings: Settings, raw: str) -> str | None:
    """The order number in canonical form, or None when it cannot be one (checked before any query)."""
    candidate = raw.strip().upper().replace(" ", "")
    if len(candidate) > 32 or not re.fullmatch(settings.orders_number_pattern, candidate):
        return None
    return candidate


async def lookup_locked(session: AsyncSession, settings: Settings, customer: Customer) -> bool:
    failures = (await session.exec(select(func.count()).select_from(LookupAttempt).where(
        LookupAttempt.customer_id == customer.id,
        col(LookupAttempt.attempted_at) > utcnow() - LOOKUP_WINDOW,
    ))).one()
    return int(failures) >= settings.orders_lookup_max_failures


def _comparable(text: str) -> bytes:
    """Case and compatibility forms folded (JÜRGEN@exämple.com = jürgen@exämple.com, whether the
    umlaut is one code point or two), as UTF-8 bytes: compare_digest takes str only when ASCII."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text.strip()).casefold()).encode(
        "utf-8", "surrogatepass")


def _digits(text: str) -> str:
    """The decimal digits of ``text`` as ASCII, whatever script they were typed in (٠١٢٣, ０１２３)."""
    return "".join(str(unicodedata.decimal(c)) for c in text if c.isdecimal())


def _proof_matches(order: Order, proof: str) -> bool:
    proof = proof.strip()
    if "@" in proof:
        return bool(order.contact_email) and secrets.compare_digest(
            _comparable(proof), _comparable(order.contact_email or ""))
    digits = _digits(proof)
    phone = _digits(order.contact_phone or "")
    return len(digits) == 4 and len(phone) >= 4 and secrets.compare_digest(
        digits.encode(), phone[-4:].encode())


async def guest_lookup(session: AsyncSession, settings: Settings, customer: Customer, number: str,
                       proof: str) -> OrderView | None:
    """The order when the number exists *and* the proof matches; None otherwise (one answer for both,
    so the look-up does not tell which order numbers exist). Failures count towards the lock-out."""
    order = (await session.exec(select(Order).where(Order.number == number))).first()
    ok = order is not None and _proof_matches(order, proof)
    record_event(session, "order.looked_up", customer_id=customer.id,
                 payload={"result": "found" if ok else "failed"})
    if not ok or order is None:
        session.add(LookupAttempt(customer_id=customer.id, attempted_at=utcnow()))
        return None
    return await order_view(session, order)
