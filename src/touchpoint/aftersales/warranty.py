"""Warranty registration for products bought elsewhere or offline, staff's receipt check
(``verify_warranty``, from ``touchpoint tickets verify-warranty``), and the expiry reminder."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.aftersales.models import WarrantyRegistration
from touchpoint.aftersales.policy import add_months
from touchpoint.catalog.models import Product
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.customers.service import record_event
from touchpoint.messaging.outbox import enqueue
from touchpoint.messaging.rules import Lane

SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-/.]{2,63}$")
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y")
OLDEST_PURCHASE_YEARS = 10
STEPS = ("w_product", "w_date", "w_serial", "w_receipt")  # the chat flow, kept in the draft row


def parse_purchase_date(text: str, today: date) -> date | None:
    """A purchase date as people type it; None if unreadable, in the future or too old."""
    for fmt in DATE_FORMATS:
        try:
            day = datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
        oldest = today.replace(year=today.year - OLDEST_PURCHASE_YEARS)
        return day if oldest <= day <= today else None
    return None


def clean_serial(text: str) -> str | None:
    serial = text.strip().upper()
    return serial if SERIAL.match(serial) else None


async def find_products(session: AsyncSession, text: str, limit: int = 5) -> list[Product]:
    """By exact code first, else by a word of the name in any language."""
    query = text.strip()
    if not query or len(query) > 100:
        return []
    exact = await session.get(Product, query.upper())
    if exact is not None:
        return [exact]
    # Names are JSON per locale: a retailer's catalogue is small enough to match in Python.
    needle = query.casefold()
    products = (await session.exec(select(Product).order_by(col(Product.sku)))).all()
    found = [p for p in products if any(needle in name.casefold() for name in p.name.values())]
    return found[:limit]


async def register_warranty(
    session: AsyncSession, customer: Customer, product: Product, purchased_on: date, serial: str,
    receipt_photo: str,
) -> WarrantyRegistration:
    purchased_at = datetime(purchased_on.year, purchased_on.month, purchased_on.day, tzinfo=UTC)
    ends = add_months(purchased_on, product.warranty_months)
    registration = WarrantyRegistration(
        customer_id=customer.id or 0, sku=product.sku, serial_number=serial, receipt_photo=receipt_photo,
        purchased_at=purchased_at, warranty_ends_at=datetime(ends.year, ends.month, ends.day, tzinfo=UTC),
        created_at=utcnow(),
    )
    session.add(registration)
    record_event(session, "aftersales.warranty_registered", customer_id=customer.id,
                 payload={"sku": product.sku, "warranty_ends": ends.isoformat()})
    return registration


async def pending_registrations(session: AsyncSession, limit: int = 50) -> list[WarrantyRegistration]:
    """Registrations whose receipt nobody has checked yet, oldest first (staff's to-do list)."""
    rows = await session.exec(
        select(WarrantyRegistration).where(WarrantyRegistration.status == "pending")
        .order_by(col(WarrantyRegistration.id)).limit(limit)
    )
    return list(rows.all())


async def verify_warranty(
    session: AsyncSession, settings: Settings, registration_id: int, *, staff: str, valid: bool,
    note: str | None = None,
) -> WarrantyRegistration:
    """Staff checked the receipt of a registration (``touchpoint tickets verify-warranty``): it is
    verified or rejected, recorded, and the customer is told (the registration promised them
    that). A registration is decided once; LookupError if it is unknown or already decided."""
    registration = (await session.exec(
        select(WarrantyRegistration).where(WarrantyRegistration.id == registration_id).with_for_update()
    )).first()
    if registration is None or registration.status != "pending":
        raise LookupError(f"warranty registration {registration_id} is not waiting for a check")
    registration.status = "verified" if valid else "rejected"
    registration.verified_by, registration.verified_at = staff[:64], utcnow()
    session.add(registration)
    record_event(session, f"aftersales.warranty_{registration.status}", customer_id=registration.customer_id,
                 payload={"sku": registration.sku, "registration_id": registration.id}, source="system")
    customer = await session.get(Customer, registration.customer_id)
    product = await session.get(Product, registration.sku)
    if customer is not None:
        await enqueue(
            session, settings, customer, "aftersales.warranty_checked",
            {"name": product.name if product else {}, "sku": registration.sku, "valid": valid,
             "ends": registration.warranty_ends_at.date().isoformat(), "note": (note or "").strip()[:500]},
            lane=Lane.TRANSACTIONAL, dedupe_key=f"warranty:{registration.id}:checked",
        )
    return registration


async def remind_expiring_warranties(
    session: AsyncSession, settings: Settings, *, days_before: int = 30, now: datetime | None = None
) -> int:
    """Queues one "your warranty ends soon" message per registration (service lane).

    The scheduler runs it daily (``bot.scheduler.remind_warranties_tick``); safe to run often
    and from several processes at once: each registration is claimed by setting ``reminded_at``
    only where it is still empty, so one process queues its reminder and the others skip it (the
    outbox dedupe key backs this up).
    """
    now = now or utcnow()
    due = await session.exec(select(WarrantyRegistration).where(
        col(WarrantyRegistration.status) != "rejected", col(WarrantyRegistration.reminded_at).is_(None),
        col(WarrantyRegistration.warranty_ends_at) > now,
        col(WarrantyRegistration.warranty_ends_at) <= now + timedelta(days=days_before),
    ))
    count = 0
    for registration in due.all():
        customer = await session.get(Customer, registration.customer_id)
        product = await session.get(Product, registration.sku)
        if customer is None:
            continue
        claimed = await session.exec(  # type: ignore[call-overload]
            update(WarrantyRegistration)
            .where(col(WarrantyRegistration.id) == registration.id,
                   col(WarrantyRegistration.reminded_at).is_(None))
            .values(reminded_at=now)
        )
        if not claimed.rowcount:
            continue  # another process reminded it since we looked
        await enqueue(
            session, settings, customer, "aftersales.warranty_expiring",
            {"name": product.name if product else {}, "sku": registration.sku,
             "ends": registration.warranty_ends_at.date().isoformat()},
            lane=Lane.SERVICE, dedupe_key=f"warranty:{registration.id}:expiring",
        )
        record_event(session, "aftersales.warranty_expiring", customer_id=customer.id,
                     payload={"sku": registration.sku}, source="system")
        count += 1
    return count
