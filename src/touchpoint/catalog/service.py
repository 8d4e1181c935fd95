"""Presale service calls: browse, stock per store, click-and-collect reservations, FAQ answers."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import case, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.catalog import changes
from touchpoint.catalog.facts import render_answer
from touchpoint.catalog.models import Category, FaqEntry, Product, Reservation, Stock, Store
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.customers.service import record_event
from touchpoint.db import Database
from touchpoint.formatting import format_money

PAGE_SIZE = 6


def localized(texts: dict[str, Any], locale: str) -> str:
    """The text in the customer's language, else English, else any."""
    value = texts.get(locale) or texts.get("en") or next(iter(texts.values()), "")
    return str(value)


def format_price(minor: int, currency: str, locale: str) -> str:
    return format_money(minor, currency, locale)


# --- browse ---

async def list_categories(session: AsyncSession) -> list[Category]:
    return list((await session.exec(select(Category).order_by(col(Category.position)))).all())


async def get_category(session: AsyncSession, category_id: str) -> Category | None:
    return await session.get(Category, category_id)


async def list_products(session: AsyncSession, category_id: str, page: int) -> tuple[list[Product], int]:
    """One page of a category's active products and the number of pages."""
    where = (col(Product.category_id) == category_id, col(Product.active))
    total = (await session.exec(select(func.count()).select_from(Product).where(*where))).one()
    pages = max(math.ceil(total / PAGE_SIZE), 1)
    page = min(max(page, 0), pages - 1)
    products = (await session.exec(
        select(Product).where(*where).order_by(col(Product.sku)).offset(page * PAGE_SIZE).limit(PAGE_SIZE)
    )).all()
    return list(products), pages


async def get_product(session: AsyncSession, sku: str) -> Product | None:
    product = await session.get(Product, sku)
    return product if product is not None and product.active else None


async def get_products(session: AsyncSession, skus: list[str]) -> list[Product]:
    found = {p.sku: p for p in (await session.exec(select(Product).where(col(Product.sku).in_(skus)))).all()}
    return [found[sku] for sku in skus if sku in found]


async def update_listing(session: AsyncSession, sku: str, *, price_minor: int | None,
                         active: bool) -> Product | None:
    """A shop platform's price and availability for a product we carry; None when we do not carry
    it (the catalogue, with its translations, is imported, not created from a platform's feed)."""
    product = await session.get(Product, sku)
    if product is None:
        return None
    if price_minor is not None:
        product.price_minor = price_minor
    product.active = active
    product.updated_at = utcnow()
    session.add(product)
    return product


# --- stores and stock ---

@dataclass(frozen=True, slots=True)
class StoreStock:
    store: Store
    available: int


async def list_stores(session: AsyncSession) -> list[Store]:
    return list((await session.exec(select(Store).order_by(col(Store.id)))).all())


async def stock_by_store(session: AsyncSession, sku: str) -> list[StoreStock]:
    """Every store with what it can still hand over (stock less reservations)."""
    stores = await list_stores(session)
    rows = {s.store_id: s for s in (await session.exec(select(Stock).where(Stock.sku == sku))).all()}
    available = {sku_row.store_id: max(sku_row.quantity - sku_row.reserved, 0) for sku_row in rows.values()}
    return [StoreStock(store, available.get(store.id, 0)) for store in stores]


@dataclass(frozen=True, slots=True)
class ReserveLimits:
    """What one customer may hold at once and how often they may reserve (anti-hoarding)."""

    active_per_customer: int = 3  # active holds across every store and product
    active_per_product: int = 1  # active holds of one product, whatever the store
    per_hour: int = 5  # reservations made within the last hour (kept, expired or collected)

    @classmethod
    def from_settings(cls, settings: Settings) -> ReserveLimits:
        return cls(settings.reservation_max_active, settings.reservation_max_per_product,
                   settings.reservation_max_per_hour)


@dataclass(frozen=True, slots=True)
class ReserveOutcome:
    reservation: Reservation | None
    # "out_of_stock" | "unknown" | "too_many" (active holds) | "product_held" (this product,
    # another store) | "too_often" (reservations this hour)
    reason: str | None = None
    already: bool = False  # the customer already held one here
    limit: int = 0  # the limit that refused it (for the customer's message)


