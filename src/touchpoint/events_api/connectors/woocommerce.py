"""WooCommerce webhook payloads → the internal store events (pure functions; no database, no clock).

Headers: X-WC-Webhook-Signature (base64 HMAC-SHA256 of the raw body), X-WC-Webhook-Topic,
X-WC-Webhook-Delivery-ID. Payloads are the REST API v3 resources (order, customer, product).
Times are the ``*_gmt`` fields (UTC without an offset).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from touchpoint.config import Settings
from touchpoint.events_api.connectors.common import (
    ConnectorError,
    OrderUpdate,
    ProductListing,
    StockLevel,
    Translation,
    amount,
    clean_sku,
    email,
    event,
    full_name,
    items_of,
    mapping,
    parse_time,
    phone,
    platform_id,
    text,
    to_minor,
    url,
)
from touchpoint.orders.models import OrderStatus

PLATFORM = "woocommerce"
SIGNATURE_HEADER = "X-WC-Webhook-Signature"
TOPIC_HEADER = "X-WC-Webhook-Topic"
ID_HEADERS = ("X-WC-Webhook-Delivery-ID",)
TRACKING_META = "_wc_shipment_tracking_items"  # the Shipment Tracking extension


def order_status(status: Any, settings: Settings) -> tuple[OrderStatus | None, str | None]:
    """WooCommerce's order status → ours and a timeline note; (None, None) for a status we leave
    alone (a plugin's own, a draft)."""
    match status:
        case "pending" | "on-hold":
            return OrderStatus.PLACED, "awaiting payment" if status == "pending" else "on hold"
        case "processing":
            return OrderStatus.PAID, None
        case "completed":
            return OrderStatus(settings.woocommerce_completed_status), None
        case "cancelled":
            return OrderStatus.CANCELLED, None
        case "refunded":
            return OrderStatus.REFUNDED, None
        case "failed":
            return OrderStatus.CANCELLED, "payment failed"
    return None, None


def _version(payload: dict[str, Any]) -> Any:
    return parse_time(payload.get("date_modified_gmt") or payload.get("date_created_gmt"),
                      "date_modified_gmt", naive_is_utc=True)


def _currency(payload: dict[str, Any]) -> str:
    currency = payload.get("currency") or "EUR"
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise ConnectorError("currency", "is not an ISO 4217 code")
    return currency.upper()


def _tracking(order: dict[str, Any]) -> dict[str, Any]:
    for meta in items_of(order.get("meta_data"), "meta_data"):
        if meta.get("key") == TRACKING_META and isinstance(meta.get("value"), list) and meta["value"]:
            latest = meta["value"][-1]
            if isinstance(latest, dict):
                return {
                    "carrier": text(latest.get("tracking_provider")
                                    or latest.get("custom_tracking_provider"), 64),
                    "tracking_number": text(latest.get("tracking_number"), 64),
                    "tracking_url": url(latest.get("custom_tracking_link")),
                }
    return {}


def _address(address: Any) -> str | None:
    if not isinstance(address, dict):
        return None
    parts = [address.get(k) for k in ("address_1", "address_2", "postcode", "city", "country")]
    return text(", ".join(p.strip() for p in parts if isinstance(p, str) and p.strip()), 500)


def _items(order: dict[str, Any], currency: str) -> list[dict[str, Any]]:
    items = []
    for i, line in enumerate(items_of(order.get("line_items"), "line_items")):
        product = line.get("variation_id") or line.get("product_id")
        sku = clean_sku(line.get("sku"), f"woo-product-{product}" if product else None)
        if sku is None:
            raise ConnectorError(f"line_items.{i}.sku", "is missing")
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or quantity < 1:
            continue
        # "price" is the unit price after discounts, before tax (a number); "total" is the line's.
        price = line.get("price")
        if price is None:
            price = amount(line.get("total", "0"), f"line_items.{i}.total") / quantity
        items.append({"sku": sku, "quantity": quantity, "name": text(line.get("name"), 500) or sku,
                      "unit_price_minor": to_minor(price, currency, f"line_items.{i}.price")})
    return items


def map_order(order: dict[str, Any], settings: Settings) -> Translation:
    """order.created and order.updated: the whole order, its status WooCommerce's own."""
    external_id = platform_id(order.get("id"), "id")
    number = text(str(order.get("number") or order.get("id")), 32)
    if number is None:
        raise ConnectorError("number", "is missing")
    currency = _currency(order)
    version = _version(order)
    billing = order.get("billing") if isinstance(order.get("billing"), dict) else {}
    shipping = order.get("shipping") if isinstance(order.get("shipping"), dict) else {}
    contact_phone = phone(billing.get("phone") or shipping.get("phone"), settings.orders_phone_region)
    contact_email = email(billing.get("email"))
    status, note = order_status(order.get("status"), settings)
    items = _items(order, currency)
    if not items:
        raise ConnectorError("line_items", "has no item")
    translation = Translation(resource=("order", external_id), version=version)
    customer_id = None
    if order.get("customer_id") not in (None, 0, "0"):
        customer_id = platform_id(order["customer_id"], "customer_id")
    else:
        translation.guest_contact = (contact_phone, contact_email)
    pickup = any(line.get("method_id") == "local_pickup" or line.get("method_id") == "pickup_location"
                 for line in items_of(order.get("shipping_lines"), "shipping_lines"))
    base = status if status in (OrderStatus.PLACED, OrderStatus.PAID) else OrderStatus.PLACED
    translation.order = OrderUpdate(
        external_id=external_id, number=number, status=status, derived=False, note=note,
        occurred_at=version, created={
            "number": number, "customer_id": customer_id, "status": base.value, "items": items,
            "total_minor": to_minor(order.get("total", "0"), currency, "total"), "currency": currency,
            # A pickup order needs its store; WooCommerce does not say which, so it stays "delivery"
            # with no address.
            "delivery_method": "delivery", "delivery_address": None if pickup else _address(shipping),
            "contact_phone": contact_phone, "contact_email": contact_email,
        }, **_tracking(order))
    translation.refs[("order", external_id)] = number
    return translation


def map_customer(customer: dict[str, Any], settings: Settings) -> Translation:
    """customer.created and customer.updated."""
    customer_id = platform_id(customer.get("id"), "id")
    billing = customer.get("billing") if isinstance(customer.get("billing"), dict) else {}
    upsert = event("customer.upserted", {
        "id": customer_id,
        "name": full_name(customer.get("first_name") or billing.get("first_name"),
                          customer.get("last_name") or billing.get("last_name")),
        "phone": phone(billing.get("phone"), settings.orders_phone_region),
        "email": email(customer.get("email") or billing.get("email")),
    }, _version(customer))
    return Translation(resource=("customer", customer_id), version=_version(customer), events=[upsert])


def map_product(product: dict[str, Any], settings: Settings) -> Translation:
    """product.updated: price and availability of a SKU we carry; its stock for the configured store."""
    external_id = platform_id(product.get("id"), "id")
    translation = Translation(resource=("product", external_id), version=_version(product))
    sku = clean_sku(product.get("sku"))
    if sku is None:
        translation.skipped = "product_without_sku"
        return translation
    price = product.get("price")
    translation.products.append(ProductListing(
        sku=sku, price=amount(price, "price") if price not in (None, "") else None,
        active=product.get("status", "publish") == "publish"))
    quantity = product.get("stock_quantity")
    if (settings.woocommerce_stock_store and product.get("manage_stock") is True
            and isinstance(quantity, int) and not isinstance(quantity, bool)):
        translation.stock.append(StockLevel(settings.woocommerce_stock_store, max(quantity, 0), sku=sku))
    return translation


TOPICS: dict[str, Callable[[dict[str, Any], Settings], Translation]] = {
    "order.created": map_order, "order.updated": map_order,
    "customer.created": map_customer, "customer.updated": map_customer,
    "product.updated": map_product, "product.created": map_product,
}


def translate(topic: str, payload: Any, settings: Settings) -> Translation:
    return TOPICS[topic](mapping(payload, "body"), settings)
