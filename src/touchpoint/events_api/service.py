"""Applying a batch of validated store events in one transaction.

Idempotency: each event id is inserted into ``processed_store_events`` first; an id the database
already holds (or that repeats inside the batch) is a duplicate, acknowledged and skipped.
Atomicity: an event that cannot be applied raises :class:`EventError` and the caller's transaction
rolls back, so nothing of that batch is applied (its ids included).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.catalog.models import Product, Stock, Store
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import BehaviourEvent, Customer, StoreCustomer
from touchpoint.customers.service import set_marketing_consent
from touchpoint.events_api.hooks import AppliedEvent
from touchpoint.events_api.models import ProcessedStoreEvent
from touchpoint.events_api.schemas import EventError, event_time
from touchpoint.orders import service as orders
from touchpoint.orders.models import Cart, Order
from touchpoint.referrals.service import on_order_status


@dataclass(slots=True)
class BatchResult:
    results: list[dict[str, str]]
    applied: list[AppliedEvent]


class _Context:
    """What one batch needs from the database, loaded once (a batch of 100 costs a few queries)."""

    def __init__(self, session: AsyncSession, settings: Settings, now: datetime) -> None:
        self.session, self.settings, self.now = session, settings, now
        self.customers: dict[str, Customer | None] = {}
        self.orders: dict[str, Order | None] = {}
        self.carts: dict[str, Cart | None] = {}
        self.order_rows = orders.OrderRows()
        # Status changes for referrals and loyalty points, applied once the orders have ids.
        self.status_changes: list[tuple[Order, str, Customer | None]] = []

    async def preload(self, events: Sequence[Any]) -> None:
        """Load (and on PostgreSQL lock) every row the batch will change, each table in key order:
        concurrent batches then queue behind each other instead of deadlocking."""
        keys: dict[str, set[Any]] = {name: set() for name in ("store_customers", "numbers", "carts", "stock")}
        for event in events:
            data = event.data
            if event.type == "customer.upserted":
                keys["store_customers"].add(data.id)
            elif event.type.startswith("order."):
                keys["numbers"].add(data.number)
            elif event.type.startswith("cart."):
                keys["carts"].add(data.customer_id)
            elif event.type == "stock.changed":
                keys["stock"].add((data.store_id, data.sku))
        await self._lock(StoreCustomer, col(StoreCustomer.id), keys["store_customers"])
        found = await self._lock(Order, col(Order.number), keys["numbers"])
        self.orders = {n: None for n in keys["numbers"]} | {o.number: o for o in found}
        carts = await self._lock(Cart, col(Cart.store_customer_id), keys["carts"])
        self.carts = {c: None for c in keys["carts"]} | {c.store_customer_id: c for c in carts}
        for store_id, sku in sorted(keys["stock"]):
            await self.session.exec(select(Stock).where(Stock.store_id == store_id, Stock.sku == sku)
                                    .with_for_update())
        store_ids = {getattr(e.data, "customer_id", None) for e in events} - {None}
        await self.load_customers(store_ids | {o.store_customer_id for o in found if o.store_customer_id})

    async def _lock(self, model: Any, key: Any, values: set[Any]) -> list[Any]:
        """Rows land in the session's identity map, so later ``session.get`` calls cost no query."""
        if not values:
            return []
        query = select(model).where(key.in_(values)).order_by(key).with_for_update()
        return list((await self.session.exec(query)).all())

    async def load_customers(self, store_ids: set[str]) -> None:
        missing = {s for s in store_ids if s not in self.customers}
        if not missing:
            return
        found = (await self.session.exec(
            select(Customer).where(col(Customer.store_customer_id).in_(missing)).order_by(col(Customer.id))
        )).all()
        self.customers.update({s: None for s in missing})
        for customer in reversed(found):  # the first linked chat wins
            self.customers[customer.store_customer_id or ""] = customer

    async def customer(self, store_customer_id: str | None) -> Customer | None:
        if store_customer_id is None:
            return None
        await self.load_customers({store_customer_id})
        return self.customers.get(store_customer_id)


