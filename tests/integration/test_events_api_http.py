"""The store events API over real HTTP: signatures, replay, idempotency, validation, atomic batches."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import func
from sqlmodel import col, select

from tests.factories import make_customer
from touchpoint.catalog.models import Stock
from touchpoint.config import Settings, load_settings
from touchpoint.customers.models import BehaviourEvent, StoreCustomer
from touchpoint.db import Database
from touchpoint.events_api.app import create_events_app
from touchpoint.events_api.hooks import AppliedEvent, on_event_applied
from touchpoint.events_api.models import ProcessedStoreEvent
from touchpoint.events_api.signing import signed_headers
from touchpoint.messaging.models import OutboxMessage
from touchpoint.orders.models import Cart, Order, OrderItem, ShipmentEvent
from touchpoint.seed.demo import seed_demo

SECRET = "5f0c1e9a7b3d48e2a6c4f81d9e07b2c3a1f6d8e4b9c2a7f03e5d1b8c6a4f2e90"  # strong: the API checks


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(_env_file=None, database_url=database_url, events_secret=SecretStr(SECRET))


@pytest.fixture
async def client(settings: Settings, db: Database) -> AsyncIterator[TestClient[Any, Any]]:
    await seed_demo(db)
    async with TestClient(TestServer(create_events_app(settings, db))) as test_client:
        yield test_client


async def post(client: TestClient[Any, Any], body: Any, *, secret: str = SECRET, age: int = 0,
               raw: bytes | None = None, tamper: bool = False) -> tuple[int, dict[str, Any]]:
    data = raw if raw is not None else json.dumps(body).encode()
    headers = signed_headers(secret, int(time.time()) - age, data)
    if tamper:
        data = data.replace(b"BH-", b"XX-", 1) if b"BH-" in data else data + b" "
    response = await client.post("/api/v1/events", data=data, headers=headers)
    return response.status, await response.json()


def order_created(event_id: str, number: str = "BH-200001", customer: str = "C-1001",
                  **data: Any) -> dict[str, Any]:
    return {"id": event_id, "type": "order.created", "data": {
        "number": number, "customer_id": customer, "contact_phone": "+4915112345671",
        "items": [{"sku": "ESP-001", "name": {"en": "Grinder"}, "quantity": 2,
                   "unit_price_minor": 4990}], **data}}


def status_changed(event_id: str, status: str, number: str = "BH-200001", **data: Any) -> dict[str, Any]:
    return {"id": event_id, "type": "order.status_changed",
            "data": {"number": number, "status": status, **data}}


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.session() as session:
        return int((await session.exec(select(func.count()).select_from(model).where(*where))).one())


async def test_signed_order_is_applied_and_recorded_as_behaviour(
    client: TestClient[Any, Any], db: Database
) -> None:
    status, body = await post(client, order_created("e-1"))
    assert status == 200, body
    assert body["results"] == [{"id": "e-1", "status": "applied"}]
    async with db.session() as session:
        order = (await session.exec(select(Order).where(Order.number == "BH-200001"))).one()
        assert (order.total_minor, order.store_customer_id, order.status) == (9980, "C-1001", "placed")
        event = (await session.exec(
            select(BehaviourEvent).where(BehaviourEvent.type == "order.created"))).one()
    assert event.source == "store" and event.store_customer_id == "C-1001"
    assert event.payload["order_number"] == "BH-200001" and event.payload["event_id"] == "e-1"


async def test_replayed_event_id_is_acknowledged_and_ignored(
    client: TestClient[Any, Any], db: Database
) -> None:
    assert (await post(client, order_created("e-1")))[0] == 200
    status, body = await post(client, order_created("e-1", total_minor=1))
    assert status == 200
    assert body == {"applied": 0, "duplicates": 1, "results": [{"id": "e-1", "status": "duplicate"}]}
    assert await count(db, BehaviourEvent, BehaviourEvent.type == "order.created") == 1
    async with db.session() as session:
        order = (await session.exec(select(Order).where(Order.number == "BH-200001"))).one()
    assert order.total_minor == 9980


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"secret": "wrong"}, "bad_signature"),
    ({"tamper": True}, "bad_signature"),
    ({"age": 301}, "stale_timestamp"),
    ({"age": -400}, "stale_timestamp"),
])
async def test_bad_signatures_are_refused_and_change_nothing(
    client: TestClient[Any, Any], db: Database, kwargs: dict[str, Any], reason: str
) -> None:
    status, body = await post(client, order_created("e-1"), **kwargs)
    assert (status, body["error"]) == (401, reason)
    assert await count(db, ProcessedStoreEvent) == 0
    assert await count(db, Order, Order.number == "BH-200001") == 0


async def test_unsigned_request_is_refused(client: TestClient[Any, Any]) -> None:
    response = await client.post("/api/v1/events", json=order_created("e-1"))
    assert response.status == 401
    assert (await response.json())["error"] == "missing_signature"


async def test_batch_with_one_bad_event_names_it_and_applies_nothing(
    client: TestClient[Any, Any], db: Database
) -> None:
    batch = {"events": [
        order_created("b-1"),
        {"id": "b-2", "type": "cart.updated", "data": {"customer_id": "C-1001", "items": [
            {"sku": "ESP-001", "quantity": 0, "unit_price_minor": 100}]}},
        {"id": "b-3", "type": "product.viewed", "data": {"customer_id": "C-1001", "sku": "ESP-001"}},
    ]}
    status, body = await post(client, batch)
    assert status == 422
    assert body["errors"] == [{"index": 1, "field": "data.items.0.quantity",
                               "message": "Input should be greater than or equal to 1"}]
    assert await count(db, ProcessedStoreEvent) == 0
    assert await count(db, BehaviourEvent) == 0


async def test_batch_failing_while_applying_rolls_back_everything(
    client: TestClient[Any, Any], db: Database
) -> None:
    batch = {"events": [order_created("b-1"), status_changed("b-2", "paid", number="BH-999999")]}
    status, body = await post(client, batch)
    assert status == 422
    assert body["errors"] == [{"index": 1, "field": "data.number", "message": "unknown order"}]
    assert await count(db, Order, Order.number == "BH-200001") == 0
    assert await count(db, ProcessedStoreEvent) == 0


async def test_single_invalid_event_names_the_field(client: TestClient[Any, Any]) -> None:
    status, body = await post(client, status_changed("s-1", "shipped"))
    assert status == 422
    assert body["errors"][0]["index"] is None
    assert "carrier" in body["errors"][0]["message"]
    status, body = await post(client, {"id": "s-2", "type": "order.exploded", "data": {}})
    assert status == 422 and body["errors"][0]["field"] == "type"


async def test_oversized_and_malformed_bodies(client: TestClient[Any, Any], settings: Settings) -> None:
    status, body = await post(client, None, raw=b"x" * (settings.events_max_body_bytes + 10))
    assert (status, body["error"]) == (413, "payload_too_large")
    status, body = await post(client, None, raw=b"{not json")
    assert (status, body["error"]) == (400, "invalid_json")
    status, body = await post(client, {"events": []})
    assert (status, body["error"]) == (400, "invalid_body")


async def test_every_event_type_is_applied(client: TestClient[Any, Any], db: Database) -> None:
    batch = {"events": [
        {"id": "a-1", "type": "customer.upserted",
         "data": {"id": "C-9", "name": "New", "phone": "0151 99887766", "email": "n@example.com"}},
        order_created("a-2", customer="C-9"),
        status_changed("a-3", "paid"),
        status_changed("a-4", "shipped", carrier="DHL", tracking_number="00340434",
                       tracking_url="https://track.example/00340434"),
        {"id": "a-5", "type": "cart.updated", "data": {"customer_id": "C-9", "items": [
            {"sku": "ESP-001", "quantity": 1, "unit_price_minor": 4990}]}},
        {"id": "a-6", "type": "product.viewed", "data": {"customer_id": "C-9", "sku": "ESP-001"}},
        {"id": "a-7", "type": "cart.cleared", "data": {"customer_id": "C-9", "reason": "checkout"}},
        {"id": "a-8", "type": "stock.changed", "data": {"store_id": "mitte", "sku": "ESP-001",
                                                        "quantity": 7}},
    ]}
    status, body = await post(client, batch)
    assert status == 200, body
    assert body["applied"] == 8
    async with db.session() as session:
        record = await session.get(StoreCustomer, "C-9")
        assert record is not None and record.phone == "+4915199887766"
        order = (await session.exec(select(Order).where(Order.number == "BH-200001"))).one()
        assert (order.status, order.carrier, order.tracking_number) == ("shipped", "DHL", "00340434")
        steps = (await session.exec(select(ShipmentEvent.status).where(ShipmentEvent.order_id == order.id)
                                    .order_by(ShipmentEvent.id))).all()
        assert steps == ["placed", "paid", "shipped"]
        cart = await session.get(Cart, "C-9")
        assert cart is not None and cart.items == []
        stock = await session.get(Stock, ("mitte", "ESP-001"))
        assert stock is not None and stock.quantity == 7
        types = (await session.exec(select(BehaviourEvent.type).order_by(BehaviourEvent.id))).all()
    assert types == ["customer.upserted", "order.created", "order.status_changed", "order.status_changed",
                     "cart.updated", "product.viewed", "cart.cleared", "stock.changed"]
    assert await count(db, OrderItem, OrderItem.order_id == order.id) == 1


async def test_status_change_queues_the_live_card_for_a_linked_customer(
    client: TestClient[Any, Any], db: Database
) -> None:
    async with db.session() as session:
        customer = await make_customer(session, 5001, store_customer_id="C-1001")
    await post(client, {"events": [order_created("c-1"), status_changed("c-2", "out_for_delivery")]})
    async with db.session() as session:
        rows = (await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all()
        linked = (await session.exec(select(BehaviourEvent).where(
            BehaviourEvent.type == "order.status_changed"))).one()
    assert [(r.template, r.lane, r.card_key, r.edit_in_place, r.params["status"]) for r in rows] == [
        ("order.status", "transactional", "order:BH-200001", True, "placed"),
        ("order.status", "transactional", "order:BH-200001", False, "out_for_delivery"),
    ]
    assert linked.customer_id == customer.id


async def test_listeners_hear_applied_events_once(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    heard: list[AppliedEvent] = []

    async def listener(_db: Database, event: AppliedEvent) -> None:
        heard.append(event)

    async def broken(_db: Database, event: AppliedEvent) -> None:
        raise RuntimeError("listener bug")

    monkeypatch.setattr("touchpoint.events_api.hooks.on_event_applied", [broken, listener])
    view = {"id": "v-1", "type": "product.viewed", "data": {"customer_id": "C-1001", "sku": "ESP-001"}}
    assert (await post(client, view))[0] == 200
    assert (await post(client, view))[0] == 200
    assert [(e.event_id, e.type, e.payload["sku"]) for e in heard] == [("v-1", "product.viewed", "ESP-001")]
    assert heard[0].behaviour_event_id is not None
    assert on_event_applied == []


async def test_link_token_endpoint_is_signed(client: TestClient[Any, Any]) -> None:
    data = json.dumps({"customer_id": "C-1001"}).encode()
    response = await client.post("/api/v1/link-tokens", data=data,
                                 headers=signed_headers(SECRET, int(time.time()), data))
    body = await response.json()
    assert response.status == 200 and body["start_payload"].startswith("link_")
    assert len(body["start_payload"]) <= 64
    response = await client.post("/api/v1/link-tokens", data=data,
                                 headers=signed_headers("nope", int(time.time()), data))
    assert response.status == 401


async def test_a_status_delivered_late_joins_the_timeline_without_moving_the_order_back(
    client: TestClient[Any, Any], db: Database
) -> None:
    async with db.session() as session:
        await make_customer(session, 5002, store_customer_id="C-1001")
    placed = datetime(2026, 11, 20, 9, tzinfo=UTC)
    events = [
        {**order_created("t-1"), "occurred_at": placed.isoformat()},
        {**status_changed("t-2", "shipped", carrier="DHL", tracking_number="JD1"),
         "occurred_at": (placed + timedelta(hours=5)).isoformat()},
    ]
    assert (await post(client, {"events": events}))[0] == 200
    packed = {**status_changed("t-3", "packed"), "occurred_at": (placed + timedelta(hours=2)).isoformat()}
    assert (await post(client, packed))[0] == 200
    async with db.session() as session:
        order = (await session.exec(select(Order).where(Order.number == "BH-200001"))).one()
        timeline = (await session.exec(select(ShipmentEvent.status).where(ShipmentEvent.order_id == order.id)
                                       .order_by(col(ShipmentEvent.occurred_at)))).all()
        cards = (await session.exec(select(OutboxMessage.params))).all()
    assert order.status == "shipped"
    assert list(timeline) == ["placed", "packed", "shipped"]
    assert [card["status"] for card in cards] == ["placed", "shipped"]  # no card for the stale status
