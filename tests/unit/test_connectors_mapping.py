"""The connectors' pure parts: signatures, money and times, the topic → internal event mappings,
and the plan that moves an order (forward only for derived statuses)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from touchpoint.config import ConfigError, Settings, load_settings
from touchpoint.events_api.connectors import shopify, woocommerce
from touchpoint.events_api.connectors.common import (
    ConnectorError,
    OrderUpdate,
    base64_hmac,
    base64_hmac_valid,
    delivery_key,
    parse_time,
    to_minor,
    validate_events,
)
from touchpoint.events_api.connectors.http import _is_ping
from touchpoint.events_api.connectors.queue import plan_order
from touchpoint.orders.models import Order, OrderStatus

DATA = Path(__file__).parents[1] / "data" / "connectors"
SETTINGS = load_settings(_env_file=None, shopify_locations={"71234567890": "mitte"},
                         woocommerce_stock_store="mitte")
AT = datetime(2026, 11, 27, 12, tzinfo=UTC)


def fixture(platform: str, name: str) -> dict[str, Any]:
    return json.loads((DATA / platform / f"{name}.json").read_text("utf-8"))


# --- signatures and settings --------------------------------------------------------------------

def test_signature_matches_any_configured_secret() -> None:
    body = b'{"id": 1}'
    assert base64_hmac_valid(["a" * 32, "b" * 32], body, base64_hmac("b" * 32, body))
    assert not base64_hmac_valid(["a" * 32], body, base64_hmac("b" * 32, body))
    assert not base64_hmac_valid(["a" * 32], body, None)
    assert not base64_hmac_valid(["a" * 32], body, "%%% not base64")


@given(body=st.binary(min_size=1, max_size=512), position=st.integers(min_value=0))
def test_any_changed_byte_breaks_the_signature(body: bytes, position: int) -> None:
    signature = base64_hmac("s" * 32, body)
    index = position % len(body)
    changed = body[:index] + bytes([body[index] ^ 1]) + body[index + 1:]
    assert not base64_hmac_valid(["s" * 32], changed, signature)


def test_secrets_are_split_for_rotation_and_weak_ones_refused_outside_the_demo() -> None:
    old, new = "3f9a1c7e5b2d8046e1c9a7f3b5d20e84", "b7e4d19a0c3f6e2851d7a9c4e0b3f6a2d8c1e5f7"
    strong = load_settings(_env_file=None, shopify_webhook_secret=SecretStr(f"{old}, {new}"))
    assert strong.webhook_secrets("shopify") == [old, new]
    assert strong.webhook_secrets("woocommerce") == []
    weak = load_settings(_env_file=None, woocommerce_webhook_secret=SecretStr("a" * 40))  # long, guessable
    with pytest.raises(ConfigError, match="TOUCHPOINT_WOOCOMMERCE_WEBHOOK_SECRET"):
        weak.webhook_secrets("woocommerce")
    assert weak.webhook_secrets("woocommerce", demo=True) == ["a" * 40]


def test_woocommerce_completed_status_must_be_ours() -> None:
    with pytest.raises(ConfigError, match="WOOCOMMERCE_COMPLETED_STATUS"):
        load_settings(_env_file=None, woocommerce_completed_status="done")


def test_woocommerce_ping_is_recognised() -> None:
    assert _is_ping(b"webhook_id=12")
    assert not _is_ping(b"webhook_id=12&other=1")
    assert not _is_ping(b'{"webhook_id": 12}')


def test_delivery_keys_fit_the_event_id_column() -> None:
    assert delivery_key("shopify", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043") == (
        "shopify:b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    long = delivery_key("woocommerce", "x" * 200)
    assert len(long) <= 48 and long.startswith("woocommerce:h")


# --- plain values -------------------------------------------------------------------------------

@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("19.99", "EUR", 1999), ("1500", "JPY", 1500), ("1.234", "KWD", 1234), (12.5, "USD", 1250),
    ("0.00", "EUR", 0),
])
def test_amounts_become_minor_units_of_their_currency(amount: Any, currency: str, minor: int) -> None:
    assert to_minor(amount, currency, "price") == minor


@pytest.mark.parametrize("amount", ["abc", "-1.00", "NaN", None])
def test_bad_amounts_name_the_field(amount: Any) -> None:
    with pytest.raises(ConnectorError, match="price"):
        to_minor(amount, "EUR", "price")


def test_times_are_utc() -> None:
    assert parse_time("2026-11-27T10:00:00+01:00", "t") == datetime(2026, 11, 27, 9, tzinfo=UTC)
    assert parse_time("2026-11-27T10:00:00", "t", naive_is_utc=True) == datetime(2026, 11, 27, 10, tzinfo=UTC)
    with pytest.raises(ConnectorError, match="time zone"):
        parse_time("2026-11-27T10:00:00", "t")


# --- Shopify ------------------------------------------------------------------------------------

def test_shopify_order_maps_name_customer_items_and_contact() -> None:
    translation = shopify.translate("orders/create", fixture("shopify", "orders_create"), SETTINGS)
    upsert, = translation.events
    assert upsert["data"] == {"id": "7012345678901", "name": "Anna Schmidt", "phone": "+4915112345671",
                              "email": "anna.shop@example.com", "marketing_consent": True}
    update = translation.order
    assert update is not None and update.created is not None
    assert (update.number, update.status) == ("#1001", OrderStatus.PLACED)
    assert update.created["total_minor"] == 37480
    assert [(i["sku"], i["unit_price_minor"]) for i in update.created["items"]] == [
        ("ESP-001", 34900), ("CON-001", 1290)]
    assert translation.resource == ("order", "5512345678901")
    assert translation.version == datetime(2026, 11, 27, 9, tzinfo=UTC)


@pytest.mark.parametrize(("changes", "status"), [
    ({"financial_status": "paid"}, OrderStatus.PAID),
    ({"financial_status": "partially_refunded"}, OrderStatus.PAID),
    ({"financial_status": "refunded"}, OrderStatus.REFUNDED),
    ({"cancelled_at": "2026-11-27T12:00:00+01:00"}, OrderStatus.CANCELLED),
    ({"fulfillment_status": "fulfilled"}, OrderStatus.SHIPPED),
    ({"fulfillments": [{"status": "success", "shipment_status": "delivered"}]}, OrderStatus.DELIVERED),
    ({"fulfillments": [{"status": "cancelled", "shipment_status": "delivered"}]}, OrderStatus.PLACED),
])
def test_shopify_order_status_is_read_off_payment_and_fulfilment(changes: dict[str, Any],
                                                                   status: OrderStatus) -> None:
    assert shopify.order_status({**fixture("shopify", "orders_create"), **changes})[0] == status


@pytest.mark.parametrize(("shipment", "status"), [
    (None, OrderStatus.SHIPPED), ("in_transit", OrderStatus.SHIPPED), ("confirmed", OrderStatus.SHIPPED),
    ("out_for_delivery", OrderStatus.OUT_FOR_DELIVERY), ("delivered", OrderStatus.DELIVERED),
    ("attempted_delivery", OrderStatus.DELIVERY_PROBLEM), ("failure", OrderStatus.DELIVERY_PROBLEM),
    ("ready_for_pickup", OrderStatus.READY_FOR_PICKUP),
])
def test_shopify_shipment_status(shipment: str | None, status: OrderStatus) -> None:
    payload = {**fixture("shopify", "fulfillments_create"), "shipment_status": shipment}
    update = shopify.translate("fulfillments/update", payload, SETTINGS).order
    assert update is not None and (update.status, update.number, update.carrier) == (status, "#1001", "DHL")


def test_shopify_sku_less_lines_and_odd_skus_still_map() -> None:
    payload = fixture("shopify", "orders_create")
    payload["line_items"][0]["sku"] = ""
    payload["line_items"][1]["sku"] = "CON 001/1kg"
    created = shopify.translate("orders/create", payload, SETTINGS).order.created  # type: ignore[union-attr]
    assert [i["sku"] for i in created["items"]] == ["shopify-variant-44112345678901", "CON-001-1kg"]


def test_shopify_pickup_order_at_a_mapped_location() -> None:
    payload = fixture("shopify", "orders_create")
    payload["location_id"] = 71234567890
    payload["shipping_lines"] = [{"code": "Pickup", "title": "Pick up in store", "source": "shopify"}]
    created = shopify.translate("orders/create", payload, SETTINGS).order.created  # type: ignore[union-attr]
    assert (created["delivery_method"], created["pickup_store_id"], created["delivery_address"]) == (
        "pickup", "mitte", None)


def test_shopify_products_and_inventory() -> None:
    product = shopify.translate("products/update", fixture("shopify", "products_update"), SETTINGS)
    assert [(p.sku, str(p.price), p.active) for p in product.products] == [("ESP-001", "329.00", True)]
    assert product.refs == {("inventory_item", "49112345678901"): "ESP-001"}
    level = shopify.translate("inventory_levels/update", fixture("shopify", "inventory_levels_update"),
                              SETTINGS)
    assert [(s.store_id, s.quantity, s.inventory_item) for s in level.stock] == [
        ("mitte", 0, "49112345678901")]
    negative = {**fixture("shopify", "inventory_levels_update"), "available": -3}
    assert shopify.translate("inventory_levels/update", negative, SETTINGS).stock[0].quantity == 0


def test_shopify_malformed_payloads_name_the_field() -> None:
    order, customer = fixture("shopify", "orders_create"), fixture("shopify", "customers_update")
    with pytest.raises(ConnectorError, match=r"^name"):
        shopify.translate("orders/create", {**order, "name": None}, SETTINGS)
    with pytest.raises(ConnectorError, match="line_items"):
        shopify.translate("orders/create", {**order, "line_items": "x"}, SETTINGS)
    with pytest.raises(ConnectorError, match="updated_at"):
        shopify.translate("customers/update", {**customer, "updated_at": 5}, SETTINGS)


def test_mapped_events_pass_the_events_api_validation() -> None:
    translation = shopify.translate("orders/create", fixture("shopify", "orders_create"), SETTINGS)
    assert translation.order is not None
    events = validate_events(translation.events + plan_order(None, translation.order), "shopify:e1", "DE")
    assert [(e.id, e.type) for e in events] == [("shopify:e1.0", "customer.upserted"),
                                                ("shopify:e1.1", "order.created")]


# --- the order plan -----------------------------------------------------------------------------

def _order(status: str, **fields: Any) -> Order:
    return Order(number="#1001", status=status, total_minor=37480, created_at=AT, updated_at=AT, **fields)


def test_an_unknown_order_is_created_at_its_base_status_then_moved() -> None:
    update = OrderUpdate(external_id="1", number="#1001", status=OrderStatus.SHIPPED, carrier="DHL",
                         created={"number": "#1001", "status": "paid"})
    assert [(e["type"], e["data"]["status"]) for e in plan_order(None, update)] == [
        ("order.created", "paid"), ("order.status_changed", "shipped")]
    assert plan_order(None, OrderUpdate(external_id="1", status=OrderStatus.SHIPPED)) == []


@pytest.mark.parametrize(("current", "derived", "expected"), [
    ("paid", OrderStatus.SHIPPED, "shipped"),
    ("delivered", OrderStatus.SHIPPED, None),  # an order payload lagging its fulfilment
    ("out_for_delivery", OrderStatus.DELIVERY_PROBLEM, "delivery_problem"),
    ("delivered", OrderStatus.REFUNDED, "refunded"),
    ("paid", OrderStatus.PAID, None),
])
def test_derived_statuses_only_move_forward(current: str, derived: OrderStatus,
                                            expected: str | None) -> None:
    planned = plan_order(_order(current), OrderUpdate(external_id="1", status=derived))
    assert [e["data"]["status"] for e in planned] == ([expected] if expected else [])


def test_authoritative_statuses_move_as_they_say_and_new_tracking_counts() -> None:
    back = plan_order(_order("cancelled"),
                      OrderUpdate(external_id="1", status=OrderStatus.PAID, derived=False))
    assert [e["data"]["status"] for e in back] == ["paid"]
    tracked = plan_order(_order("shipped", carrier="DHL"),
                         OrderUpdate(external_id="1", status=OrderStatus.SHIPPED, tracking_number="0034"))
    assert [e["data"]["tracking_number"] for e in tracked] == ["0034"]


def test_refunds_whole_or_partial() -> None:
    whole = plan_order(_order("delivered"), OrderUpdate(external_id="1", refund_minor=37480))
    part = plan_order(_order("delivered"), OrderUpdate(external_id="1", refund_minor=100))
    assert [(e["data"]["status"], e["data"]["note"]) for e in whole + part] == [
        ("refunded", "refund"), ("delivered", "partial refund")]


# --- WooCommerce --------------------------------------------------------------------------------

@pytest.mark.parametrize(("woo", "ours"), [
    ("pending", "placed"), ("processing", "paid"), ("on-hold", "placed"), ("completed", "shipped"),
    ("cancelled", "cancelled"), ("refunded", "refunded"), ("failed", "cancelled"), ("checkout-draft", None),
])
def test_woocommerce_statuses(woo: str, ours: str | None) -> None:
    status, _note = woocommerce.order_status(woo, SETTINGS)
    assert (status.value if status else None) == ours


def test_woocommerce_completed_can_mean_delivered() -> None:
    settings: Settings = SETTINGS.model_copy(update={"woocommerce_completed_status": "delivered"})
    assert woocommerce.order_status("completed", settings)[0] == OrderStatus.DELIVERED


def test_woocommerce_order_maps_number_customer_and_utc_version() -> None:
    translation = woocommerce.translate("order.created", fixture("woocommerce", "order_created"), SETTINGS)
    update = translation.order
    assert update is not None and update.created is not None and not update.derived
    assert (update.number, update.created["customer_id"]) == ("727", "26")
    assert update.created["total_minor"] == 130390
    assert translation.version == datetime(2026, 11, 27, 10, 28, 8, tzinfo=UTC)
    guest = copy.deepcopy(fixture("woocommerce", "order_created"))
    guest["customer_id"] = 0
    translated = woocommerce.translate("order.created", guest, SETTINGS)
    assert translated.guest_contact == ("+4917623456782", "olga.woo@example.com")
