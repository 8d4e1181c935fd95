"""An interactive reply that Telegram refused for a while (429) goes out later through the outbox.

The bot renders the reply (HTML, buttons) as it would have sent it; the template sends it as is.
"""

from __future__ import annotations

from typing import Any

from touchpoint.i18n import Translator
from touchpoint.messaging.base import Button
from touchpoint.messaging.templates import Rendered, template

REPLY_TEMPLATE = "chat.reply"


@template(REPLY_TEMPLATE)
def queued_reply(_t: Translator, _locale: str, params: dict[str, Any]) -> Rendered:
    rows = tuple(
        tuple(Button(b["text"], callback_data=b.get("callback_data"), url=b.get("url")) for b in row)
        for row in params.get("buttons") or ()
    )
    return Rendered(str(params["text"]), rows)
