"""The durable queue between a platform's webhook and its effects.

A delivery is committed as a ``connector_deliveries`` row (its id claimed in
``processed_store_events``, so a redelivery is acknowledged and dropped) before the platform gets
its 200; the :class:`ConnectorWorker` of the events API's process applies the rows one by one in
the order they arrived, each in its own transaction with the events API's own service
(``apply_events``). A crash loses nothing: rows not applied yet are still ``pending`` and the next
drain (at start, on the next delivery, or at the next poll) applies them. Across processes one
worker at a time drains (a PostgreSQL advisory lock), so the order holds there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import Counter
from sqlalchemy import text as sql
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.catalog.models import Product
from touchpoint.catalog.service import update_listing
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import StoreCustomer
from touchpoint.db import Database
from touchpoint.events_api.connectors import shopify, woocommerce
from touchpoint.events_api.connectors.common import (
    RESOURCE_KEY,
    ConnectorError,
    OrderUpdate,
    Translation,
    delivery_key,
    event,
    to_minor,
    validate_events,
)
from touchpoint.events_api.connectors.models import ConnectorDelivery, ConnectorResource, DeliveryStatus
from touchpoint.events_api.hooks import AppliedEvent
from touchpoint.events_api.models import ProcessedStoreEvent
from touchpoint.events_api.schemas import EventError
from touchpoint.events_api.service import apply_events
from touchpoint.observability import REGISTRY
from touchpoint.orders.models import Order, OrderStatus

log = logging.getLogger(__name__)

PLATFORMS: dict[str, Callable[[str, Any, Settings], Translation]] = {
    shopify.PLATFORM: shopify.translate, woocommerce.PLATFORM: woocommerce.translate,
}
APPLIED = Counter("touchpoint_connector_deliveries_total",
                  "Queued platform webhook deliveries by how they ended (applied, stale, skipped, "
                  "rejected, failed)", ["platform", "outcome"], registry=REGISTRY)
RECEIVE_PRIORITY_S = 0.05
# One drainer at a time across processes (PostgreSQL): deliveries are applied in arrival order.
ADVISORY_LOCK = 0x7470_636F_6E6E  # "tpconn"

# Derived statuses only move an order forward along this scale (an order payload read later may
# lag its fulfilment's tracking); equal ranks may replace each other (out for delivery ↔ problem).
RANK = {
    OrderStatus.PLACED: 0, OrderStatus.PAID: 1, OrderStatus.PACKED: 2, OrderStatus.SHIPPED: 3,
    OrderStatus.READY_FOR_PICKUP: 3, OrderStatus.OUT_FOR_DELIVERY: 4, OrderStatus.DELIVERY_PROBLEM: 4,
    OrderStatus.DELIVERED: 5, OrderStatus.PICKED_UP: 5, OrderStatus.RETURNED: 6,
    OrderStatus.CANCELLED: 6, OrderStatus.REFUNDED: 6,
}


# --- receiving ----------------------------------------------------------------------------------

async def enqueue(session: AsyncSession, platform: str, delivery_id: str, topic: str,
                  payload: dict[str, Any]) -> bool:
    """Queue a delivery; False when its id was seen before (a redelivery: acknowledge, drop)."""
    now = utcnow()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = ProcessedStoreEvent.__table__
    claimed = await session.execute(
        insert(table).values(id=delivery_key(platform, delivery_id), type=f"{platform}:{topic}"[:64],
                             received_at=now).on_conflict_do_nothing().returning(table.c.id))
    if claimed.scalar_one_or_none() is None:
        return False
    session.add(ConnectorDelivery(platform=platform, delivery_id=delivery_id[:64], topic=topic,
                                  payload=payload, received_at=now))
    return True


# --- applying -----------------------------------------------------------------------------------

def plan_order(existing: Order | None, update: OrderUpdate) -> list[dict[str, Any]]:
    """The internal events that bring our order to what the delivery says (pure).

    An unknown order is created from a whole-order payload (at its base status, then moved on, so
    the timeline shows both steps); a known one only gets a status change when something changed."""
    status = update.status
    tracking = {"carrier": update.carrier, "tracking_number": update.tracking_number,
                "tracking_url": update.tracking_url}
    if existing is None:
        if update.created is None:
            return []
        planned = [event("order.created", update.created, update.occurred_at)]
        if status is not None and status != update.created["status"]:
            planned.append(event("order.status_changed", {
                "number": update.created["number"], "status": status.value, "note": update.note, **tracking,
            }, update.occurred_at))
        return planned
    current = OrderStatus(existing.status)
    if update.refund_minor is not None:
        whole = update.refund_minor >= existing.total_minor
        target = OrderStatus.REFUNDED if whole else current
        return [event("order.status_changed", {
            "number": existing.number, "status": target.value,
            "note": "refund" if whole else "partial refund"}, update.occurred_at)]
    if status is None:
        return []
    if update.derived and RANK[status] < RANK[current]:
        status = current
    changed_tracking = any(value and value != getattr(existing, name) for name, value in tracking.items())
    if status == current and not changed_tracking:
        return []
    return [event("order.status_changed", {
        "number": existing.number, "status": status.value, "note": update.note, **tracking,
    }, update.occurred_at)]


@dataclass(slots=True)
class Outcome:
    status: DeliveryStatus
    error: str | None = None
    applied: list[AppliedEvent] = field(default_factory=list)


async def _resource(session: AsyncSession, platform: str, kind: str,
                    external_id: str) -> ConnectorResource | None:
    return await session.get(ConnectorResource, (platform, kind, external_id))


async def _remember(session: AsyncSession, platform: str, kind: str, external_id: str, **values: Any) -> None:
    row = await _resource(session, platform, kind, external_id)
    if row is None:
        row = ConnectorResource(platform=platform, kind=kind, external_id=external_id)
    for name, value in values.items():
        setattr(row, name, value)
    session.add(row)


async def _older_snapshot(session: AsyncSession, platform: str, raw: dict[str, Any]) -> bool:
    """A snapshot of a resource (the customer inside an order) older than one already applied."""
    if RESOURCE_KEY not in raw or raw["occurred_at"] is None:
        return False
    known = await _resource(session, platform, *raw[RESOURCE_KEY])
    return bool(known and known.updated_at and raw["occurred_at"] < known.updated_at)


async def _guest(session: AsyncSession, phone: str | None, email: str | None) -> str | None:
    """The store customer a guest order belongs to, matched by phone (E.164), then e-mail."""
    for column, value in ((StoreCustomer.phone, phone), (StoreCustomer.email, email)):
        if value:
            found = (await session.exec(select(StoreCustomer.id).where(column == value)
                                        .order_by(col(StoreCustomer.id)).limit(1))).first()
            if found is not None:
                return found
    return None


async def _order_events(session: AsyncSession, platform: str,
                       translation: Translation) -> list[dict[str, Any]] | None:
    """None: the delivery is about an order we do not know and cannot create from it."""
    update = translation.order
    if update is None:
        return []
    number = update.number
    if number is None:
        known = await _resource(session, platform, "order", update.external_id)
        number = known.ref if known else None
    existing = None
    if number is not None:
        existing = (await session.exec(select(Order).where(Order.number == number))).first()
    if existing is None and update.created is None:
        return None
    if (existing is None and update.created is not None and update.created["customer_id"] is None
            and translation.guest_contact):
        update.created["customer_id"] = await _guest(session, *translation.guest_contact)
    return plan_order(existing, update)


async def apply_delivery(session: AsyncSession, settings: Settings, delivery: ConnectorDelivery) -> Outcome:
    """Apply one queued delivery inside the caller's transaction.

    Raises :class:`ConnectorError` or :class:`EventError` for a delivery that cannot be applied
    (the caller rolls back and marks it rejected)."""
    platform = delivery.platform
    translation = PLATFORMS[platform](delivery.topic, delivery.payload, settings)
    if translation.resource is not None:
        kind, external_id = translation.resource
        known = await _resource(session, platform, kind, external_id)
        if known and known.updated_at and translation.version and translation.version < known.updated_at:
            return Outcome(DeliveryStatus.STALE)
    if translation.skipped:
        return Outcome(DeliveryStatus.SKIPPED, translation.skipped)
    events = [e for e in translation.events if not await _older_snapshot(session, platform, e)]
    planned = await _order_events(session, platform, translation)
    if planned is None:
        return Outcome(DeliveryStatus.SKIPPED, "unknown_order")
    events += planned
    for level in translation.stock:
        sku = level.sku
        if sku is None and level.inventory_item is not None:
            known_item = await _resource(session, platform, "inventory_item", level.inventory_item)
            sku = known_item.ref if known_item else None
        if sku is None:
            return Outcome(DeliveryStatus.SKIPPED, "unknown_inventory_item")
        if await session.get(Product, sku) is None:
            return Outcome(DeliveryStatus.SKIPPED, "unknown_product")  # a product we do not carry
        events.append(event("stock.changed", {"store_id": level.store_id, "sku": sku,
                                              "quantity": level.quantity}, translation.version))
    for listing in translation.products:
        product = await session.get(Product, listing.sku)
        if product is not None:
            price = None if listing.price is None else to_minor(listing.price, product.currency, "price")
            await update_listing(session, listing.sku, price_minor=price, active=listing.active)
    prefix = delivery_key(platform, delivery.delivery_id)
    validated = validate_events(events, prefix, settings.orders_phone_region)
    result = await apply_events(session, settings, validated) if validated else None
    for (kind, external_id), ref in translation.refs.items():
        await _remember(session, platform, kind, external_id, ref=ref)
    versions = {e[RESOURCE_KEY]: e["occurred_at"] for e in events if RESOURCE_KEY in e}
    if translation.resource is not None:
        versions[translation.resource] = translation.version
    for (kind, external_id), version in versions.items():
        known = await _resource(session, platform, kind, external_id)
        newer = known is not None and known.updated_at is not None and (
            version is None or known.updated_at > version)
        if version and not newer:
            await _remember(session, platform, kind, external_id, updated_at=version)
    return Outcome(DeliveryStatus.APPLIED, applied=result.applied if result else [])


# --- the worker ---------------------------------------------------------------------------------

class ConnectorWorker:
    """Drains the queue in the events API's process: woken by each delivery, polling for the rest
    (rows left by a crash, or queued by another process)."""

    def __init__(self, db: Database, settings: Settings, *,
                 after_apply: Callable[[list[AppliedEvent]], Any] | None = None) -> None:
        self.db, self.settings = db, settings
        self.after_apply = after_apply
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._draining = asyncio.Lock()
        self._receiving = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @contextlib.asynccontextmanager
    async def receiving(self) -> AsyncIterator[None]:
        """Around a webhook's enqueue: answering the platform goes first, so the worker starts no
        new delivery while one is being committed (on SQLite both want the one write lock)."""
        self._receiving += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._receiving -= 1
            if not self._receiving:
                self._quiet.set()

    def poke(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="connector-worker")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Finish the delivery in hand (within ``grace_s``; else it rolls back and stays pending)."""
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            _done, late = await asyncio.wait({self._task}, timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._stop.clear()  # ``drain`` may still be called by hand (tests, a CLI)

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.drain()
            except Exception:  # the database is away: try again at the next poll
                log.exception("connector queue: drain failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.connectors_poll_s)
            self._wake.clear()

    async def drain(self) -> int:
        """Apply every pending delivery in order; how many were handled."""
        handled = 0
        async with self._draining:
            while not self._stop.is_set():
                # Under a steady stream the worker still moves: it waits for a gap at most briefly.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._quiet.wait(), timeout=RECEIVE_PRIORITY_S)
                done = await self._apply_next()
                if done is None:
                    break
                handled += 1
        return handled

    async def _apply_next(self) -> ConnectorDelivery | None:
        applied: list[AppliedEvent] = []
        try:
            async with self.db.session() as session:
                if self.db.dialect == "postgresql":
                    got = (await session.execute(sql("SELECT pg_try_advisory_xact_lock(:key)"),
                                                 {"key": ADVISORY_LOCK})).scalar_one()
                    if not got:
                        return None
                # Claimed by a write first: on SQLite a transaction that reads before it writes
                # cannot wait for the lock when a delivery was committed in between.
                oldest = (select(col(ConnectorDelivery.id))
                          .where(ConnectorDelivery.status == DeliveryStatus.PENDING)
                          .order_by(col(ConnectorDelivery.id)).limit(1).scalar_subquery())
                claimed = (await session.execute(
                    update(ConnectorDelivery).where(col(ConnectorDelivery.id) == oldest)
                    .values(attempts=ConnectorDelivery.attempts + 1)
                    .returning(col(ConnectorDelivery.id)))).scalar_one_or_none()
                if claimed is None:
                    return None
                delivery = await session.get(ConnectorDelivery, claimed)
                if delivery is None:
                    return None
                try:
                    async with session.begin_nested():
                        outcome = await apply_delivery(session, self.settings, delivery)
                except (ConnectorError, EventError) as exc:
                    outcome = Outcome(DeliveryStatus.REJECTED, f"{exc.field}: {exc.message}"[:200])
                except SQLAlchemyError:
                    raise
                except Exception as exc:  # a payload shape nobody foresaw: park it, keep the queue moving
                    # Where, not the message: a message may quote the payload (personal data).
                    log.error("connector delivery %s could not be mapped: %s at %s", delivery.id,
                              type(exc).__name__, _where(exc))
                    outcome = Outcome(DeliveryStatus.REJECTED, f"internal: {type(exc).__name__}")
                self._finish(delivery, outcome)
                session.add(delivery)
                applied = outcome.applied
        except SQLAlchemyError as exc:
            return await self._failed(exc)
        APPLIED.labels(delivery.platform, outcome.status.value).inc()
        if outcome.status == DeliveryStatus.REJECTED:
            log.warning("connector delivery %s (%s %s) rejected: %s", delivery.id, delivery.platform,
                        delivery.topic, outcome.error)
        if applied and self.after_apply is not None:
            await self.after_apply(applied)
        return delivery

    def _finish(self, delivery: ConnectorDelivery, outcome: Outcome) -> None:
        delivery.status, delivery.error, delivery.done_at = outcome.status.value, outcome.error, utcnow()
        if outcome.status in (DeliveryStatus.APPLIED, DeliveryStatus.STALE, DeliveryStatus.SKIPPED):
            delivery.payload = {}  # personal data is kept no longer than needed

    async def _failed(self, exc: SQLAlchemyError) -> None:
        """The database refused (a deadlock, a lost connection): count an attempt on the oldest pending
        row; after ``connectors_max_attempts`` it is parked as failed so the queue moves on."""
        log.warning("connector queue: applying failed with %s", type(exc).__name__)
        try:
            async with self.db.session() as session:
                delivery = (await session.exec(
                    select(ConnectorDelivery).where(ConnectorDelivery.status == DeliveryStatus.PENDING)
                    .order_by(col(ConnectorDelivery.id)).limit(1).with_for_update())).first()
                if delivery is not None:
                    delivery.attempts += 1
                    if delivery.attempts >= self.settings.connectors_max_attempts:
                        delivery.status, delivery.done_at = DeliveryStatus.FAILED.value, utcnow()
                        delivery.error = type(exc).__name__
                        APPLIED.labels(delivery.platform, "failed").inc()
                    session.add(delivery)
        except SQLAlchemyError:
            log.warning("connector queue: database unavailable")
        await asyncio.sleep(0.2)
        return None


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"


async def pending_count(db: Database) -> int:
    async with db.session() as session:
        return int((await session.exec(select(func.count()).select_from(ConnectorDelivery)
                                       .where(ConnectorDelivery.status == DeliveryStatus.PENDING))).one())


async def queue_status(db: Database) -> list[tuple[str, str, int]]:
    """(platform, status, deliveries) for the operator."""
    async with db.session() as session:
        rows = (await session.exec(
            select(ConnectorDelivery.platform, ConnectorDelivery.status, func.count())
            .group_by(ConnectorDelivery.platform, ConnectorDelivery.status)
            .order_by(ConnectorDelivery.platform, ConnectorDelivery.status))).all()
    return [(platform, status, int(n)) for platform, status, n in rows]


async def requeue(db: Database, statuses: Sequence[str], platform: str | None = None) -> int:
    """Rejected or failed deliveries back to pending (once the cause is fixed: a store added, a
    location mapped). They are older than anything newer already applied, so they cannot undo it."""
    allowed = {DeliveryStatus.REJECTED.value, DeliveryStatus.FAILED.value}
    wanted = [s for s in statuses if s in allowed]
    if not wanted:
        return 0
    async with db.session() as session:
        query = (update(ConnectorDelivery).where(col(ConnectorDelivery.status).in_(wanted))
                 .values(status=DeliveryStatus.PENDING.value, attempts=0, error=None, done_at=None))
        if platform:
            query = query.where(col(ConnectorDelivery.platform) == platform)
        result = await session.execute(query)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
