"""Flood control: a customer sending too fast gets one warning, then is ignored for a moment."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Protocol


class FloodVerdict(Enum):
    ALLOW = "allow"
    WARN = "warn"  # first message over the limit: tell the customer once
    DROP = "drop"  # muted: ignore silently


class FloodGate(Protocol):
    async def check(self, user_id: int) -> FloodVerdict: ...


class MemoryFloodGate:
    """Sliding window per chat user, for a single bot process."""

    def __init__(
        self, max_messages: int, window_s: float, mute_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_messages = max_messages
        self.window_s = window_s
        self.mute_s = mute_s
        self._clock = clock
        self._recent: dict[int, deque[float]] = {}
        self._muted_until: dict[int, float] = {}

    async def check(self, user_id: int) -> FloodVerdict:
        now = self._clock()
        if self._muted_until.get(user_id, 0.0) > now:
            return FloodVerdict.DROP
        recent = self._recent.setdefault(user_id, deque())
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        recent.append(now)
        if len(recent) <= self.max_messages:
            return FloodVerdict.ALLOW
        self._muted_until[user_id] = now + self.mute_s
        recent.clear()
        return FloodVerdict.WARN
