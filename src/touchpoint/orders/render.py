"""Order texts for the chat, in the customer's language and time zone (the card and the detail)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from touchpoint.formatting import format_datetime, format_money
from touchpoint.i18n import Translator
from touchpoint.markup import esc
from touchpoint.messaging.base import Button

if TYPE_CHECKING:  # the outbox sender imports the card template: keep that import light
    from touchpoint.orders.service import OrderView


def money(minor: int, currency: str, locale: str) -> str:
    return format_money(minor, currency, locale)


def status_label(t: Translator, locale: str, status: str) -> str:
    return t(locale, f"orders.status.{status}")


def detail_callback(number: str) -> str:
    """Packed like the bot's ``OrderCallback(action="d", number=...)`` (a unit test keeps them equal)."""
    return f"ord:d:{number}"


HELP_CALLBACK = "m:human"  # the main menu's "talk to a person"


def card_text(t: Translator, locale: str, params: dict[str, Any]) -> str:
    """The live order card: the order's number, where it is now and what (if anything) to do."""
    number = esc(params["number"])
    lines = [t(locale, "orders.card.title", number=number),
             t(locale, f"orders.card.msg.{params['status']}")]
    if params.get("tracking_number") and params["status"] in ("shipped", "out_for_delivery",
                                                              "delivery_problem"):
        lines.append(t(locale, "orders.detail.tracking", carrier=esc(params.get("carrier") or ""),
                       tracking_number=esc(params["tracking_number"])))
    return "\n".join(lines)


def order_buttons(t: Translator, locale: str, number: str, tracking_url: str | None,
                  *, details: bool = True) -> tuple[tuple[Button, ...], ...]:
    rows: list[tuple[Button, ...]] = []
    if tracking_url:
        rows.append((Button(t(locale, "orders.button.track"), url=tracking_url),))
    if details:
        rows.append((Button(t(locale, "orders.button.details"), callback_data=detail_callback(number)),))
    rows.append((Button(t(locale, "orders.button.help"), callback_data=HELP_CALLBACK),))
    return tuple(rows)


def detail_text(t: Translator, locale: str, timezone: str, view: OrderView) -> str:
    order, zone = view.order, ZoneInfo(timezone)
    lines = [t(locale, "orders.detail.title", number=esc(order.number),
               status=status_label(t, locale, order.status)), "", t(locale, "orders.detail.items")]
    for item in view.items:
        name = item.name.get(locale) or item.name.get("en") or next(iter(item.name.values()), item.sku)
        lines.append(t(locale, "orders.detail.item", name=esc(name), quantity=item.quantity,
                       price=money(item.unit_price_minor * item.quantity, order.currency, locale)))
    lines.append(t(locale, "orders.detail.total", total=money(order.total_minor, order.currency, locale)))
    if order.delivery_method == "pickup" and view.store is not None:
        lines.append(t(locale, "orders.detail.pickup",
                       store=esc(_localised(view.store.name, locale)),
                       address=esc(_localised(view.store.address, locale))))
    elif order.delivery_address:
        lines.append(t(locale, "orders.detail.delivery", address=esc(order.delivery_address)))
    if order.tracking_number:
        lines.append(t(locale, "orders.detail.tracking", carrier=esc(order.carrier or ""),
                       tracking_number=esc(order.tracking_number)))
    if view.timeline:
        lines += ["", t(locale, "orders.detail.timeline")]
        for step in view.timeline:
            when = format_datetime(step.occurred_at, locale, zone)
            lines.append(t(locale, "orders.detail.step", time=when,
                           status=status_label(t, locale, step.status)))
    return "\n".join(lines)


def list_button_text(t: Translator, locale: str, number: str, status: str, total: str) -> str:
    return t(locale, "orders.list.item", number=number, status=status_label(t, locale, status), total=total)


def _localised(value: dict[str, str], locale: str) -> str:
    return value.get(locale) or value.get("en") or next(iter(value.values()), "")
