"""Shopify and WooCommerce webhooks through the real events API app, on SQLite and PostgreSQL:
signatures (rotation too), redeliveries, out-of-order updates, each topic's effect in the database,
unknown topics, bad input, and the durable queue surviving a crash."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import func
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from tests.factories import make_customer
from tests.production import EVENTS_SECRET
from touchpoint.catalog.models import Product, Stock, Store
from touchpoint.config import Settings, load_settings
from touchpoint.customers.models import BehaviourEvent, Customer, StoreCustomer
from touchpoint.db import Database
from touchpoint.events_api.app import create_events_app
from touchpoint.events_api.connectors import queue
from touchpoint.events_api.connectors.common import base64_hmac
from touchpoint.events_api.connectors.http import WORKER
from touchpoint.events_api.connectors.models import ConnectorDelivery
from touchpoint.events_api.connectors.queue import enqueue, queue_status, requeue
from touchpoint.events_api.hooks import AppliedEvent, on_event_applied
from touchpoint.messaging.models import OutboxMessage
from touchpoint.observability import REGISTRY
from touchpoint.orders.models import Cart, Order, OrderItem, ShipmentEvent
from touchpoint.seed.demo import seed_demo

DATA = Path(__file__).parents[1] / "data" / "connectors"
SHOPIFY_OLD = "shpss_old_9f2c41d07be35a86e1d4c0b97a3f5e28"
SHOPIFY_NEW = "shpss_new_5b8e0a6d3c71f942b6e85d20c1a7f3e9"
WOO_SECRET = "woo-secret-7f3a9c1e5b2d4f6a8c0e2b4d6f8a0c2e"
MITTE_LOCATION = "71234567890"


def fixture(platform: str, name: str) -> dict[str, Any]:
    return json.loads((DATA / platform / f"{name}.json").read_text("utf-8"))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        _env_file=None, database_url=database_url, events_secret=SecretStr(EVENTS_SECRET),
        shopify_webhook_secret=SecretStr(f"{SHOPIFY_OLD}, {SHOPIFY_NEW}"),
        woocommerce_webhook_secret=SecretStr(WOO_SECRET),
        shopify_locations={MITTE_LOCATION: "mitte", "555": "kreuzberg"}, woocommerce_stock_store="mitte",
        connectors_poll_s=0.2,
    )


@pytest.fixture
async def client(settings: Settings, db: Database) -> AsyncIterator[TestClient[Any, Any]]:
    await seed_demo(db)
    async with TestClient(TestServer(create_events_app(settings, db))) as test_client:
        yield test_client


async def shopify(client: TestClient[Any, Any], topic: str, payload: Any, *, secret: str = SHOPIFY_NEW,
                  event_id: str | None = None, raw: bytes | None = None,
                  headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    body = raw if raw is not None else json.dumps(payload).encode()
    sent = {"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": base64_hmac(secret, body),
            "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
            "X-Shopify-Webhook-Id": str(uuid.uuid4()), "X-Shopify-Shop-Domain": "brewhaus.myshopify.com",
            "X-Shopify-API-Version": "2025-01", "Content-Type": "application/json", **(headers or {})}
    response = await client.post("/webhooks/shopify", data=body, headers=sent)
    return response.status, await response.json()


async def woo(client: TestClient[Any, Any], topic: str, payload: Any, *, secret: str = WOO_SECRET,
              delivery_id: str | None = None) -> tuple[int, dict[str, Any]]:
    body = json.dumps(payload).encode()
    resource, _, action = topic.partition(".")
    sent = {"X-WC-Webhook-Topic": topic, "X-WC-Webhook-Resource": resource, "X-WC-Webhook-Event": action,
            "X-WC-Webhook-Signature": base64_hmac(secret, body),
            "X-WC-Webhook-Delivery-ID": delivery_id or uuid.uuid4().hex, "X-WC-Webhook-ID": "12",
            "X-WC-Webhook-Source": "https://brewhaus.example/", "Content-Type": "application/json"}
    response = await client.post("/webhooks/woocommerce", data=body, headers=sent)
    return response.status, await response.json()


async def settle(client: TestClient[Any, Any]) -> None:
    """Wait until the queue's worker has applied everything queued so far."""
    await client.app[WORKER].drain()


