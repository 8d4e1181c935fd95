"""Bad input to the events API is a clear 4xx that changes nothing, on SQLite and PostgreSQL:
implausible event times, control characters, 64-bit prices, deep JSON, malformed signature headers
(the "Hardening" issue, item 11); guest look-up proofs with non-ASCII e-mails (item 12)."""

from __future__ import annotations

import json
import logging
import time
import unicodedata
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlmodel import select

from tests.factories import make_customer
from tests.integration.test_events_api_http import SECRET, count, order_created, post, status_changed
from touchpoint.config import Settings, load_settings
from touchpoint.db import Database
from touchpoint.events_api.app import create_events_app
from touchpoint.events_api.models import ProcessedStoreEvent
from touchpoint.events_api.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from touchpoint.orders.models import Cart, Order, OrderItem, ShipmentEvent
from touchpoint.orders.service import guest_lookup
from touchpoint.seed.demo import seed_demo


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(_env_file=None, database_url=database_url, events_secret=SecretStr(SECRET))


@pytest.fixture
async def client(settings: Settings, db: Database) -> AsyncIterator[TestClient[Any, Any]]:
    await seed_demo(db)
    async with TestClient(TestServer(create_events_app(settings, db))) as test_client:
        yield test_client


@pytest.mark.parametrize(("occurred_at", "message"), [
    ("9999-12-31T23:59:59+14:00", "is more than a day in the future"),
    ("0001-01-01T00:00:00+14:00", "is out of range"),
    ("1999-12-31T23:59:59Z", "is before 2000"),
])
async def test_implausible_event_times_are_refused(
    client: TestClient[Any, Any], db: Database, occurred_at: str, message: str
) -> None:
    assert (await post(client, order_created("o-1")))[0] == 200
    status, body = await post(client, {**status_changed("s-1", "delivered"), "occurred_at": occurred_at})
    assert status == 422, body
    assert body["errors"] == [{"index": None, "field": "occurred_at", "message": message}]
    async with db.session() as session:
        order = (await session.exec(select(Order).where(Order.number == "BH-200001"))).one()
    assert order.status == "placed" and order.delivered_at is None
    assert await count(db, ShipmentEvent, ShipmentEvent.order_id == order.id,
                       ShipmentEvent.status == "delivered") == 0
    # A time within a day ahead (a store clock a little fast) is still fine.
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    status, body = await post(client, {**status_changed("s-2", "delivered"), "occurred_at": soon})
    assert status == 200, body


@pytest.mark.parametrize("event", [
    order_created("n-1", delivery_address="Main St\u00001"),
    order_created("n-2", items=[{"sku": "ESP-001", "name": {"en": "Grin\u0000der"}, "quantity": 1,
                                 "unit_price_minor": 100}]),
    order_created("n-3", items=[{"sku": "ESP-001", "name": {"e\u0000n": "Grinder"}, "quantity": 1,
                                 "unit_price_minor": 100}]),
    {"id": "n-4", "type": "customer.upserted", "data": {"id": "C-77", "name": "Ann\u0000"}},
    {"id": "n-5", "type": "customer.upserted", "data": {"id": "C-77", "email": "a\u0000@b.de"}},
    {"id": "n-6", "type": "customer.upserted", "data": {"id": "C-77", "name": "Ann\u001b[31m"}},
    {"events": [order_created("n-7"), status_changed("n-8", "cancelled", note="sorry\u0000")]},
])
async def test_control_characters_are_refused_at_the_schema(
    client: TestClient[Any, Any], db: Database, event: dict[str, Any]
) -> None:
    status, body = await post(client, event)
    assert status == 422, body
    assert body["error"] == "invalid_event"
    assert await count(db, ProcessedStoreEvent) == 0
    assert await count(db, Order, Order.number == "BH-200001") == 0


async def test_line_breaks_in_free_text_are_still_accepted(client: TestClient[Any, Any]) -> None:
    status, body = await post(client, order_created("t-1", delivery_address="Main St 1\nFlat 2"))
    assert status == 200, body


async def test_prices_beyond_32_bits_are_stored(client: TestClient[Any, Any], db: Database) -> None:
    big = 2**31 + 7
    event = order_created("m-1", items=[{"sku": "ESP-001", "quantity": 3, "unit_price_minor": big}])
    cart = {"id": "m-2", "type": "cart.updated", "data": {
        "customer_id": "C-1001", "items": [{"sku": "ESP-001", "quantity": 1, "unit_price_minor": 10**12}]}}
    status, body = await post(client, {"events": [event, cart]})
    assert status == 200, body
    async with db.session() as session:
        order = (await session.exec(select(Order).where(Order.number == "BH-200001"))).one()
        item = (await session.exec(select(OrderItem).where(OrderItem.order_id == order.id))).one()
        stored_cart = await session.get(Cart, "C-1001")
    assert (order.total_minor, item.unit_price_minor) == (3 * big, big)
    assert stored_cart is not None and stored_cart.total_minor == 10**12