async def apply_events(session: AsyncSession, settings: Settings, events: Sequence[Any]) -> BatchResult:
    now = utcnow()
    new_ids = await _claim_ids(session, events, now)
    context = _Context(session, settings, now)
    fresh = [e for e in events if e.id in new_ids]
    await context.preload(fresh)
    results: list[dict[str, str]] = []
    recorded: list[dict[str, Any]] = []
    # Rows are written in one flush at the end (multi-row INSERTs), not before every read.
    with session.sync_session.no_autoflush:
        for index, event in enumerate(events):
            if event.id not in new_ids:
                results.append({"id": event.id, "status": "duplicate"})
                continue
            new_ids.discard(event.id)  # a repeat later in the same batch is a duplicate
            try:
                behaviour = await APPLIERS[event.type](context, event)
            except EventError as exc:
                exc.index = index
                raise
            recorded.append(behaviour)
            results.append({"id": event.id, "status": "applied"})
    await context.order_rows.flush(session)
    for order, status, customer in context.status_changes:
        # Same transaction as the status change: points and referral rewards stand or fall with it.
        await on_order_status(session, settings, order, status, customer=customer)
    ids = await _insert_behaviour(session, recorded)
    applied = [AppliedEvent(b["payload"]["event_id"], b["type"], behaviour_id, b["customer_id"],
                            b["store_customer_id"], b["payload"], b["occurred_at"])
               for b, behaviour_id in zip(recorded, ids, strict=True)]
    return BatchResult(results, applied)


async def _insert_behaviour(session: AsyncSession, rows: list[dict[str, Any]]) -> list[int]:
    """One bulk INSERT without building ORM objects (the hot path of a batch); ids in row order."""
    if not rows:
        return []
    await session.flush()
    table = BehaviourEvent.__table__
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list((await session.execute(statement, rows)).scalars().all())


async def _claim_ids(session: AsyncSession, events: Sequence[Any], now: datetime) -> set[str]:
    """Insert every event id at once; those the database did not already hold are new."""
    rows = {e.id: {"id": e.id, "type": e.type, "received_at": now} for e in events}
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # Rows as parameters, not in the statement: one compiled statement serves every batch size.
    table = ProcessedStoreEvent.__table__
    statement = insert(table).on_conflict_do_nothing().returning(table.c.id)
    result = await session.execute(statement, list(rows.values()))
    return set(result.scalars().all())


def _behaviour(context: _Context, event: Any, customer: Customer | None, store_customer_id: str | None,
               payload: dict[str, Any]) -> dict[str, Any]:
    """The BehaviourEvent row for a store event (journeys trigger on these)."""
    return dict(
        customer_id=customer.id if customer else None, store_customer_id=store_customer_id,
        type=event.type, source="store", payload={"event_id": event.id, **payload},
        occurred_at=event_time(event, context.now),
    )


async def _customer_upserted(context: _Context, event: Any) -> dict[str, Any]:
    data = event.data
    record = await context.session.get(StoreCustomer, data.id)
    if record is None:
        record = StoreCustomer(id=data.id, created_at=context.now)
    record.name, record.phone, record.email = data.name, data.phone, data.email
    record.updated_at = context.now
    context.session.add(record)
    customer = await context.customer(data.id)
    if data.marketing_consent is None:
        return _behaviour(context, event, customer, data.id, {})
    chats = (await context.session.exec(select(Customer).where(Customer.store_customer_id == data.id))).all()
    for chat in chats:  # every chat linked to this store record
        if chat.marketing_consent != data.marketing_consent:
            set_marketing_consent(context.session, chat, data.marketing_consent, via="store")
    return _behaviour(context, event, customer, data.id, {"marketing_consent": data.marketing_consent})


