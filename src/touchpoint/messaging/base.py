"""The Channel protocol: what the sender needs from Telegram (or any other chat channel)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Button:
    text: str
    callback_data: str | None = None  # ≤ 64 bytes (Telegram's limit)
    url: str | None = None

    def __post_init__(self) -> None:
        if (self.callback_data is None) == (self.url is None):
            raise ValueError("a button has either callback_data or a url")
        if self.callback_data is not None and len(self.callback_data.encode()) > 64:
            raise ValueError(f"callback_data over 64 bytes: {self.callback_data!r}")


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    chat_id: int
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    disable_notification: bool = False
    edit_message_id: int | None = None  # edit this message in place instead of sending anew
    message_thread_id: int | None = None
    paid_broadcast: bool = False  # may go above the free rate, paid in Stars (allow_paid_broadcast)
    extra: dict[str, object] = field(default_factory=dict)  # what a Channel needs besides the chat id
    addressed: bool = False  # ``extra`` holds the registered address lookups' answer (messaging.addresses)


@dataclass(frozen=True, slots=True)
class SendResult:
    message_id: int


class ChannelError(Exception):
    """Base of every delivery failure a Channel reports."""


class ChannelRetryAfter(ChannelError):
    """Flood limit hit: a signal to pause, not an error."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


class ChannelBlocked(ChannelError):
    """The customer blocked the bot (Telegram's 403): stop messaging them, keep their data."""


class ChannelRejected(ChannelError):
    """The request itself was refused (other 4xx): retrying will not help."""


class ChannelUnavailable(ChannelError):
    """Network trouble or a 5xx: worth retrying with back-off."""


class Channel(Protocol):
    async def send(self, message: OutgoingMessage) -> SendResult: ...
