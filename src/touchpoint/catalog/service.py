"""Presale service calls: browse, stock per store, click-and-collect reservations, FAQ answers."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from babel.numbers import format_currency
from sqlalchemy import case, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.catalog import changes
from touchpoint.catalog.models import Category, FaqEntry, Product, Reservation, Stock, Store
from touchpoint.clock import utcnow
from touchpoint.db import Database

PAGE_SIZE = 6


def localized(texts: dict[str, Any], locale: str) -> str:
    """The text in the customer's language, else English, else any."""
    value = texts.get(locale) or texts.get("en") or next(iter(texts.values()), "")
    return str(value)


def format_price(minor: int, currency: str, locale: str) -> str:
    return format_currency(minor / 100, currency, locale=locale)


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
class ReserveOutcome:
    reservation: Reservation | None
    reason: str | None = None  # "out_of_stock" | "unknown"
    already: bool = False  # the customer already held one here


async def reserve(
    session: AsyncSession, customer_id: int, store_id: str, sku: str, hold: timedelta
) -> ReserveOutcome:
    """Hold one unit for pickup; the stock row is updated atomically so two customers never
    get the last unit. Pressing the button twice keeps the one reservation."""
    if await get_product(session, sku) is None or await session.get(Store, store_id) is None:
        return ReserveOutcome(None, "unknown")
    existing = (await session.exec(select(Reservation).where(
        Reservation.customer_id == customer_id, Reservation.store_id == store_id,
        Reservation.sku == sku, Reservation.status == "active",
    ))).first()
    if existing is not None:
        return ReserveOutcome(existing, already=True)
    held = await session.exec(
        update(Stock)
        .where(col(Stock.store_id) == store_id, col(Stock.sku) == sku,
               col(Stock.quantity) - col(Stock.reserved) >= 1)
        .values(reserved=col(Stock.reserved) + 1, updated_at=utcnow())
    )
    if not held.rowcount:
        return ReserveOutcome(None, "out_of_stock")
    now = utcnow()
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
