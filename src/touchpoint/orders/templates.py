"""Outbox templates of the orders capability."""

from __future__ import annotations

from typing import Any

from touchpoint.i18n import Translator
from touchpoint.messaging.templates import Rendered, template
from touchpoint.orders.render import card_text, order_buttons


@template("order.status")
def order_status(t: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    """The live order card (params from ``orders.service.card_params``)."""
    return Rendered(card_text(t, locale, params),
                    order_buttons(t, locale, params["number"], params.get("tracking_url")))
