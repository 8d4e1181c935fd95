"""Messages the console sends to customers (through the outbox)."""

from __future__ import annotations

from html import escape
from typing import Any

from touchpoint.channels.templates import Rendered, template
from touchpoint.i18n import Translator

TICKET_STATUSES = ("new", "in_progress", "awaiting_customer", "approved", "rejected", "resolved", "closed")


@template("console.staff_reply")
def staff_reply(t: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    return Rendered(t(locale, "console.reply.message", name=escape(params["author"]),
                      text=escape(params["text"])))


@template("console.handoff_closed")
def handoff_closed(t: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    return Rendered(t(locale, "console.handoff.closed"))


@template("console.ticket_status")
def ticket_status(t: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    status = t(locale, f"console.ticket.status.{params['status']}")
    return Rendered(t(locale, "console.ticket.status_changed", number=escape(params["number"]),
                      status=status))


@template("console.campaign")
def campaign(t: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    texts: dict[str, str] = params["texts"]
    text = texts.get(locale) or texts.get("en") or next(iter(texts.values()), "")
    return Rendered(f"{escape(text)}\n\n{t(locale, 'console.campaign.footer')}")