async def order(db: Database, number: str) -> Order:
    async with db.session() as session:
        return (await session.exec(select(Order).where(Order.number == number))).one()


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.session() as session:
        return int((await session.exec(select(func.count()).select_from(model).where(*where))).one())


async def deliveries(db: Database) -> list[ConnectorDelivery]:
    async with db.session() as session:
        return list((await session.exec(select(ConnectorDelivery).order_by(ConnectorDelivery.id))).all())


def later(payload: dict[str, Any], stamp: str, **changes: Any) -> dict[str, Any]:
    """The same resource as Shopify sends it again after a change."""
    return {**copy.deepcopy(payload), "updated_at": stamp, **changes}


# --- Shopify ------------------------------------------------------------------------------------

async def test_shopify_order_journey_from_created_to_delivered(
    client: TestClient[Any, Any], db: Database
) -> None:
    async with db.session() as session:  # a chat linked to the Shopify customer hears about it
        await make_customer(session, 6001, store_customer_id="7012345678901")
    created = fixture("shopify", "orders_create")
    assert await shopify(client, "orders/create", created) == (200, {"status": "queued"})
    await settle(client)
    placed = await order(db, "#1001")
    assert (placed.status, placed.total_minor, placed.currency) == ("placed", 37480, "EUR")
    assert (placed.store_customer_id, placed.contact_phone) == ("7012345678901", "+4915112345671")
    async with db.session() as session:
        items = (await session.exec(select(OrderItem).where(OrderItem.order_id == placed.id)
                                    .order_by(OrderItem.sku))).all()
        record = await session.get(StoreCustomer, "7012345678901")
    assert [(i.sku, i.quantity, i.unit_price_minor) for i in items] == [
        ("CON-001", 2, 1290), ("ESP-001", 1, 34900)]
    assert record is not None and (record.phone, record.email) == ("+4915112345671", "anna.shop@example.com")

    assert (await shopify(client, "orders/paid", later(created, "2026-11-27T10:05:00+01:00",
                                                       financial_status="paid")))[0] == 200
    await settle(client)
    assert (await order(db, "#1001")).status == "paid"

    fulfillment = fixture("shopify", "fulfillments_create")
    assert (await shopify(client, "fulfillments/create", fulfillment))[0] == 200
    await settle(client)
    shipped = await order(db, "#1001")
    assert (shipped.status, shipped.carrier) == ("shipped", "DHL")
    assert shipped.tracking_number == "00340434161094099999"
    assert shipped.tracking_url and shipped.tracking_url.startswith("https://www.dhl.de/")

    for stamp, shipment, expected in (("2026-11-28T08:00:00+01:00", "out_for_delivery", "out_for_delivery"),
                                      ("2026-11-28T11:30:00+01:00", "delivered", "delivered")):
        await shopify(client, "fulfillments/update", later(fulfillment, stamp, shipment_status=shipment))
        await settle(client)
        assert (await order(db, "#1001")).status == expected

    # Shopify's orders/fulfilled, sent alongside, must not move the delivered order back to shipped.
    await shopify(client, "orders/fulfilled", later(created, "2026-11-28T11:31:00+01:00",
                                                    financial_status="paid", fulfillment_status="fulfilled"))
    await settle(client)
    final = await order(db, "#1001")
    assert final.status == "delivered" and final.delivered_at is not None
    async with db.session() as session:
        steps = (await session.exec(select(ShipmentEvent.status).where(ShipmentEvent.order_id == final.id)
                                    .order_by(ShipmentEvent.occurred_at))).all()
        cards = (await session.exec(select(func.count()).select_from(OutboxMessage))).one()
    assert list(steps) == ["placed", "paid", "shipped", "out_for_delivery", "delivered"]
    assert cards >= 4  # the linked chat's live order card, once per status
    assert [d.status for d in await deliveries(db)] == ["applied"] * 6
    assert all(d.payload == {} for d in await deliveries(db))  # personal data not kept once applied


