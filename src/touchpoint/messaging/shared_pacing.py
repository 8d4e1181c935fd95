"""The bot's overall send rate shared by every process, through Redis.

Telegram counts a bot's messages per token, whichever process sends them. Each process keeps its
own pacer (RateLimiter: even spacing, the per-second ceiling, each chat's interval) and, when Redis
is configured, also takes every send's moment from one grid kept in Redis: a Lua script hands out
the next ``count`` slots one step apart (GCRA-style virtual scheduling on Redis's own clock), so
all processes together never go faster than the rate, whatever their number. Slots are reserved a
few at a time (one round trip per small batch); a slot left unused goes stale and is dropped.

A 429's ``retry_after`` moves the shared grid too: every process waits. If Redis is unreachable
the process falls back to its own pacer alone (logged), rather than stop sending.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# KEYS: the grid's next free slot (µs, Redis time). ARGV: step µs, count, pause µs.
# Returns {now µs, first slot µs}: the slots are first, first + step, … (count of them).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local step = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local first = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = now + tonumber(ARGV[3])
if first < floor then first = floor end
if count > 0 then
  redis.call('SET', KEYS[1], string.format('%d', first + step * count), 'PX', 60000)
else
  redis.call('SET', KEYS[1], string.format('%d', first), 'PX', 60000)
end
return {now, first}
"""
# KEYS: the sends of the last second (sorted set: member → when it ended, or a far deadline while
# it is on its way). ARGV: member, window µs, limit, in-flight deadline µs.
# Returns 0 (go: the send is counted from now) or how many µs to wait before asking again.
_BEGIN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + window - now
  if wait < 1000 then wait = 1000 end
  return wait
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil((window + tonumber(ARGV[4])) / 1000))
return 0
"""
# KEYS: as _BEGIN. ARGV: member. The send ended: it counts for one second from now.
_END = """
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], 'XX', tonumber(t[1]) * 1000000 + tonumber(t[2]), ARGV[1])
return 0
"""
IN_FLIGHT_US = 30_000_000  # a send whose process died stops counting after this long
BATCH = 4  # slots reserved per round trip at most
# The shared grid runs this much below the rate: one process's late send (its event loop was busy)
# must not crowd another's on-time one into the same second.
HEADROOM = 0.95


class SharedSlots:
    """Send moments on one grid for all processes of a bot (``key`` names the bot)."""

    def __init__(self, redis: Redis, key: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.redis = redis
        self.key = key
        self._clock = clock
        self._script = redis.register_script(_RESERVE)
        self._begin = redis.register_script(_BEGIN)
        self._end = redis.register_script(_END)
        self._window_key = f"{key}:window"
        self._counter = 0
        self._slots: deque[float] = deque()  # reserved, in this process's clock
        self._step = 0.0
        self._warned = 0.0

    async def next_slot(self, step: float, wanted: int) -> float | None:
        """This process's next reserved moment (monotonic clock), reserving more if none is left;
        None: Redis is unreachable, pace locally."""
        now = self._clock()
        while self._slots and self._slots[0] < now - step:
            self._slots.popleft()  # unused long enough that using it now would crowd the next
        if self._slots:
            return self._slots[0]
        try:
            redis_now, first = await self._script(
                keys=[self.key], args=[round(step / HEADROOM * 1_000_000), max(1, min(wanted, BATCH)), 0])
        except RedisError:
            if now - self._warned > 60:
                self._warned = now
                log.warning("shared send rate: Redis unreachable, pacing this process alone")
            return None
        local = self._clock()
        first_at = local + (int(first) - int(redis_now)) / 1_000_000
        self._slots.extend(first_at + i * step / HEADROOM for i in range(max(1, min(wanted, BATCH))))
        return self._slots[0]

    async def begin(self, window_s: float, limit: int) -> str | float | None:
        """The per-second ceiling over all processes, counted as the local pacer counts its own: a
        send counts from its start until one second after its end. Returns the member to pass to
        ``end`` (go), the seconds to wait before asking again, or None (Redis unreachable: go)."""
        self._counter += 1
        member = f"{id(self):x}:{self._counter}"
        try:
            wait = await self._begin(keys=[self._window_key],
                                     args=[member, round(window_s * 1_000_000), limit, IN_FLIGHT_US])
        except RedisError:
            return None
        return member if int(wait) == 0 else int(wait) / 1_000_000

    async def end(self, member: str) -> None:
        with contextlib.suppress(RedisError):  # else it stops counting after IN_FLIGHT_US
            await self._end(keys=[self._window_key], args=[member])

    def take(self) -> None:
        """The slot returned by ``next_slot`` is used."""
        if self._slots:
            self._slots.popleft()

    async def pause(self, seconds: float) -> None:
        """Telegram said "retry after": nobody's next slot comes before then."""
        self._slots.clear()
        try:
            await self._script(keys=[self.key], args=[0, 0, round(seconds * 1_000_000)])
        except RedisError:
            log.warning("shared send rate: could not share a retry_after pause")


def bot_rate_key(prefix: str, token: str) -> str:
    """One grid per bot token (its public id, never the secret part)."""
    return f"{prefix}:send-rate:{token.split(':', 1)[0]}"
