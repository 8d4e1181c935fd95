"""Loads the demo retailer (catalogue, stores, stock, FAQ, customers and orders) idempotently."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter
from sqlmodel import select

from touchpoint.catalog import changes
from touchpoint.catalog.loader import CatalogFile, FaqIn, apply_catalog, apply_faq
from touchpoint.catalog.models import Product
from touchpoint.clock import utcnow
from touchpoint.customers.models import StoreCustomer
from touchpoint.db import Database
from touchpoint.orders.models import Order, OrderItem, OrderStatus, ShipmentEvent

DATA_DIR = Path(__file__).parent / "data"


def load_demo_catalog() -> CatalogFile:
    return CatalogFile.model_validate_json((DATA_DIR / "catalog.json").read_text("utf-8"))


def load_demo_faq() -> list[FaqIn]:
    raw = yaml.safe_load((DATA_DIR / "faq.yaml").read_text("utf-8"))
    return TypeAdapter(list[FaqIn]).validate_python(raw)


async def seed_demo(db: Database) -> dict[str, int]:
    """Loads everything; running it again updates the catalogue and skips existing orders."""
    demo = json.loads((DATA_DIR / "demo_customers.json").read_text("utf-8"))
    async with db.session() as session:
        counts = await apply_catalog(session, load_demo_catalog())
        counts["faq"] = await apply_faq(session, load_demo_faq())
        await session.flush()
        counts["customers"] = await _seed_store_customers(session, demo["customers"])
        counts["orders"] = await _seed_orders(session, demo["orders"], demo["customers"])
    changes.changed()
    return counts


async def _seed_store_customers(session: Any, customers: list[dict[str, Any]]) -> int:
    now = utcnow()
    for c in customers:
        await session.merge(StoreCustomer(
            id=c["id"], name=c["name"], phone=c.get("phone"), email=c.get("email"),
            created_at=now, updated_at=now,
        ))
    return len(customers)


async def _seed_orders(
    session: Any, orders: list[dict[str, Any]], customers: list[dict[str, Any]]
) -> int:
    now = utcnow()
    by_id = {c["id"]: c for c in customers}
    products = {p.sku: p for p in (await session.exec(select(Product))).all()}
    existing = set((await session.exec(select(Order.number))).all())
    created = 0
    for spec in orders:
        if spec["number"] in existing:
            continue
        customer = by_id[spec["customer"]]
        timeline = sorted(spec["timeline"], key=lambda step: -step["days_ago"])
        placed_at = now - timedelta(days=timeline[0]["days_ago"])
        status_at = now - timedelta(days=timeline[-1]["days_ago"])
        delivery = spec["delivery"]
        items = [(products[i["sku"]], i["quantity"]) for i in spec["items"]]
        order = Order(
            number=spec["number"], store_customer_id=customer["id"], status=spec["status"],
            total_minor=sum(p.price_minor * qty for p, qty in items),
            currency=items[0][0].currency, delivery_method=delivery["method"],
            delivery_address=delivery.get("address"), pickup_store_id=delivery.get("store"),
            carrier=spec.get("carrier"), tracking_number=spec.get("tracking_number"),
            tracking_url=spec.get("tracking_url"), contact_phone=customer.get("phone"),
            contact_email=customer.get("email"), created_at=placed_at, updated_at=status_at,
            delivered_at=_delivered_at(timeline, now),
        )
        session.add(order)
        await session.flush()
        for product, qty in items:
            session.add(OrderItem(order_id=order.id, sku=product.sku, name=product.name,
                                  quantity=qty, unit_price_minor=product.price_minor))
        for step in timeline:
            session.add(ShipmentEvent(order_id=order.id, status=step["status"],
                                      occurred_at=now - timedelta(days=step["days_ago"])))
        created += 1
    return created


def _delivered_at(timeline: list[dict[str, Any]], now: Any) -> Any:
    for step in timeline:
        if step["status"] in (OrderStatus.DELIVERED, OrderStatus.PICKED_UP):
            return now - timedelta(days=step["days_ago"])
    return None
