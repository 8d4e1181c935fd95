"""The store events, validated strictly: a bad payload is answered with the field at fault."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from touchpoint.clock import utcnow
from touchpoint.orders.models import OrderStatus
from touchpoint.orders.phones import normalize_phone

# Free text may hold tabs and line breaks, never NUL (PostgreSQL refuses it in text) or other C0/C1
# control characters. Lone surrogates are refused by pydantic itself.
NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
_NO_CONTROL_MESSAGE = "must not contain control characters"
_VISIBLE = r"[^\s\x00-\x1f\x7f-\x9f@]"

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
OrderNumber = Annotated[str, Field(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9-]+$")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Money = Annotated[int, Field(ge=0, le=10**12)]
Url = Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s\x00-\x1f\x7f-\x9f]+$")]
ShortText = Annotated[str, Field(max_length=500, pattern=NO_CONTROL)]
Name = Annotated[str, Field(max_length=200, pattern=NO_CONTROL)]
Phone = Annotated[str, Field(max_length=32, pattern=NO_CONTROL)]
Email = Annotated[str, Field(max_length=254, pattern=rf"^{_VISIBLE}+@{_VISIBLE}+$")]
Label = Annotated[str, Field(max_length=64, pattern=NO_CONTROL)]
LocaleKey = Annotated[str, Field(min_length=1, max_length=16,
                                 pattern=r"^[A-Za-z]{2,8}([_-][A-Za-z0-9]{1,8})*$")]
# An event time must be plausible: a time far ahead would freeze the order's timeline (and the
# customer's return window) for good; one before the shop existed is a client's bug.
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(days=1)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _phone(value: str | None, info: ValidationInfo) -> str | None:
    if value is None:
        return None
    region = (info.context or {}).get("phone_region", "DE")
    normalized = normalize_phone(value, region)
    if normalized is None:
        raise ValueError("is not a valid phone number")
    return normalized


class CustomerData(_Strict):
    id: Id
    name: Name = ""
    phone: Phone | None = None
    email: Email | None = None
    # The shop's marketing opt-in; omitted or null leaves the chat customer's choice as it is.
    marketing_consent: bool | None = None

    _normalize_phone = field_validator("phone")(_phone)


class OrderItemData(_Strict):
    sku: Id
    name: dict[LocaleKey, ShortText] | ShortText = Field(default_factory=dict)
    quantity: int = Field(ge=1, le=10_000)
    unit_price_minor: Money


class OrderCreatedData(_Strict):
    number: OrderNumber
    customer_id: Id | None = None
    status: OrderStatus = OrderStatus.PLACED
    items: list[OrderItemData] = Field(min_length=1, max_length=200)
    total_minor: Money | None = None  # defaults to the sum of the items
    currency: Currency = "EUR"
    delivery_method: Literal["delivery", "pickup"] = "delivery"
    delivery_address: ShortText | None = None
    pickup_store_id: Id | None = None
    contact_phone: Phone | None = None
    contact_email: Email | None = None

    _normalize_phone = field_validator("contact_phone")(_phone)

    @model_validator(mode="after")
    def _delivery_details(self) -> OrderCreatedData:
        if self.delivery_method == "pickup" and not self.pickup_store_id:
            raise ValueError("pickup_store_id is required for pickup orders")
        return self


class OrderStatusData(_Strict):
    number: OrderNumber
    status: OrderStatus
    carrier: Label | None = None
    tracking_number: Label | None = None
    tracking_url: Url | None = None
    note: ShortText | None = None

    @model_validator(mode="after")
    def _shipped_needs_tracking(self) -> OrderStatusData:
        if self.status == OrderStatus.SHIPPED and not (
            self.carrier and (self.tracking_number or self.tracking_url)
        ):
            raise ValueError("shipped needs carrier and tracking_number or tracking_url")
        return self


class CartItemData(_Strict):
    sku: Id
    quantity: int = Field(ge=1, le=10_000)
    unit_price_minor: Money


class CartUpdatedData(_Strict):
    customer_id: Id
    items: list[CartItemData] = Field(max_length=200)
    total_minor: Money | None = None
    currency: Currency = "EUR"
    cart_url: Url | None = None


class CartClearedData(_Strict):
    customer_id: Id
    reason: Literal["checkout", "emptied", "expired"] = "emptied"


class ProductViewedData(_Strict):
    customer_id: Id
    sku: Id
    url: Url | None = None


class StockChangedData(_Strict):
    store_id: Id
    sku: Id
    quantity: int = Field(ge=0, le=10**9)


class _Event(_Strict):
    id: Id
    occurred_at: AwareDatetime | None = Field(
        default=None, description="When it happened (default: when received); from 2000 to at most "
                                  "a day ahead of the server's clock")

    @field_validator("occurred_at")
    @classmethod
    def _plausible_time(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        try:
            value = value.astimezone(UTC)
        except (OverflowError, ValueError):  # 0001-01-01T00:00:00+14:00 has no UTC equivalent
            raise ValueError("is out of range") from None
        now = (info.context or {}).get("now") or utcnow()
        if value < EARLIEST_EVENT_TIME:
            raise ValueError("is before 2000")
        if value > now + MAX_CLOCK_SKEW:
            raise ValueError("is more than a day in the future")
        return value


class CustomerUpserted(_Event):
    type: Literal["customer.upserted"]
    data: CustomerData


class OrderCreated(_Event):
    type: Literal["order.created"]
    data: OrderCreatedData


class OrderStatusChanged(_Event):
    type: Literal["order.status_changed"]
    data: OrderStatusData


class CartUpdated(_Event):
    type: Literal["cart.updated"]
    data: CartUpdatedData


class CartCleared(_Event):
    type: Literal["cart.cleared"]
    data: CartClearedData


class ProductViewed(_Event):
    type: Literal["product.viewed"]
    data: ProductViewedData


class StockChanged(_Event):
    type: Literal["stock.changed"]
    data: StockChangedData


StoreEvent = Annotated[
    CustomerUpserted | OrderCreated | OrderStatusChanged | CartUpdated | CartCleared
    | ProductViewed | StockChanged,
    Field(discriminator="type"),
]
EVENT_TYPES = ("customer.upserted", "order.created", "order.status_changed", "cart.updated",
               "cart.cleared", "product.viewed", "stock.changed")
_adapter: TypeAdapter[Any] = TypeAdapter(StoreEvent)


class EventError(Exception):
    """An event that cannot be accepted: which one (index in the batch), which field, and why."""

    def __init__(self, index: int | None, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.index, self.field, self.message = index, field, message

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


def parse_events(body: Any, *, max_batch: int, phone_region: str,
                 now: datetime | None = None) -> tuple[list[Any], bool]:
    """The body as events (one, or a batch under "events"); raises a list of EventErrors.
    ``now`` bounds ``occurred_at`` (default: the clock)."""
    context = {"phone_region": phone_region, "now": now or utcnow()}
    is_batch = isinstance(body, dict) and "events" in body
    raw = body["events"] if is_batch else [body]
    if is_batch and (not isinstance(raw, list) or set(body) != {"events"}):
        raise ValueError("a batch is an object with one key, events, holding a list")
    if not raw:
        raise ValueError("events is empty")
    if len(raw) > max_batch:
        raise ValueError(f"at most {max_batch} events per batch")
    events, errors = [], []
    for index, item in enumerate(raw):
        try:
            events.append(_adapter.validate_python(item, context=context))
        except ValidationError as exc:
            first = exc.errors()[0]
            # The discriminator's own tag is noise in the field path ("data.order.created.number").
            loc = [str(part) for part in first["loc"] if str(part) not in EVENT_TYPES]
            errors.append(EventError(index if is_batch else None, ".".join(loc) or "type",
                                     _message(first)))
    if errors:
        raise EventErrors(errors)
    return events, is_batch


def _message(error: Any) -> str:
    if error["type"] == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == NO_CONTROL:
        return _NO_CONTROL_MESSAGE
    return str(error["msg"]).removeprefix("Value error, ")


class EventErrors(Exception):
    def __init__(self, errors: list[EventError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


def event_time(event: Any, received_at: datetime) -> datetime:
    return event.occurred_at or received_at
