"""How a message reaches a customer: the Channel protocol and rendering of templates.

The core renders a template into an :class:`OutgoingMessage`; a Channel (Telegram's lives in
``bot/``) delivers it. Failures are reported with the exceptions below, never aiogram's.
"""

from touchpoint.messaging.base import (
    Button,
    Channel,
    ChannelBlocked,
    ChannelError,
    ChannelRejected,
    ChannelRetryAfter,
    ChannelUnavailable,
    OutgoingMessage,
    SendResult,
)
from touchpoint.messaging.templates import Rendered, render, template

__all__ = [
    "Button", "Channel", "ChannelBlocked", "ChannelError", "ChannelRejected", "ChannelRetryAfter",
    "ChannelUnavailable", "OutgoingMessage", "Rendered", "SendResult", "render", "template",
]
