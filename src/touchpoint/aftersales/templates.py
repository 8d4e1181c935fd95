"""Proactive after-sales messages: status changes, staff replies and the CSAT question.

Button data follows the bot's ``AftersalesCallback`` layout: ``as:<action>:<id>:<value>``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from touchpoint.formatting import format_date
from touchpoint.i18n import Translator
from touchpoint.markup import esc
from touchpoint.messaging.base import Button
from touchpoint.messaging.templates import Rendered, template

NEEDS_INSTRUCTIONS = ("return", "exchange", "repair")


def open_button(translate: Translator, locale: str, ticket_id: int) -> Button:
    return Button(translate(locale, "aftersales.button.open"), callback_data=f"as:ticket:{ticket_id}:")


@template("aftersales.status")
def status_changed(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    status = translate(locale, f"aftersales.status.{params['status']}")
    lines = [translate(locale, "aftersales.notify.status", number=params["number"], status=status)]
    if params.get("note"):
        lines.append(translate(locale, "aftersales.notify.note", note=esc(params["note"])))
    elif params["status"] == "approved" and params.get("kind") in NEEDS_INSTRUCTIONS:
        lines.append(translate(locale, "aftersales.notify.instructions", number=params["number"]))
    return Rendered("\n\n".join(lines), ((open_button(translate, locale, params["ticket_id"]),),))


@template("aftersales.staff_message")
def staff_message(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    text = translate(locale, "aftersales.notify.staff_message", number=params["number"],
                     text=esc(params["text"]))
    return Rendered(text, ((open_button(translate, locale, params["ticket_id"]),),))


@template("aftersales.csat")
def csat_question(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    ticket_id = params["ticket_id"]
    scores = tuple(
        Button(f"{score} ⭐", callback_data=f"as:rate:{ticket_id}:{score}") for score in range(1, 6)
    )
    return Rendered(translate(locale, "aftersales.csat.ask", number=params["number"]), (scores,))


@template("aftersales.warranty_expiring")
def warranty_expiring(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    names = params.get("name") or {}
    product = esc(names.get(locale) or names.get("en") or params["sku"])
    ends = format_date(date.fromisoformat(params["ends"]), locale)
    text = translate(locale, "aftersales.warranty.expiring", product=product, date=ends)
    menu = Button(translate(locale, "menu.returns"), callback_data="m:returns")
    return Rendered(text, ((menu,),))


@template("aftersales.warranty_checked")
def warranty_checked(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    """Staff checked the receipt of a registered warranty: confirmed (until when) or not (why)."""
    names = params.get("name") or {}
    product = esc(names.get(locale) or names.get("en") or params["sku"])
    if params.get("valid"):
        ends = format_date(date.fromisoformat(params["ends"]), locale)
        lines = [translate(locale, "aftersales.warranty.verified", product=product, date=ends)]
    else:
        lines = [translate(locale, "aftersales.warranty.rejected", product=product)]
    if params.get("note"):
        lines.append(translate(locale, "aftersales.notify.note", note=esc(params["note"])))
    menu = Button(translate(locale, "menu.returns"), callback_data="m:returns")
    return Rendered("\n\n".join(lines), ((menu,),))