async def test_shopify_refunds_and_cancellation(client: TestClient[Any, Any], db: Database) -> None:
    created = fixture("shopify", "orders_create")
    await shopify(client, "orders/create", later(created, created["updated_at"], financial_status="paid"))
    refund = fixture("shopify", "refunds_create")  # 349.00 of 374.80: a partial refund
    await shopify(client, "refunds/create", refund)
    await settle(client)
    partial = await order(db, "#1001")
    assert partial.status == "paid"
    whole = copy.deepcopy(refund)
    whole["id"] = 9912345678902
    whole["transactions"][0]["amount"] = "374.80"
    await shopify(client, "refunds/create", whole)
    await settle(client)
    assert (await order(db, "#1001")).status == "refunded"

    other = later(created, "2026-11-27T10:00:00+01:00", id=5512345678902, name="#1002")
    await shopify(client, "orders/create", other)
    await shopify(client, "orders/cancelled", later(other, "2026-11-27T12:00:00+01:00",
                                                    cancelled_at="2026-11-27T12:00:00+01:00",
                                                    cancel_reason="customer"))
    await settle(client)
    assert (await order(db, "#1002")).status == "cancelled"
    async with db.session() as session:
        notes = (await session.exec(
            select(ShipmentEvent.details).where(ShipmentEvent.order_id == partial.id))).all()
    assert {"note": "partial refund"} in notes


@pytest.mark.parametrize("secret", [SHOPIFY_OLD, SHOPIFY_NEW])
async def test_shopify_accepts_every_configured_secret_while_rotating(
    client: TestClient[Any, Any], db: Database, secret: str
) -> None:
    status, body = await shopify(client, "orders/create", fixture("shopify", "orders_create"), secret=secret)
    assert (status, body) == (200, {"status": "queued"})
    await settle(client)
    assert (await order(db, "#1001")).status == "placed"


async def test_shopify_bad_signatures_are_refused_and_change_nothing(
    client: TestClient[Any, Any], db: Database
) -> None:
    payload = fixture("shopify", "orders_create")
    refused = (401, {"error": "bad_signature"})
    assert await shopify(client, "orders/create", payload, secret="x" * 40) == refused
    body = json.dumps(payload).encode()
    tampered = {"X-Shopify-Hmac-Sha256": base64_hmac(SHOPIFY_NEW, body)}
    assert (await shopify(client, "orders/create", None, raw=body.replace(b"374.80", b"0.01"),
                          headers=tampered))[0] == 401
    not_base64 = {"X-Shopify-Hmac-Sha256": "not base64!"}
    assert await shopify(client, "orders/create", payload, headers=not_base64) == refused
    response = await client.post("/webhooks/shopify", data=body, headers={"X-Shopify-Topic": "orders/create"})
    assert (response.status, await response.json()) == (401, {"error": "missing_signature"})
    await settle(client)
    assert await count(db, ConnectorDelivery) == 0
    assert await count(db, Order, Order.number == "#1001") == 0


async def test_shopify_redelivery_is_applied_once(client: TestClient[Any, Any], db: Database) -> None:
    payload = fixture("shopify", "orders_create")
    event_id = str(uuid.uuid4())
    assert (await shopify(client, "orders/create", payload, event_id=event_id))[1] == {"status": "queued"}
    await settle(client)
    again = await shopify(client, "orders/create", payload, event_id=event_id)
    assert again == (200, {"status": "duplicate"})
    await settle(client)
    assert await count(db, ConnectorDelivery) == 1
    assert await count(db, BehaviourEvent, BehaviourEvent.type == "order.created") == 1
    assert await count(db, OrderItem) == len(payload["line_items"]) + await _seeded_items(db)


async def _seeded_items(db: Database) -> int:
    async with db.session() as session:
        shop = (await session.exec(select(Order.id).where(Order.number == "#1001"))).one()
        return int((await session.exec(select(func.count()).select_from(OrderItem)
                                       .where(OrderItem.order_id != shop))).one())


async def test_shopify_webhook_id_is_the_fallback_idempotency_key(
    client: TestClient[Any, Any], db: Database
) -> None:
    body = json.dumps(fixture("shopify", "customers_update")).encode()
    headers = {"X-Shopify-Topic": "customers/update",
               "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
               "X-Shopify-Hmac-Sha256": base64_hmac(SHOPIFY_NEW, body)}
    answers = [await (await client.post("/webhooks/shopify", data=body, headers=headers)).json()
               for _ in range(2)]
    assert answers == [{"status": "queued"}, {"status": "duplicate"}]


