"""Shopify webhook payloads → the internal store events (pure functions; no database, no clock).

Headers: X-Shopify-Hmac-Sha256 (base64 HMAC-SHA256 of the raw body), X-Shopify-Topic,
X-Shopify-Event-Id (or X-Shopify-Webhook-Id) for idempotency. Payloads are the REST Admin API's
resources (order, fulfillment, refund, checkout, customer, product, inventory level).
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

PLATFORM = "shopify"
SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
TOPIC_HEADER = "X-Shopify-Topic"
ID_HEADERS = ("X-Shopify-Event-Id", "X-Shopify-Webhook-Id")

# A fulfilment's shipment_status (the carrier's tracking) → our status.
SHIPMENT_STATUSES = {
    "label_printed": OrderStatus.SHIPPED, "label_purchased": OrderStatus.SHIPPED,
    "confirmed": OrderStatus.SHIPPED, "in_transit": OrderStatus.SHIPPED,
    "out_for_delivery": OrderStatus.OUT_FOR_DELIVERY, "delivered": OrderStatus.DELIVERED,
    "attempted_delivery": OrderStatus.DELIVERY_PROBLEM, "failure": OrderStatus.DELIVERY_PROBLEM,
    "ready_for_pickup": OrderStatus.READY_FOR_PICKUP,
}
PAID = ("paid", "partially_refunded")


def _currency(payload: dict[str, Any]) -> str:
    currency = payload.get("currency") or payload.get("presentment_currency") or "EUR"
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise ConnectorError("currency", "is not an ISO 4217 code")
    return currency.upper()


def _line_items(payload: dict[str, Any], currency: str, *, for_cart: bool = False) -> list[dict[str, Any]]:
    items = []
    for i, line in enumerate(items_of(payload.get("line_items"), "line_items")):
        variant = line.get("variant_id") or line.get("id")
        sku = clean_sku(line.get("sku"), f"shopify-variant-{variant}" if variant else None)
        if sku is None:
            raise ConnectorError(f"line_items.{i}.sku", "is missing")
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or quantity < 1:
            continue  # removed lines (quantity 0) are not part of the order or cart
        price = to_minor(line.get("price", "0"), currency, f"line_items.{i}.price")
        item: dict[str, Any] = {"sku": sku, "quantity": quantity, "unit_price_minor": price}
        if not for_cart:
            item["name"] = text(line.get("name") or line.get("title"), 500) or sku
        items.append(item)
    return items


def _customer_event(customer: dict[str, Any], settings: Settings, *, fallback_phone: Any = None,
                    fallback_email: Any = None) -> dict[str, Any]:
    """customer.upserted from a Shopify customer (phone to E.164; the e-mail marketing state)."""
    consent = customer.get("email_marketing_consent")
    state = consent.get("state") if isinstance(consent, dict) else None
    marketing = {"subscribed": True, "unsubscribed": False}.get(state or "")
    if marketing is None and isinstance(customer.get("accepts_marketing"), bool) and state is None:
        marketing = customer["accepts_marketing"]  # older API versions
    address = customer.get("default_address") if isinstance(customer.get("default_address"), dict) else {}
    customer_id = platform_id(customer.get("id"), "customer.id")
    return event("customer.upserted", {
        "id": customer_id,
        "name": full_name(customer.get("first_name"), customer.get("last_name")),
        "phone": phone(customer.get("phone") or fallback_phone or address.get("phone"),
                       settings.orders_phone_region),
        "email": email(customer.get("email") or fallback_email),
        "marketing_consent": marketing,
    }, parse_time(customer.get("updated_at"), "customer.updated_at"), resource=("customer", customer_id))


def _address(address: Any) -> str | None:
    if not isinstance(address, dict):
        return None
    parts = [address.get(k) for k in ("address1", "address2", "zip", "city", "country_code")]
    return text(", ".join(p.strip() for p in parts if isinstance(p, str) and p.strip()), 500)


def _pickup_store(order: dict[str, Any], settings: Settings) -> str | None:
    """A local-pickup order's store: its shipping line says pickup and its location is mapped."""
    lines = items_of(order.get("shipping_lines"), "shipping_lines")
    pickup = any("pickup" in f"{line.get('code') or ''} {line.get('title') or ''} "
                 f"{line.get('source') or ''}".lower().replace(" ", "").replace("-", "").replace("_", "")
                 for line in lines)
    location = order.get("location_id")
    return settings.shopify_locations.get(str(location)) if pickup and location is not None else None


def _tracking(fulfillment: dict[str, Any]) -> dict[str, Any]:
    numbers = fulfillment.get("tracking_numbers")
    urls = fulfillment.get("tracking_urls")
    numbers = numbers if isinstance(numbers, list) else []
    urls = urls if isinstance(urls, list) else []
    return {
        "carrier": text(fulfillment.get("tracking_company"), 64),
        "tracking_number": text(fulfillment.get("tracking_number") or (numbers[0] if numbers else None), 64),
        "tracking_url": url(fulfillment.get("tracking_url") or (urls[0] if urls else None)),
    }


