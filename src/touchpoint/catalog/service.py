"""Presale service calls: browse, stock per store, click-and-collect reservations, FAQ answers."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from babel.numbers import format_currency
from sqlalchemy import case, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.catalog.matcher import Match, Matcher, Target
from touchpoint.catalog.models import Category, FaqEntry, Product, Reservation, Stock, Store
from touchpoint.clock import utcnow
from touchpoint.customers.models import BehaviourEvent
from touchpoint.customers.service import record_event
from touchpoint.db import Database

PAGE_SIZE = 6
QUESTION_EVENTS = ("presale.question_answered", "presale.question_suggested", "presale.question_unanswered")


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


# --- free-text questions ---

# How often a process looks for FAQ or catalogue changes made elsewhere (the import CLI, another
# process's seed); changes made in this process are seen at once (``forget_matchers``).
MATCHER_CHECK_S = 10.0
_SIGNATURE = select(
    select(func.count()).select_from(FaqEntry).scalar_subquery(),
    select(func.max(FaqEntry.updated_at)).scalar_subquery(),
    select(func.count()).select_from(Product).scalar_subquery(),
    select(func.max(Product.updated_at)).scalar_subquery(),
)


@dataclass(slots=True)
class _Index:
    signature: tuple[Any, ...]
    matcher: Matcher
    checked_at: float


_matchers: dict[str, _Index] = {}  # per database URL (tests run many databases in one process)


def forget_matchers() -> None:
    """The FAQ or catalogue was just committed here: the next question checks for changes."""
    _matchers.clear()


async def get_matcher(session: AsyncSession) -> Matcher:
    """The in-process index, rebuilt when the FAQ or the catalogue changed (import or seed).

    The change check (one statement) runs at most every ``MATCHER_CHECK_S`` per database, not on
    every question."""
    key = str(session.get_bind().url)
    index = _matchers.get(key)
    now = time.monotonic()
    if index is not None and now - index.checked_at < MATCHER_CHECK_S:
        return index.matcher
    signature = tuple((await session.exec(_SIGNATURE)).one())
    if index is not None and index.signature == signature:
        index.checked_at = now
        return index.matcher
    matcher = Matcher()
    for entry in (await session.exec(select(FaqEntry))).all():
        matcher.add(Target("faq", entry.id), [q for qs in entry.questions.values() for q in qs])
    for product in (await session.exec(select(Product).where(col(Product.active)))).all():
        matcher.add(Target("product", product.sku), [*product.name.values(), product.sku])
    if len(_matchers) >= 8:  # a long test run: drop the oldest database's index
        del _matchers[next(iter(_matchers))]
    _matchers[key] = _Index(signature, matcher.build(), now)
    return matcher


async def answer_question(session: AsyncSession, customer_id: int, text: str) -> tuple[Match, int]:
    """Match a question and record it; returns the match and how many misses in a row it makes."""
    match = (await get_matcher(session)).match(text)
    kind = {"answer": "answered", "suggest": "suggested", "none": "unanswered"}[match.verdict]
    payload: dict[str, Any] = {"text": text[:500]}
    if match.best is not None and match.verdict != "none":
        payload.update(kind=match.best.target.kind, id=match.best.target.id, score=match.best.score)
    misses = 0
    if match.verdict == "none":
        previous = (await session.exec(
            select(BehaviourEvent.type)
            .where(BehaviourEvent.customer_id == customer_id, col(BehaviourEvent.type).in_(QUESTION_EVENTS))
            .order_by(col(BehaviourEvent.occurred_at).desc(), col(BehaviourEvent.id).desc())
            .limit(1)
        )).first()
        misses = 2 if previous == "presale.question_unanswered" else 1
    record_event(session, f"presale.question_{kind}", customer_id=customer_id, payload=payload)
    return match, misses


async def get_faq(session: AsyncSession, faq_id: str) -> FaqEntry | None:
    return await session.get(FaqEntry, faq_id)