async def test_shopify_older_state_never_overwrites_a_newer_one(
    client: TestClient[Any, Any], db: Database
) -> None:
    created = fixture("shopify", "orders_create")
    paid = later(created, "2026-11-27T10:05:00+01:00", financial_status="paid")
    await shopify(client, "orders/paid", paid)  # delivered first
    await shopify(client, "orders/create", created)  # the older state arrives after
    customer = fixture("shopify", "customers_update")
    await shopify(client, "customers/update", customer)
    older = later(customer, "2026-11-27T09:00:00+01:00", phone="+4915111111111")
    await shopify(client, "customers/update", older)
    await settle(client)
    assert (await order(db, "#1001")).status == "paid"
    assert [d.status for d in await deliveries(db)] == ["applied", "stale", "applied", "stale"]
    async with db.session() as session:
        record = await session.get(StoreCustomer, "7012345678901")
    assert record is not None and record.phone == "+4915198765432"


async def test_the_customer_inside_a_newer_order_does_not_undo_a_newer_customer_update(
    client: TestClient[Any, Any], db: Database
) -> None:
    await shopify(client, "customers/update", fixture("shopify", "customers_update"))  # 11:00, new phone
    created = fixture("shopify", "orders_create")  # its customer snapshot is from 10:00
    newer_order = later(created, "2026-11-27T11:30:00+01:00", financial_status="paid")
    await shopify(client, "orders/updated", newer_order)
    await settle(client)
    async with db.session() as session:
        record = await session.get(StoreCustomer, "7012345678901")
    assert record is not None and record.phone == "+4915198765432"
    assert (await order(db, "#1001")).store_customer_id == "7012345678901"


async def test_shopify_checkouts_are_carts_for_abandoned_cart_journeys(
    client: TestClient[Any, Any], db: Database
) -> None:
    checkout = fixture("shopify", "checkouts_create")
    await shopify(client, "checkouts/create", checkout)
    await settle(client)
    async with db.session() as session:
        cart = await session.get(Cart, "7012345678901")
        assert cart is not None and (cart.total_minor, [i["sku"] for i in cart.items]) == (34900, ["ESP-001"])
        event = (await session.exec(
            select(BehaviourEvent).where(BehaviourEvent.type == "cart.updated"))).one()
    assert event.payload["cart_url"].startswith("https://brewhaus.myshopify.com/")
    await shopify(client, "checkouts/update", later(checkout, "2026-11-27T10:00:00+01:00",
                                                    completed_at="2026-11-27T10:00:00+01:00"))
    guest = later(checkout, "2026-11-27T09:50:00+01:00", token="guest-checkout-token", customer=None)
    await shopify(client, "checkouts/create", guest)
    await settle(client)
    async with db.session() as session:
        cart = await session.get(Cart, "7012345678901")
        assert cart is not None and cart.items == []
    assert [(d.status, d.error) for d in await deliveries(db)][1:] == [
        ("applied", None), ("skipped", "guest_checkout")]


async def test_shopify_customer_update_sets_contact_and_consent_of_linked_chats(
    client: TestClient[Any, Any], db: Database
) -> None:
    async with db.session() as session:
        chat = await make_customer(session, 6002, store_customer_id="7012345678901", marketing_consent=True)
    await shopify(client, "customers/update", fixture("shopify", "customers_update"))
    await settle(client)
    async with db.session() as session:
        record = await session.get(StoreCustomer, "7012345678901")
        linked = await session.get(Customer, chat.id)
    assert record is not None and (record.name, record.phone) == ("Anna Schmidt", "+4915198765432")
    assert linked is not None and linked.marketing_consent is False


