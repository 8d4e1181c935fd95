"""Handoff messages that reach the customer through the outbox (when no bot is at hand: the console)."""

from __future__ import annotations

from typing import Any

from touchpoint.i18n import Translator
from touchpoint.markup import esc as escape
from touchpoint.messaging.base import Button
from touchpoint.messaging.templates import Rendered, template


@template("handoff.staff_reply")
def staff_reply(t: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    return Rendered(t(locale, "console.reply.message", name=escape(params["author"]),
                      text=escape(params["text"])))


@template("handoff.csat")
def csat_question(t: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    # The same buttons as the bot's /close (bot.handoff_desk.HandoffCallback: "ho:csat:<id>:<score>").
    conversation_id = params["conversation_id"]
    rows = tuple((Button("⭐" * score, callback_data=f"ho:csat:{conversation_id}:{score}"),)
                 for score in range(1, 6))
    return Rendered(t(locale, "handoff.csat.ask"), rows)
