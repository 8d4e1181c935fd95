"""Test data for after-sales: a small catalogue and a customer's delivered order."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from tests.factories import make_customer
from touchpoint.catalog.models import Category, Product, Stock, Store
from touchpoint.clock import utcnow
from touchpoint.customers.models import Customer, StoreCustomer
from touchpoint.orders.models import Order, OrderItem

# sku → (category, name, warranty months, in stock)
PRODUCTS = {
    "ESP-1": ("espresso", "Barista One", 24, 5),
    "PC-1": ("personal-care", "Toothbrush", 0, 5),
    "GRD-1": ("espresso", "Grinder Mini", 24, 0),
}


async def make_catalogue(session: AsyncSession) -> None:
    """Idempotent: several customers in one test share the catalogue."""
    if await session.get(Category, "espresso") is not None:
        return
    now = utcnow()
    session.add(Category(id="espresso", name={"en": "Espresso"}, returnable=True))
    session.add(Category(id="personal-care", name={"en": "Care"}, returnable=False))
    session.add(Store(id="berlin", name={"en": "Berlin"}, address={"en": "Main st"}, timezone="Europe/Berlin",
                      hours={}))
    await session.flush()
    for sku, (category, name, warranty, stock) in PRODUCTS.items():
        session.add(Product(sku=sku, category_id=category, name={"en": name, "ru": name, "zh": name},
                            description={}, specs={}, price_minor=10000, warranty_months=warranty,
                            updated_at=now))
        await session.flush()
        session.add(Stock(store_id="berlin", sku=sku, quantity=stock, updated_at=now))
    await session.flush()


async def make_linked_customer(session: AsyncSession, telegram_id: int, **fields: object) -> Customer:
    now = utcnow()
    store_id = f"S{telegram_id}"
    session.add(StoreCustomer(id=store_id, name="Test", created_at=now, updated_at=now))
    return await make_customer(session, telegram_id, store_customer_id=store_id, **fields)


async def make_order(
    session: AsyncSession, customer: Customer, number: str, *, delivered_days_ago: int | None = 5,
    skus: tuple[str, ...] = ("ESP-1",),
) -> Order:
    now = utcnow()
    order = Order(
        number=number, store_customer_id=customer.store_customer_id, status="delivered",
        created_at=now - timedelta(days=(delivered_days_ago or 0) + 3), updated_at=now,
        delivered_at=None if delivered_days_ago is None else now - timedelta(days=delivered_days_ago),
    )
    session.add(order)
    await session.flush()
    for sku in skus:
        name = PRODUCTS[sku][1]
        session.add(OrderItem(order_id=order.id or 0, sku=sku, name={"en": name, "ru": name, "zh": name},
                              quantity=1, unit_price_minor=10000))
    await session.flush()
    return order
