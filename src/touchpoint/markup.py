"""The one way user-supplied text goes into an HTML message (Telegram's ``parse_mode=HTML``).

Names, product and ticket text, staff names and anything a person typed pass through
:func:`esc` before they are put into a translated template: a customer called ``Anna <3`` or
``<b>x</b>`` reads as themselves and never breaks or restyles the bot's message.
"""

from __future__ import annotations

import html


def esc(value: object | None, default: str = "") -> str:
    """``value`` as text safe inside Telegram HTML (``default`` when empty)."""
    text = "" if value is None else str(value)
    return html.escape(text or default, quote=False)