def fulfillment_status(fulfillment: dict[str, Any]) -> OrderStatus | None:
    """A fulfilment's state as our status: None when it does not count (cancelled, failed, open)."""
    if fulfillment.get("status") not in ("success", None):
        return None
    shipment = fulfillment.get("shipment_status")
    return SHIPMENT_STATUSES.get(shipment, OrderStatus.SHIPPED) if shipment else OrderStatus.SHIPPED


def order_status(order: dict[str, Any]) -> tuple[OrderStatus, dict[str, Any]]:
    """The order's status read off its cancellation, payment and fulfilments, and the tracking of
    its latest counting fulfilment."""
    if order.get("cancelled_at"):
        return OrderStatus.CANCELLED, {}
    if order.get("financial_status") == "refunded":
        return OrderStatus.REFUNDED, {}
    fulfillments = items_of(order.get("fulfillments"), "fulfillments")
    counting = [(f, s) for f in fulfillments if (s := fulfillment_status(f)) is not None]
    if counting:
        latest, status = counting[-1]
        return status, _tracking(latest)
    if order.get("fulfillment_status") in ("fulfilled", "partial"):
        return OrderStatus.SHIPPED, {}
    if order.get("financial_status") in PAID:
        return OrderStatus.PAID, {}
    return OrderStatus.PLACED, {}


def map_order(order: dict[str, Any], settings: Settings) -> Translation:
    """orders/create, updated, paid, cancelled, fulfilled, partially_fulfilled: the whole order."""
    external_id = platform_id(order.get("id"), "id")
    number = text(order.get("name"), 32)
    if number is None:
        raise ConnectorError("name", "is missing")
    currency = _currency(order)
    updated_at = parse_time(order.get("updated_at"), "updated_at")
    created_at = parse_time(order.get("created_at"), "created_at")
    customer = order.get("customer") if isinstance(order.get("customer"), dict) else None
    shipping = order.get("shipping_address")
    billing = order.get("billing_address")
    phones = (order.get("phone"), customer and customer.get("phone"),
              isinstance(shipping, dict) and shipping.get("phone"),
              isinstance(billing, dict) and billing.get("phone"))
    contact_phone = phone(next((p for p in phones if p), None), settings.orders_phone_region)
    contact_email = email(order.get("email") or order.get("contact_email") or (customer or {}).get("email"))
    pickup_store = _pickup_store(order, settings)
    items = _line_items(order, currency)
    if not items:
        raise ConnectorError("line_items", "has no item")
    status, tracking = order_status(order)
    base = OrderStatus.PAID if order.get("financial_status") in PAID else OrderStatus.PLACED
    translation = Translation(resource=("order", external_id), version=updated_at)
    customer_id = None
    if customer and customer.get("id") is not None:
        upsert = _customer_event(customer, settings, fallback_phone=contact_phone,
                                 fallback_email=contact_email)
        customer_id = upsert["data"]["id"]
        translation.events.append(upsert)
    else:
        translation.guest_contact = (contact_phone, contact_email)
    created = {
        "number": number, "customer_id": customer_id, "status": base.value, "items": items,
        "total_minor": to_minor(order.get("total_price", "0"), currency, "total_price"),
        "currency": currency, "delivery_method": "pickup" if pickup_store else "delivery",
        "delivery_address": None if pickup_store else _address(shipping),
        "pickup_store_id": pickup_store, "contact_phone": contact_phone, "contact_email": contact_email,
    }
    note = "partially fulfilled" if order.get("fulfillment_status") == "partial" else None
    translation.order = OrderUpdate(
        external_id=external_id, number=number, created=created, status=status, derived=True,
        note=note, occurred_at=updated_at or created_at, **tracking,
    )
    translation.refs[("order", external_id)] = number
    return translation


def map_fulfillment(fulfillment: dict[str, Any], _settings: Settings) -> Translation:
    """fulfillments/create and fulfillments/update: carrier, tracking and the shipment's status."""
    external_id = platform_id(fulfillment.get("id"), "id")
    order_id = platform_id(fulfillment.get("order_id"), "order_id")
    updated_at = parse_time(fulfillment.get("updated_at"), "updated_at")
    translation = Translation(resource=("fulfillment", external_id), version=updated_at)
    status = fulfillment_status(fulfillment)
    if status is None:
        translation.skipped = "fulfillment_not_counting"
        return translation
    name = text(fulfillment.get("name"), 40)  # "#1001.1": the order's name and the fulfilment's place
    number = name.rsplit(".", 1)[0] if name and "." in name else None
    translation.order = OrderUpdate(external_id=order_id, number=number, status=status, derived=True,
                                    occurred_at=updated_at, **_tracking(fulfillment))
    return translation