async def test_shopify_products_and_inventory_levels_update_price_and_stock_per_store(
    client: TestClient[Any, Any], db: Database
) -> None:
    level = fixture("shopify", "inventory_levels_update")
    await shopify(client, "inventory_levels/update", level)  # before the product: item not known yet
    await shopify(client, "products/update", fixture("shopify", "products_update"))
    await shopify(client, "inventory_levels/update", later(level, "2026-11-27T13:05:00+01:00"))
    unmapped = later(level, "2026-11-27T13:06:00+01:00", location_id=999)
    await shopify(client, "inventory_levels/update", unmapped)
    await settle(client)
    async with db.session() as session:
        product = await session.get(Product, "ESP-001")
        stock = await session.get(Stock, ("mitte", "ESP-001"))
        event = (await session.exec(
            select(BehaviourEvent).where(BehaviourEvent.type == "stock.changed"))).one()
    assert product is not None and product.price_minor == 32900
    assert stock is not None and stock.quantity == 0
    assert (event.payload["previous_quantity"], event.payload["quantity"]) == (4, 0)
    assert [(d.status, d.error) for d in await deliveries(db)] == [
        ("skipped", "unknown_inventory_item"), ("applied", None), ("applied", None),
        ("skipped", "unmapped_location")]


async def test_unknown_topic_is_acknowledged_ignored_and_counted(
    client: TestClient[Any, Any], db: Database
) -> None:
    def ignored() -> float:
        return REGISTRY.get_sample_value("touchpoint_connector_webhooks_total",
                                         {"platform": "shopify", "outcome": "ignored"}) or 0.0

    before = ignored()
    answer = await shopify(client, "app/uninstalled", {"id": 1, "name": "Brewhaus"})
    assert answer == (200, {"status": "ignored"})
    assert ignored() == before + 1
    assert await count(db, ConnectorDelivery) == 0


async def test_bad_input_is_a_clear_json_error_and_changes_nothing(
    client: TestClient[Any, Any], db: Database, settings: Settings
) -> None:
    assert await shopify(client, "orders/create", None, raw=b"{not json") == (400, {"error": "invalid_json"})
    assert (await shopify(client, "orders/create", None, raw=b"[1, 2]"))[1]["error"] == "invalid_body"
    oversize = b"{" + b" " * settings.events_max_body_bytes + b"}"
    status, body = await shopify(client, "orders/create", None, raw=oversize)
    assert (status, body["error"]) == (413, "payload_too_large")
    assert (await shopify(client, "", {"id": 1}))[1] == {"error": "missing_topic"}
    deep = b"[" * 100_000 + b"]" * 100_000
    assert await shopify(client, "orders/create", None, raw=deep) == (400, {"error": "invalid_json"})
    assert await shopify(client, "orders/create", None, raw=b"\xff\xfe{}") == (400, {"error": "invalid_json"})
    assert await count(db, ConnectorDelivery) == 0


async def test_a_delivery_that_cannot_be_applied_is_parked_and_the_queue_moves_on(
    client: TestClient[Any, Any], db: Database
) -> None:
    created = fixture("shopify", "orders_create")
    await shopify(client, "orders/create", later(created, created["updated_at"], line_items=[]))
    other = later(created, created["updated_at"], id=5512345678902, name="#1002")
    await shopify(client, "orders/create", other)
    await settle(client)
    assert [(d.status, d.error) for d in await deliveries(db)] == [
        ("rejected", "line_items: has no item"), ("applied", None)]
    assert (await order(db, "#1002")).status == "placed"


async def test_a_queued_delivery_survives_a_crash_and_is_applied_at_start(
    settings: Settings, db: Database
) -> None:
    await seed_demo(db)
    async with db.session() as session:  # committed, answered 200, then the process died
        payload = fixture("shopify", "orders_create")
        assert await enqueue(session, "shopify", "crash-1", "orders/create", payload)
    async with TestClient(TestServer(create_events_app(settings, db))):
        for _ in range(100):  # the worker drains at start, without any new delivery
            if (await deliveries(db))[0].status == "applied":
                break
            await asyncio.sleep(0.05)
    assert [d.status for d in await deliveries(db)] == ["applied"]
    assert (await order(db, "#1001")).status == "placed"