async def reserve(
    session: AsyncSession, customer_id: int, store_id: str, sku: str, hold: timedelta,
    limits: ReserveLimits | None = None,
) -> ReserveOutcome:
    """Hold one unit for pickup; the stock row is updated atomically so two customers never
    get the last unit. Pressing the button twice keeps the one reservation.

    A customer holds at most ``limits.active_per_customer`` units, one per product, and makes at
    most ``limits.per_hour`` reservations an hour: refusals are recorded as behaviour events."""
    limits = limits or ReserveLimits()
    if await get_product(session, sku) is None or await session.get(Store, store_id) is None:
        return ReserveOutcome(None, "unknown")
    # Serialise one customer's reservations (PostgreSQL), so parallel presses cannot all pass the caps.
    await session.exec(select(Customer.id).where(Customer.id == customer_id).with_for_update())
    now = utcnow()
    active = list((await session.exec(select(Reservation).where(
        Reservation.customer_id == customer_id, Reservation.status == "active",
        col(Reservation.expires_at) > now,
    ))).all())
    existing = next((r for r in active if r.store_id == store_id and r.sku == sku), None)
    if existing is not None:
        return ReserveOutcome(existing, already=True)
    refusal: tuple[str, int] | None = None
    if sum(1 for r in active if r.sku == sku) >= limits.active_per_product:
        refusal = ("product_held", limits.active_per_product)
    elif len(active) >= limits.active_per_customer:
        refusal = ("too_many", limits.active_per_customer)
    else:
        recent = int((await session.exec(select(func.count()).select_from(Reservation).where(
            Reservation.customer_id == customer_id, col(Reservation.created_at) > now - timedelta(hours=1),
        ))).one())
        if recent >= limits.per_hour:
            refusal = ("too_often", limits.per_hour)
    if refusal is not None:
        record_event(session, "reservation.refused", customer_id=customer_id,
                     payload={"reason": refusal[0], "store": store_id, "sku": sku})
        return ReserveOutcome(None, refusal[0], limit=refusal[1])
    held = await session.exec(
        update(Stock)
        .where(col(Stock.store_id) == store_id, col(Stock.sku) == sku,
               col(Stock.quantity) - col(Stock.reserved) >= 1)
        .values(reserved=col(Stock.reserved) + 1, updated_at=now)
    )
    if not held.rowcount:
        return ReserveOutcome(None, "out_of_stock")
    reservation = Reservation(customer_id=customer_id, store_id=store_id, sku=sku, quantity=1,
                              status="active", created_at=now, expires_at=now + hold)
    session.add(reservation)
    await session.flush()
    return ReserveOutcome(reservation)


async def release_expired_reservations(db: Database) -> int:
    """Periodic job: expired holds go back to the shelf (safe to run in several processes)."""
    released = 0
    async with db.session() as session:
        expired = (await session.exec(select(Reservation).where(
            Reservation.status == "active", col(Reservation.expires_at) <= utcnow()
        ))).all()
        for reservation in expired:
            claimed = await session.exec(
                update(Reservation)
                .where(col(Reservation.id) == reservation.id, col(Reservation.status) == "active")
                .values(status="expired")
            )
            if not claimed.rowcount:
                continue  # another process released it
            await session.exec(
                update(Stock)
                .where(col(Stock.store_id) == reservation.store_id, col(Stock.sku) == reservation.sku)
                .values(reserved=case(
                    (col(Stock.reserved) > reservation.quantity, col(Stock.reserved) - reservation.quantity),
                    else_=0,
                ))
            )
            released += 1
    return released


# --- FAQ ---

async def get_faq(session: AsyncSession, faq_id: str) -> FaqEntry | None:
    return await session.get(FaqEntry, faq_id)


def faq_answer(entry: FaqEntry, locale: str, settings: Settings) -> str:
    """The answer as the reader sees it: in their language, configured facts filled in (plain
    text: the caller escapes it for HTML)."""
    return render_answer(localized(entry.answer, locale), locale, settings)


# --- the FAQ learns from what customers asked (the console's content gaps) ---

FAQ_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,39}$")
QUESTION_MAX, ANSWER_MAX = 200, 350


async def add_faq_phrasing(db: Database, faq_id: str, locale: str, question: str) -> bool:
    """A customer's question becomes one more phrasing of an entry; the question index sees it at
    once in this process and within seconds elsewhere. False when the entry or text is unusable."""
    text = " ".join(question.split())[:QUESTION_MAX]
    if not text:
        return False
    async with db.session() as session:
        entry = await session.get(FaqEntry, faq_id)
        if entry is None:
            return False
        known = entry.questions.get(locale, [])
        if all(q.casefold() != text.casefold() for q in known):
            entry.questions = {**entry.questions, locale: [*known, text]}
            entry.updated_at = utcnow()
            session.add(entry)
    changes.changed()
    return True


async def create_faq_entry(db: Database, faq_id: str, locale: str, question: str, answer: str) -> str | None:
    """A new entry from one question and its answer in the customer's language (translations come
    with the next FAQ import). Returns why it cannot be created, or None when it was."""
    text, reply = " ".join(question.split())[:QUESTION_MAX], answer.strip()
    if not FAQ_ID.fullmatch(faq_id):
        return "id"
    if not text or not reply or len(reply) > ANSWER_MAX:
        return "answer"
    async with db.session() as session:
        if await session.get(FaqEntry, faq_id) is not None:
            return "exists"
        session.add(FaqEntry(id=faq_id, tags=[], questions={locale: [text]}, answer={locale: reply},
                             updated_at=utcnow()))
    changes.changed()
    return None
