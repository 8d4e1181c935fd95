"""Flood control shared by every bot process: the same sliding window as MemoryFloodGate, in Redis.

One Lua script per check keeps "count, maybe mute" atomic across processes, and Redis's own
clock (TIME) keeps the window the same whatever each host's clock says. If Redis is down the
gate lets messages through: flood control must never silence the bot.
"""

from __future__ import annotations

import logging
import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError

from touchpoint.channels.flood import FloodVerdict

log = logging.getLogger(__name__)

# KEYS: window (sorted set of arrival times), mute flag. ARGV: window µs, max, mute ms, member.
# Returns 0 = drop (muted), 1 = allow, 2 = warn (first message over the limit, now muted).
_CHECK = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
if redis.call('ZCARD', KEYS[1]) <= tonumber(ARGV[2]) then return 1 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
redis.call('DEL', KEYS[1])
return 2
"""
_VERDICTS = {0: FloodVerdict.DROP, 1: FloodVerdict.ALLOW, 2: FloodVerdict.WARN}


class RedisFloodGate:
    """Sliding window per chat user, for any number of bot processes."""

    def __init__(
        self, redis: Redis, max_messages: int, window_s: float, mute_s: float,
        *, prefix: str = "touchpoint",
    ) -> None:
        self.redis = redis
        self.max_messages = max_messages
        self.window_us = int(window_s * 1_000_000)
        self.mute_ms = max(1, int(mute_s * 1000))
        self.prefix = prefix
        self._script = redis.register_script(_CHECK)

    async def check(self, user_id: int) -> FloodVerdict:
        keys = [f"{self.prefix}:flood:{user_id}:window", f"{self.prefix}:flood:{user_id}:muted"]
        try:
            code = await self._script(
                keys=keys, args=[self.window_us, self.max_messages, self.mute_ms, uuid.uuid4().hex]
            )
        except (RedisError, OSError):
            log.warning("flood gate: Redis unavailable, letting the message through")
            return FloodVerdict.ALLOW
        return _VERDICTS[int(code)]
