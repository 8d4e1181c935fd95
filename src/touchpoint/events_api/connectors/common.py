"""What both platforms' mappings share: the translation they produce, money, times, SKUs, phones,
and the internal events validated by the events API's own models (with the few relaxations a
platform's data needs)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from babel.numbers import UnknownCurrencyError, get_currency_precision
from pydantic import Field, TypeAdapter, model_validator

from touchpoint.events_api import schemas
from touchpoint.orders.models import OrderStatus
from touchpoint.orders.phones import normalize_phone

ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
URL_PATTERN = re.compile(r"^https?://\S+$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+$")

# A platform's order name as its customers see it: Shopify's "#1001", WooCommerce's "1234".
PlatformOrderNumber = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^#?[A-Za-z0-9-]+$")]


class ConnectorError(ValueError):
    """A payload that cannot be mapped: ``field`` names the part at fault (never its value)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


# --- what a mapping produces --------------------------------------------------------------------

@dataclass(slots=True)
class OrderUpdate:
    """An order's state as one delivery tells it.

    ``created`` (the events API's order.created data) is set when the payload is the whole order:
    an order we do not know yet is created from it. ``status`` moves a known order; ``derived``
    statuses (read off Shopify's financial and fulfilment state) only ever move an order forward,
    authoritative ones (WooCommerce's own status) move it as they say. ``refund_minor`` is a refund:
    the whole total refunds the order, less is a note on its timeline."""

    external_id: str
    number: str | None = None
    created: dict[str, Any] | None = None
    status: OrderStatus | None = None
    derived: bool = True
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    note: str | None = None
    refund_minor: int | None = None
    occurred_at: datetime | None = None


@dataclass(slots=True)
class ProductListing:
    """A sellable variant as the platform lists it: price and availability of a product we already
    carry (by SKU). Names stay ours: they are translated, the platform's title is one language."""

    sku: str
    price: Decimal | None  # in the product's own currency (the platform does not repeat it)
    active: bool


@dataclass(slots=True)
class StockLevel:
    """Units available in one of our stores, of a SKU, or of a platform inventory item whose SKU an
    earlier product delivery told us (Shopify's inventory levels name only the item)."""

    store_id: str
    quantity: int
    sku: str | None = None
    inventory_item: str | None = None


@dataclass(slots=True)
class Translation:
    """A delivery mapped to the internal model (pure data; queue.py applies it)."""

    resource: tuple[str, str] | None = None  # (kind, platform id) whose version this is
    version: datetime | None = None  # the payload's updated_at
    events: list[dict[str, Any]] = field(default_factory=list)  # internal store events (API shape)
    order: OrderUpdate | None = None
    guest_contact: tuple[str | None, str | None] | None = None  # (phone, e-mail) of a guest order
    products: list[ProductListing] = field(default_factory=list)
    refs: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, platform id) → our key
    stock: list[StockLevel] = field(default_factory=list)
    skipped: str | None = None  # why there is nothing to apply


# --- plain values -------------------------------------------------------------------------------

def to_minor(value: Any, currency: str, where: str) -> int:
    """"19.99" EUR → 1999; "1500" JPY → 1500 (the currency's own number of decimals)."""
    try:
        digits = get_currency_precision(currency)
    except UnknownCurrencyError:
        digits = 2
    return int((amount(value, where) * (10 ** digits)).to_integral_value())