async def signed_post(client: TestClient[Any, Any], data: bytes, headers: dict[str, str]
                      ) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/v1/events", data=data,
                                 headers={"Content-Type": "application/json", **headers})
    return response.status, await response.json()


async def test_deeply_nested_json_is_a_400(client: TestClient[Any, Any], db: Database) -> None:
    for data in (b"[" * 1000 + b"]" * 1000, b'{"a":' * 100 + b"1" + b"}" * 100,
                 json.dumps({"events": [order_created("d-1")]}).encode()[:-1] + b"," + b"[" * 50_000):
        ts = str(int(time.time()))
        status, body = await signed_post(client, data, {TIMESTAMP_HEADER: ts,
                                                        SIGNATURE_HEADER: sign(SECRET, ts, data)})
        assert (status, body["error"]) == (400, "invalid_json")
    assert await count(db, ProcessedStoreEvent) == 0


@pytest.mark.parametrize(("timestamp", "signature", "reason"), [
    ("9" * 309, "sha256=" + "0" * 64, "bad_timestamp"),
    ("1" * 5000, "sha256=" + "0" * 64, "bad_timestamp"),
    ("-1", "sha256=" + "0" * 64, "bad_timestamp"),
    ("1_700_000_000", "sha256=" + "0" * 64, "bad_timestamp"),
    ("١٧٠٠٠٠٠٠٠٠", "sha256=" + "0" * 64, "bad_timestamp"),  # Arabic-Indic digits: int() takes them
    (None, "sha256=ü" + "0" * 63, "bad_signature"),  # non-ASCII: compare_digest raised TypeError
    (None, "sha256=" + "0" * 6400, "bad_signature"),
    (None, "md5=abc", "bad_signature"),
])
async def test_malformed_signature_headers_are_refused_without_a_traceback(
    client: TestClient[Any, Any], db: Database, caplog: pytest.LogCaptureFixture,
    timestamp: str | None, signature: str, reason: str,
) -> None:
    data = json.dumps(order_created("h-1")).encode()
    headers = {TIMESTAMP_HEADER: timestamp or str(int(time.time())), SIGNATURE_HEADER: signature}
    with caplog.at_level(logging.WARNING):
        status, body = await signed_post(client, data, headers)
    assert (status, body["error"]) == (401, reason)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert await count(db, ProcessedStoreEvent) == 0


async def test_an_uppercase_hex_signature_is_accepted(client: TestClient[Any, Any]) -> None:
    data = json.dumps(order_created("u-1")).encode()
    ts = str(int(time.time()))
    signature = sign(SECRET, ts, data)
    status, body = await signed_post(client, data, {TIMESTAMP_HEADER: ts,
                                                    SIGNATURE_HEADER: "sha256=" + signature[7:].upper()})
    assert status == 200, body


@pytest.mark.parametrize("proof", [
    "jürgen@exämple.com",
    "JÜRGEN@EXÄMPLE.COM",
    unicodedata.normalize("NFD", "Jürgen@Exämple.com"),  # ü typed as u + combining diaeresis
    "  jürgen@exämple.com ",
])
async def test_guest_lookup_by_a_non_ascii_email(
    client: TestClient[Any, Any], db: Database, settings: Settings, proof: str
) -> None:
    status, body = await post(client, order_created("g-1", customer=None, contact_phone=None,
                                                    contact_email="jürgen@exämple.com"))
    assert status == 200, body
    async with db.session() as session:
        customer = await make_customer(session, 9001)
        view = await guest_lookup(session, settings, customer, "BH-200001", proof)
        assert view is not None
        assert await guest_lookup(session, settings, customer, "BH-200001", "jurgen@example.com") is None


async def test_guest_lookup_by_phone_digits_in_any_script(
    client: TestClient[Any, Any], db: Database, settings: Settings
) -> None:
    assert (await post(client, order_created("g-2")))[0] == 200  # contact phone ends in 5671
    async with db.session() as session:
        customer = await make_customer(session, 9002)
        for proof in ("5671", "٥٦٧١", "５６７１"):
            assert await guest_lookup(session, settings, customer, "BH-200001", proof) is not None, proof
        assert await guest_lookup(session, settings, customer, "BH-200001", "5672") is None
