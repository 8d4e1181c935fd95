"""Messages the console itself sends to customers (through the outbox). Replies, the rating after a
close and ticket updates are the handoff's and after-sales' own templates."""

from __future__ import annotations

from html import escape
from typing import Any

from touchpoint.config import SUPPORTED_LOCALES
from touchpoint.i18n import Translator
from touchpoint.journeys.templates import marketing_message
from touchpoint.messaging.templates import Rendered, template


def campaign_language(texts: dict[str, str], locale: str) -> str | None:
    """Which written language a customer reading ``locale`` gets: their own, else English, else the
    first one written (in the console's language order). None: nothing is written."""
    for candidate in (locale, "en", *SUPPORTED_LOCALES, *texts):
        if texts.get(candidate):
            return candidate
    return None


@template("console.campaign")
def campaign(t: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    texts: dict[str, str] = params["texts"]
    written = campaign_language(texts, locale)
    return marketing_message(t, locale, escape(texts[written] if written else ""))