def map_refund(refund: dict[str, Any], settings: Settings) -> Translation:
    """refunds/create: the successful refund transactions' total."""
    external_id = platform_id(refund.get("id"), "id")
    order_id = platform_id(refund.get("order_id"), "order_id")
    at = parse_time(refund.get("processed_at") or refund.get("created_at"), "created_at")
    total = 0
    for i, tx in enumerate(items_of(refund.get("transactions"), "transactions")):
        if tx.get("kind") == "refund" and tx.get("status") in ("success", None):
            total += to_minor(tx.get("amount", "0"), _currency(tx) if tx.get("currency") else "EUR",
                              f"transactions.{i}.amount")
    translation = Translation(resource=("refund", external_id), version=at)
    if total == 0:
        translation.skipped = "refund_without_money"
        return translation
    translation.order = OrderUpdate(external_id=order_id, refund_minor=total, occurred_at=at,
                                    note="refund")
    return translation


def map_checkout(checkout: dict[str, Any], settings: Settings) -> Translation:
    """checkouts/create and checkouts/update: the customer's cart (abandoned-cart journeys)."""
    key = platform_id(checkout.get("token") or checkout.get("id"), "token")
    updated_at = parse_time(checkout.get("updated_at"), "updated_at")
    translation = Translation(resource=("checkout", key), version=updated_at)
    customer = checkout.get("customer") if isinstance(checkout.get("customer"), dict) else None
    if not customer or customer.get("id") is None:
        translation.skipped = "guest_checkout"  # nobody to remind: no store customer to link a chat to
        return translation
    customer_id = platform_id(customer.get("id"), "customer.id")
    if checkout.get("completed_at"):
        translation.events.append(event("cart.cleared", {"customer_id": customer_id, "reason": "checkout"},
                                        updated_at))
        return translation
    currency = _currency(checkout)
    items = _line_items(checkout, currency, for_cart=True)
    translation.events.append(event("cart.updated", {
        "customer_id": customer_id, "items": items, "currency": currency,
        "total_minor": to_minor(checkout.get("total_price", "0"), currency, "total_price"),
        "cart_url": url(checkout.get("abandoned_checkout_url")),
    }, updated_at))
    return translation


def map_customer(customer: dict[str, Any], settings: Settings) -> Translation:
    upsert = _customer_event(customer, settings)
    return Translation(resource=("customer", upsert["data"]["id"]),
                       version=parse_time(customer.get("updated_at"), "updated_at"), events=[upsert])


def map_product(product: dict[str, Any], _settings: Settings) -> Translation:
    """products/create and products/update: price and availability of the SKUs we carry; and
    which SKU each inventory item is (inventory levels name only the item)."""
    external_id = platform_id(product.get("id"), "id")
    translation = Translation(resource=("product", external_id),
                              version=parse_time(product.get("updated_at"), "updated_at"))
    active = product.get("status", "active") == "active"
    for i, variant in enumerate(items_of(product.get("variants"), "variants")):
        sku = clean_sku(variant.get("sku"))
        if sku is None:
            continue
        price = variant.get("price")
        translation.products.append(ProductListing(
            sku=sku, price=None if price is None else amount(price, f"variants.{i}.price"), active=active))
        if variant.get("inventory_item_id") is not None:
            item = platform_id(variant["inventory_item_id"], f"variants.{i}.inventory_item_id")
            translation.refs[("inventory_item", item)] = sku
    return translation


def map_inventory_level(level: dict[str, Any], settings: Settings) -> Translation:
    """inventory_levels/update: available units of an item at a location → stock per store."""
    item = platform_id(level.get("inventory_item_id"), "inventory_item_id")
    location = platform_id(level.get("location_id"), "location_id")
    translation = Translation(resource=("inventory_level", f"{item}@{location}"),
                              version=parse_time(level.get("updated_at"), "updated_at"))
    store = settings.shopify_locations.get(location)
    available = level.get("available")
    if store is None:
        translation.skipped = "unmapped_location"
    elif not isinstance(available, int) or isinstance(available, bool):
        translation.skipped = "untracked_inventory"
    else:
        translation.stock.append(StockLevel(store, max(available, 0), inventory_item=item))
    return translation


TOPICS: dict[str, Callable[[dict[str, Any], Settings], Translation]] = {
    "orders/create": map_order, "orders/updated": map_order, "orders/paid": map_order,
    "orders/cancelled": map_order, "orders/fulfilled": map_order, "orders/partially_fulfilled": map_order,
    "fulfillments/create": map_fulfillment, "fulfillments/update": map_fulfillment,
    "refunds/create": map_refund,
    "checkouts/create": map_checkout, "checkouts/update": map_checkout,
    "customers/create": map_customer, "customers/update": map_customer,
    "products/create": map_product, "products/update": map_product,
    "inventory_levels/update": map_inventory_level,
}


def translate(topic: str, payload: Any, settings: Settings) -> Translation:
    """The delivery of a known topic as internal effects; raises :class:`ConnectorError`."""
    return TOPICS[topic](mapping(payload, "body"), settings)
