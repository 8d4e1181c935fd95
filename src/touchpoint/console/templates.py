"""Messages the console itself sends to customers (through the outbox). Replies, the rating after a
close and ticket updates are the handoff's and after-sales' own templates."""

from __future__ import annotations

from html import escape
from typing import Any

from touchpoint.i18n import Translator
from touchpoint.journeys.templates import marketing_message
from touchpoint.messaging.templates import Rendered, template


@template("console.campaign")
def campaign(t: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    texts: dict[str, str] = params["texts"]
    text = texts.get(locale) or texts.get("en") or next(iter(texts.values()), "")
    return marketing_message(t, locale, escape(text))