def amount(value: Any, where: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ConnectorError(where, "is not an amount") from None
    if not number.is_finite() or number < 0:
        raise ConnectorError(where, "is not an amount")
    return number


def parse_time(value: Any, where: str, *, naive_is_utc: bool = False) -> datetime | None:
    """ISO 8601 with an offset (Shopify); without one only where the platform means UTC
    (WooCommerce's ``*_gmt`` fields)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ConnectorError(where, "is not a time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConnectorError(where, "is not a time") from None
    if parsed.tzinfo is None:
        if not naive_is_utc:
            raise ConnectorError(where, "has no time zone")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def platform_id(value: Any, where: str) -> str:
    """A platform's numeric or string id as our id text."""
    if isinstance(value, bool) or value is None:
        raise ConnectorError(where, "is missing")
    text = str(value).strip()
    if not ID_PATTERN.match(text):
        raise ConnectorError(where, "is not an id")
    return text


def clean_sku(sku: Any, fallback: str | None = None) -> str | None:
    """A SKU as our ids allow (other characters become "-"); a variant without one keeps ``fallback``."""
    text = str(sku or "").strip()
    if not text:
        return fallback
    text = re.sub(r"[^A-Za-z0-9._:-]", "-", text)[:64]
    return text


def phone(value: Any, region: str) -> str | None:
    """E.164, or None for a number we cannot read (a bad phone on file is not a bad delivery)."""
    if not isinstance(value, str) or not value.strip():
        return None
    return normalize_phone(value, region)


def email(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if text and len(text) <= 254 and EMAIL_PATTERN.match(text) else None


def url(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if len(text) <= 2048 and URL_PATTERN.match(text) else None


def text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:limit]


def full_name(first: Any, last: Any) -> str:
    return " ".join(p.strip() for p in (first, last) if isinstance(p, str) and p.strip())[:200]


def mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConnectorError(where, "is not an object")
    return value


def items_of(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConnectorError(where, "is not a list")
    return [mapping(v, f"{where}.{i}") for i, v in enumerate(value)]


# --- signatures ---------------------------------------------------------------------------------

def base64_hmac_valid(secrets: list[str], body: bytes, signature: str | None) -> bool:
    """``signature`` = base64(HMAC-SHA256(body, secret)) for one of ``secrets``, compared in
    constant time (every secret is tried, so the time does not tell which one matched)."""
    if not signature:
        return False
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except ValueError:
        return False
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        matched |= hmac.compare_digest(expected, given)
    return matched


def base64_hmac(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


# --- the internal events, validated by the events API's models ----------------------------------

class _OrderCreatedData(schemas.OrderCreatedData):
    number: PlatformOrderNumber  # type: ignore[assignment]


class _OrderStatusData(schemas.OrderStatusData):
    number: PlatformOrderNumber  # type: ignore[assignment]

    # A platform may fulfil without tracking (a local courier, a digital good): still shipped.
    @model_validator(mode="after")
    def _shipped_needs_tracking(self) -> _OrderStatusData:
        return self


class _OrderCreated(schemas.OrderCreated):
    data: _OrderCreatedData  # type: ignore[assignment]


class _OrderStatusChanged(schemas.OrderStatusChanged):
    data: _OrderStatusData  # type: ignore[assignment]


_InternalEvent = Annotated[
    schemas.CustomerUpserted | _OrderCreated | _OrderStatusChanged | schemas.CartUpdated
    | schemas.CartCleared | schemas.StockChanged,
    Field(discriminator="type"),
]
_internal: TypeAdapter[Any] = TypeAdapter(_InternalEvent)
EventType = Literal["customer.upserted", "order.created", "order.status_changed", "cart.updated",
                    "cart.cleared", "stock.changed"]


def event(type_: EventType, data: dict[str, Any], occurred_at: datetime | None = None, *,
          resource: tuple[str, str] | None = None) -> dict[str, Any]:
    """An internal event; ``resource`` names the platform resource it is a snapshot of, as of
    ``occurred_at`` (e.g. the customer inside an order), so an older snapshot is dropped."""
    raw: dict[str, Any] = {"type": type_, "data": data, "occurred_at": occurred_at}
    if resource is not None:
        raw[RESOURCE_KEY] = resource
    return raw


RESOURCE_KEY = "_resource"


def validate_events(events: list[dict[str, Any]], event_id_prefix: str, phone_region: str) -> list[Any]:
    """The events API's event objects, ids derived from the delivery's (so a re-run is a duplicate).

    Raises :class:`ConnectorError` naming the field at fault."""
    out = []
    for index, raw in enumerate(events):
        body = {k: v for k, v in raw.items() if v is not None and k != RESOURCE_KEY}
        body["id"] = f"{event_id_prefix}.{index}"
        try:
            out.append(_internal.validate_python(body, context={"phone_region": phone_region}))
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            errors = getattr(exc, "errors", None)
            first = errors()[0] if callable(errors) else {"loc": (), "msg": str(exc)}
            loc = [str(p) for p in first["loc"] if str(p) not in schemas.EVENT_TYPES]
            raise ConnectorError(".".join(loc) or "type", str(first["msg"]).removeprefix("Value error, ")) \
                from None
    return out


def delivery_key(platform: str, delivery_id: str) -> str:
    """The delivery's key in ``processed_store_events`` (64 characters at most)."""
    key = f"{platform}:{delivery_id}"
    if len(key) <= 48 and ID_PATTERN.match(key):
        return key
    return f"{platform}:h{hashlib.sha256(delivery_id.encode()).hexdigest()[:32]}"
