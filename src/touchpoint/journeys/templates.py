"""Journey messages: short, conversational, each with buttons that act in one tap.

Every marketing message ends with an unsubscribe button. Callback data: ``j:<action>`` is answered
by bot/handlers/journeys.py; ``m:<action>`` opens a main-menu feature directly (bot/keyboards.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from touchpoint.formatting import format_time
from touchpoint.i18n import Translator
from touchpoint.markup import esc
from touchpoint.messaging import Button, Rendered, template

UNSUBSCRIBE = "j:unsub"


def _product(locale: str, params: dict[str, Any]) -> str:
    names = params.get("product_name")
    if isinstance(names, dict):
        name = names.get(locale) or names.get("en") or next(iter(names.values()), "")
    else:
        name = params.get("name_of_product") or params.get("sku") or ""
    return esc(str(name))


def _name(params: dict[str, Any]) -> str:
    return esc(str(params.get("name") or "").strip()) or "👋"


def _button(translate: Translator, locale: str, key: str, *, data: str | None = None,
            url: str | None = None) -> tuple[Button, ...]:
    return (Button(translate(locale, f"journey.button.{key}"), callback_data=data, url=url),)


def marketing_message(translate: Translator, locale: str, text: str, *rows: tuple[Button, ...]) -> Rendered:
    """Any marketing message, journeys' and campaigns' alike: the buttons, then "no more offers"."""
    return Rendered(text, (*rows, _button(translate, locale, "unsubscribe", data=UNSUBSCRIBE)))


@template("journey.cart_reminder")
def cart_reminder(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    return marketing_message(
        translate, locale, translate(locale, "journey.cart.reminder", name=_name(params)),
        _button(translate, locale, "open_cart", url=params["cart_url"]),
        _button(translate, locale, "human", data="m:human"),
    )


@template("journey.cart_incentive")
def cart_incentive(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    code = esc(str(params.get("incentive", "")))
    return marketing_message(
        translate, locale, translate(locale, "journey.cart.incentive", code=code),
        _button(translate, locale, "open_cart", url=params["cart_url"]),
    )


@template("journey.browse_nudge")
def browse_nudge(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    return marketing_message(
        translate, locale, translate(locale, "journey.browse.nudge", product=_product(locale, params)),
        _button(translate, locale, "view_product", url=params["product_url"]),
        _button(translate, locale, "ask", data="m:human"),
    )


@template("journey.checkin")
def checkin(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    order = esc(str(params.get("order_number", "")))
    return Rendered(translate(locale, "journey.checkin.question", order=order), (
        (Button(translate(locale, "journey.button.happy"), callback_data="j:happy"),
         Button(translate(locale, "journey.button.sad"), callback_data="j:sad")),
    ))


@template("journey.replenish")
def replenish(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    url = params.get("reorder_url") or params["product_url"]
    return marketing_message(
        translate, locale, translate(locale, "journey.replenish.text", product=_product(locale, params)),
        _button(translate, locale, "reorder", url=url),
    )


@template("journey.back_in_stock")
def back_in_stock(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    return Rendered(
        translate(locale, "journey.back_in_stock.text", product=_product(locale, params)),
        (_button(translate, locale, "view_product", url=params["product_url"]),),
    )


@template("journey.winback")
def winback(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    rows = [_button(translate, locale, "browse", data="m:products")]
    if params.get("reorder_url"):
        rows.insert(0, _button(translate, locale, "reorder", url=params["reorder_url"]))
    return marketing_message(translate, locale, translate(locale, "journey.winback.text", name=_name(params)),
                      *rows)


@template("journey.reservation_expiring")
def reservation_expiring(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    try:
        ends = datetime.fromisoformat(str(params.get("expires_at")))
        time = format_time(ends, locale, str(params.get("tz") or "UTC"))
    except (ValueError, KeyError):
        time = "—"
    return Rendered(
        translate(locale, "journey.reservation.expiring", product=_product(locale, params), time=time),
        (_button(translate, locale, "human", data="m:human"),),
    )


@template("journey.ticket_followup")
def ticket_followup(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    ticket = esc(str(params.get("ticket_number", "")))
    return Rendered(translate(locale, "journey.ticket.followup", ticket=ticket), (
        (Button(translate(locale, "journey.button.solved"), callback_data="j:solved"),
         Button(translate(locale, "journey.button.unsolved"), callback_data="j:unsolved")),
    ))