async def _order_created(context: _Context, event: Any) -> dict[str, Any]:
    data = event.data
    if data.pickup_store_id and await context.session.get(Store, data.pickup_store_id) is None:
        raise EventError(None, "data.pickup_store_id", "unknown store")
    order = await orders.upsert_order(context.session, data, context.orders.get(data.number),
                                      event_time(event, context.now), context.order_rows)
    context.orders[data.number] = order
    customer = await context.customer(order.store_customer_id)
    if customer is not None:
        await orders.notify_status(context.session, context.settings, customer, order, event.id)
    return _behaviour(context, event, customer, order.store_customer_id, {
        "order_number": order.number, "status": order.status, "total_minor": order.total_minor,
        "currency": order.currency, "skus": [item.sku for item in data.items],
    })


async def _order_status_changed(context: _Context, event: Any) -> dict[str, Any]:
    data = event.data
    order = context.orders.get(data.number)
    if order is None:
        raise EventError(None, "data.number", "unknown order")
    previous = order.status
    orders.change_status(order, data, event_time(event, context.now), context.order_rows)
    context.session.add(order)
    customer = await context.customer(order.store_customer_id)
    if customer is not None and previous != order.status:
        await orders.notify_status(context.session, context.settings, customer, order, event.id)
    if previous != order.status:
        context.status_changes.append((order, order.status, customer))
    return _behaviour(context, event, customer, order.store_customer_id, {
        "order_number": order.number, "status": order.status, "previous_status": previous,
    })


async def _cart_updated(context: _Context, event: Any) -> dict[str, Any]:
    data = event.data
    items = [item.model_dump() for item in data.items]
    total = data.total_minor if data.total_minor is not None else sum(
        i.quantity * i.unit_price_minor for i in data.items)
    cart = context.carts.get(data.customer_id) or Cart(store_customer_id=data.customer_id)
    context.carts[data.customer_id] = cart
    cart.items, cart.total_minor, cart.currency, cart.updated_at = items, total, data.currency, context.now
    context.session.add(cart)
    customer = await context.customer(data.customer_id)
    return _behaviour(context, event, customer, data.customer_id, {
        # One cart per store customer: its id is the journeys' key ("one abandoned cart").
        "cart_id": data.customer_id,
        "skus": [i.sku for i in data.items], "item_count": sum(i.quantity for i in data.items),
        "total_minor": total, "currency": data.currency, "cart_url": data.cart_url,
    })


async def _cart_cleared(context: _Context, event: Any) -> dict[str, Any]:
    data = event.data
    cart = context.carts.get(data.customer_id)
    if cart is not None:  # emptied, not deleted: a delete of a row added earlier in the batch is messy
        cart.items, cart.total_minor, cart.updated_at = [], 0, context.now
        context.session.add(cart)
    customer = await context.customer(data.customer_id)
    return _behaviour(context, event, customer, data.customer_id, {"reason": data.reason})


async def _product_viewed(context: _Context, event: Any) -> dict[str, Any]:
    data = event.data
    customer = await context.customer(data.customer_id)
    return _behaviour(context, event, customer, data.customer_id, {"sku": data.sku, "url": data.url})


async def _stock_changed(context: _Context, event: Any) -> dict[str, Any]:
    data = event.data
    session = context.session
    stock = await session.get(Stock, (data.store_id, data.sku))
    if stock is None:
        if await session.get(Store, data.store_id) is None:
            raise EventError(None, "data.store_id", "unknown store")
        if await session.get(Product, data.sku) is None:
            raise EventError(None, "data.sku", "unknown product")
        stock = Stock(store_id=data.store_id, sku=data.sku)
    previous = stock.quantity
    stock.quantity, stock.updated_at = data.quantity, context.now
    session.add(stock)
    return _behaviour(context, event, None, None, {
        "store_id": data.store_id, "sku": data.sku, "quantity": data.quantity,
        "previous_quantity": previous,
    })


APPLIERS = {
    "customer.upserted": _customer_upserted,
    "order.created": _order_created,
    "order.status_changed": _order_status_changed,
    "cart.updated": _cart_updated,
    "cart.cleared": _cart_cleared,
    "product.viewed": _product_viewed,
    "stock.changed": _stock_changed,
}
