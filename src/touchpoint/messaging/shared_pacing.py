"""The bot's overall send rate shared by every process, through Redis.

Telegram counts a bot's messages per token, whichever process sends them. Each process keeps its
own pacer (RateLimiter: even spacing, each chat's interval) and, when Redis is configured, counts
its sends in one window shared by all processes, exactly as the pacer counts its own: a send
counts from the moment it is allowed until one second after it ended (Telegram saw it somewhere
in between), and no send starts while the limit of others are counted. A Lua script on Redis's
clock grants a few sends per round trip (a small batch of "in flight" entries); each send's end
moves its entry to its end time, and entries a process did not use are handed back at once.

A 429's ``retry_after`` pauses every process (a key the script honours). If Redis is unreachable
the process falls back to its own pacer alone (logged), rather than stop sending.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# KEYS: the window (sorted set: entry → when it ended, or a far deadline while in flight), the
# pause key. ARGV: window µs, limit, wanted, in-flight deadline µs, entry prefix.
# Returns {granted, wait µs}: entries prefix..1..granted were added (0 granted: wait, then ask again).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then return {0, paused - now, now} end
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local free = tonumber(ARGV[2]) - redis.call('ZCARD', KEYS[1])
if free <= 0 then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + window - now
  if wait < 500 then wait = 500 end
  return {0, wait, now}
end
local granted = math.min(free, tonumber(ARGV[3]))
for i = 1, granted do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[5] .. i)
end
redis.call('PEXPIRE', KEYS[1], math.ceil((window + tonumber(ARGV[4])) / 1000))
return {granted, 0, now}
"""
# KEYS: the window. ARGV: entry, when the send ended on Redis's clock as the process reckons it
# (never early: see SharedSlots.end). It counts for one more window from then.
_END = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ended = math.min(now, tonumber(ARGV[2]))
redis.call('ZADD', KEYS[1], 'XX', ended, ARGV[1])
return 0
"""
# KEYS: the pause key. ARGV: pause µs.
_PAUSE = """
local t = redis.call('TIME')
local until_ = tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(ARGV[1])
if until_ > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%d', until_), 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
end
return 0
"""
IN_FLIGHT_US = 30_000_000  # an entry whose process died stops counting after this long
BATCH = 4  # sends granted per round trip at most
OFFSET_FRESH_S = 30.0  # the clocks drift apart slowly: a reading older than this is replaced


class SharedSlots:
    """The per-second ceiling of one bot (``key``) over all its processes."""

    def __init__(self, redis: Redis, key: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.redis = redis
        self.key = key
        self.window_key = f"{key}:window"
        self.pause_key = f"{key}:paused"
        self._clock = clock
        self._acquire = redis.register_script(_ACQUIRE)
        self._end = redis.register_script(_END)
        self._pause = redis.register_script(_PAUSE)
        self._granted: deque[str] = deque()  # entries granted, not used yet
        self._prefix = uuid.uuid4().hex[:12]
        self._batches = 0
        self._warned = 0.0
        # Redis's clock minus ours, never less than the truth (Redis's time read after we asked):
        # the smallest of the recent readings is the closest.
        self._offset: float | None = None
        self._offset_since = 0.0

    async def acquire(self, window_s: float, limit: int, wanted: int) -> str | float | None:
        """An entry to send with (pass it to ``end`` after the send), or how long to wait before
        asking again, or None (Redis unreachable: pace locally)."""
        if self._granted:
            return self._granted.popleft()
        self._batches += 1
        prefix = f"{self._prefix}:{self._batches}:"
        count = max(1, min(wanted, BATCH))
        asked = self._clock()
        try:
            granted, wait, redis_now = await self._acquire(
                keys=[self.window_key, self.pause_key],
                args=[round(window_s * 1_000_000), limit, count, IN_FLIGHT_US, prefix])
        except RedisError:
            now = self._clock()
            if now - self._warned > 60:
                self._warned = now
                log.warning("shared send rate: Redis unreachable, pacing this process alone")
            return None
        offset = int(redis_now) / 1_000_000 - asked
        if self._offset is None or offset < self._offset or asked - self._offset_since > OFFSET_FRESH_S:
            self._offset, self._offset_since = offset, asked
        if int(granted) == 0:
            return int(wait) / 1_000_000
        self._granted.extend(f"{prefix}{i}" for i in range(1, int(granted) + 1))
        return self._granted.popleft()

    def end(self, entry: str) -> Coroutine[Any, Any, None]:
        """The send of ``entry`` ended now: it counts from this moment, not from when the returned
        call reaches Redis (a busy event loop may run it late)."""
        ended = self._clock()
        estimate = round((ended + self._offset) * 1_000_000) if self._offset is not None else 2**52
        return self._send_end(entry, estimate)

    async def _send_end(self, entry: str, estimate: int) -> None:
        with contextlib.suppress(RedisError):  # else it stops counting after IN_FLIGHT_US
            await self._end(keys=[self.window_key], args=[entry, estimate])

    async def give_back(self) -> None:
        """Nobody is waiting: the entries granted but not used stop counting."""
        if not self._granted:
            return
        unused, self._granted = list(self._granted), deque()
        with contextlib.suppress(RedisError):
            await self.redis.zrem(self.window_key, *unused)

    async def pause(self, seconds: float) -> None:
        """Telegram said "retry after": no process sends before then."""
        try:
            await self._pause(keys=[self.pause_key], args=[round(seconds * 1_000_000)])
        except RedisError:
            log.warning("shared send rate: could not share a retry_after pause")


def bot_rate_key(prefix: str, token: str) -> str:
    """One window per bot token (its public id, never the secret part)."""
    return f"{prefix}:send-rate:{token.split(':', 1)[0]}"


def group_windows(redis: Redis, bot_key: str) -> Callable[[int], SharedSlots]:
    """Each staff group's window of the bot ``bot_key`` (``bot_rate_key``), for ``GroupBudget``."""
    return lambda chat_id: SharedSlots(redis, f"{bot_key}:group:{chat_id}")
