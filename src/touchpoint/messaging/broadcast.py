"""Paid broadcasts: Telegram lets a bot send marketing faster than the free ~30 messages/s, up to
1000/s, for 0.1 Star per message above the free 30/s (``allow_paid_broadcast``). Off unless
``TOUCHPOINT_PAID_BROADCAST_RATE`` is set; campaigns and marketing journeys use it, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

FREE_RATE_PER_S = 30.0  # what Telegram lets a bot send each second without paying
STARS_PER_PAID_MESSAGE = 0.1
PAID_RATE_MAX = 1000.0


@dataclass(frozen=True, slots=True)
class BroadcastEstimate:
    messages: int
    free_seconds: float  # at the bot's own (free) rate
    paid_seconds: float | None  # at the paid rate; None: paid broadcasts are off
    stars: float  # the paid run's cost (0 when off)


def estimate_broadcast(messages: int, free_rate: float, paid_rate: float) -> BroadcastEstimate:
    """How long ``messages`` take at the free and at the paid rate, and what the paid run costs:
    each second, the messages above the free 30 are charged."""
    free_seconds = messages / free_rate if free_rate > 0 else 0.0
    if paid_rate <= 0:
        return BroadcastEstimate(messages, free_seconds, None, 0.0)
    charged = messages * max(0.0, 1 - FREE_RATE_PER_S / paid_rate)
    return BroadcastEstimate(messages, free_seconds, messages / paid_rate,
                             round(charged * STARS_PER_PAID_MESSAGE, 1))