async def test_guest_order_is_matched_to_a_store_customer_by_phone(
    client: TestClient[Any, Any], db: Database
) -> None:
    created = fixture("shopify", "orders_create")
    guest = later(created, created["updated_at"], customer=None, email="someone@example.com")
    guest["shipping_address"] = {**guest["shipping_address"], "phone": "+49 151 12345671"}  # C-1001's
    await shopify(client, "orders/create", guest)
    await settle(client)
    assert (await order(db, "#1001")).store_customer_id == "C-1001"


# --- WooCommerce --------------------------------------------------------------------------------

async def test_woocommerce_order_statuses_map_to_ours(client: TestClient[Any, Any], db: Database) -> None:
    created = fixture("woocommerce", "order_created")
    assert await woo(client, "order.created", created) == (200, {"status": "queued"})
    await settle(client)
    placed = await order(db, "727")
    assert (placed.status, placed.store_customer_id, placed.total_minor) == ("paid", "26", 130390)
    assert placed.contact_phone == "+4917623456782"
    tracked = {**copy.deepcopy(created), "status": "completed", "date_modified_gmt": "2026-11-28T09:00:00",
               "meta_data": [{"id": 13200, "key": "_wc_shipment_tracking_items", "value": [
                   {"tracking_provider": "DHL", "custom_tracking_provider": "", "custom_tracking_link": "",
                    "tracking_number": "00340434161094011111", "date_shipped": "1765180800",
                    "tracking_id": "a1b2"}]}]}
    await woo(client, "order.updated", tracked)
    await settle(client)
    shipped = await order(db, "727")
    assert (shipped.status, shipped.carrier) == ("shipped", "DHL")
    assert shipped.tracking_number == "00340434161094011111"
    for stamp, status, expected in (("2026-11-29T09:00:00", "refunded", "refunded"),
                                    ("2026-11-28T10:00:00", "processing", "refunded")):  # older: ignored
        await woo(client, "order.updated", {**created, "status": status, "date_modified_gmt": stamp})
        await settle(client)
        assert (await order(db, "727")).status == expected


@pytest.mark.parametrize(("woo_status", "expected"), [
    ("pending", "placed"), ("on-hold", "placed"), ("processing", "paid"), ("completed", "shipped"),
    ("cancelled", "cancelled"), ("refunded", "refunded"), ("failed", "cancelled"),
])
async def test_woocommerce_each_status(client: TestClient[Any, Any], db: Database, woo_status: str,
                                       expected: str) -> None:
    await woo(client, "order.created", {**fixture("woocommerce", "order_created"), "status": woo_status})
    await settle(client)
    assert (await order(db, "727")).status == expected


async def test_woocommerce_customer_and_product_updates(client: TestClient[Any, Any], db: Database) -> None:
    await woo(client, "customer.updated", fixture("woocommerce", "customer_updated"))
    await woo(client, "product.updated", fixture("woocommerce", "product_updated"))
    await settle(client)
    async with db.session() as session:
        record = await session.get(StoreCustomer, "26")
        product = await session.get(Product, "ESP-001")
        stock = await session.get(Stock, ("mitte", "ESP-001"))
    assert record is not None and (record.name, record.phone, record.email) == (
        "Olga Petrova", "+4917623456782", "olga.woo@example.com")
    assert product is not None and product.price_minor == 31900
    assert stock is not None and stock.quantity == 9


async def test_woocommerce_signature_redelivery_and_ping(client: TestClient[Any, Any], db: Database) -> None:
    created = fixture("woocommerce", "order_created")
    assert await woo(client, "order.created", created, secret="y" * 40) == (401, {"error": "bad_signature"})
    assert await woo(client, "order.created", created, delivery_id="d-1") == (200, {"status": "queued"})
    assert await woo(client, "order.created", created, delivery_id="d-1") == (200, {"status": "duplicate"})
    ping = await client.post("/webhooks/woocommerce", data=b"webhook_id=12",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (ping.status, await ping.json()) == (200, {"status": "ping"})
    unsigned = await client.post("/webhooks/woocommerce", data=b"webhook_id=12&x=1")
    assert unsigned.status == 401
    await settle(client)
    assert await count(db, ConnectorDelivery) == 1
    assert await count(db, BehaviourEvent, BehaviourEvent.type == "order.created") == 1


# --- the worker and the wiring ------------------------------------------------------------------

async def test_applied_deliveries_reach_the_event_listeners_once(
    client: TestClient[Any, Any], db: Database
) -> None:
    heard: list[tuple[str, str | None]] = []

    async def listener(_db: Database, event: AppliedEvent) -> None:
        heard.append((event.type, event.store_customer_id))

    on_event_applied.append(listener)
    try:
        payload, event_id = fixture("shopify", "orders_create"), str(uuid.uuid4())
        await shopify(client, "orders/create", payload, event_id=event_id)
        await shopify(client, "orders/create", payload, event_id=event_id)
        await settle(client)
    finally:
        on_event_applied.remove(listener)
    assert heard == [("customer.upserted", "7012345678901"), ("order.created", "7012345678901")]


async def test_a_delivery_the_database_keeps_refusing_is_parked_as_failed(
    client: TestClient[Any, Any], db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refused(*_args: Any) -> None:
        raise OperationalError("UPDATE orders", {}, RuntimeError("connection lost"))

    worker = client.app[WORKER]
    await worker.stop()  # the test drives the worker itself
    monkeypatch.setattr(queue, "apply_delivery", refused)
    await shopify(client, "orders/create", fixture("shopify", "orders_create"))
    for _ in range(settings.connectors_max_attempts):
        await worker.drain()
    failed, = await deliveries(db)
    assert (failed.status, failed.attempts, failed.error) == ("failed", 5, "OperationalError")
    assert failed.payload != {}  # kept for a look (and pruned after 30 days)


async def test_a_platform_without_a_secret_is_not_served(database_url: str, db: Database) -> None:
    secrets = {"events_secret": SecretStr(EVENTS_SECRET), "shopify_webhook_secret": SecretStr(SHOPIFY_NEW)}
    settings = load_settings(_env_file=None, database_url=database_url, **secrets)
    async with TestClient(TestServer(create_events_app(settings, db))) as test_client:
        response = await test_client.post("/webhooks/woocommerce", data=b"{}")
        assert (response.status, await response.json()) == (404, {"error": "not_configured"})


async def test_an_unforeseen_mapping_error_is_parked_without_personal_data_in_the_log(
    client: TestClient[Any, Any], db: Database, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: Any) -> None:
        raise TypeError("cannot read 'Anna Schmidt' +4915112345671")

    monkeypatch.setitem(queue.PLATFORMS, "shopify", broken)
    await shopify(client, "orders/create", fixture("shopify", "orders_create"))
    await settle(client)
    parked, = await deliveries(db)
    assert (parked.status, parked.error) == ("rejected", "internal: TypeError")
    assert "TypeError" in caplog.text
    assert "Anna" not in caplog.text and "4915112345671" not in caplog.text


async def test_operators_see_the_queue_and_requeue_what_was_fixed(
    client: TestClient[Any, Any], db: Database
) -> None:
    level = {**fixture("shopify", "inventory_levels_update"), "location_id": 555}
    await shopify(client, "products/update", fixture("shopify", "products_update"))
    await shopify(client, "inventory_levels/update", level)  # location 555 → a store not yet opened
    await settle(client)
    assert await queue_status(db) == [("shopify", "applied", 1), ("shopify", "rejected", 1)]
    async with db.session() as session:  # the operator opens the store
        session.add(Store(id="kreuzberg", name={"en": "Kreuzberg"}, address={"en": "Oranienstr. 1"},
                          timezone="Europe/Berlin", hours={}))
    assert await requeue(db, ["failed"]) == 0
    assert await requeue(db, ["rejected"], "shopify") == 1
    await settle(client)
    assert await queue_status(db) == [("shopify", "applied", 2)]
    async with db.session() as session:
        stock = await session.get(Stock, ("kreuzberg", "ESP-001"))
    assert stock is not None and stock.quantity == 0


async def test_status_command(sqlite_db: Database) -> None:
    async with sqlite_db.session() as session:
        await enqueue(session, "woocommerce", "d-9", "order.created", {"id": 1})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from bot.cli import main; main()", "connectors", "status",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "TOUCHPOINT_DATABASE_URL": sqlite_db.url},
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output
    assert output.decode().split() == ["woocommerce", "pending", "1"]
