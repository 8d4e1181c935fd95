"""Log-in throttling: who is asking (behind trusted proxies) and how often they may fail.

Failures are counted per address + name (a stranger cannot lock a colleague out, only their own
address) with back-off, and per address whatever the name (a looser cap against spraying names).
The counters live in Redis when ``TOUCHPOINT_REDIS_URL`` is set, so every process counts
together, and in memory otherwise (or while Redis is unreachable). Keys are hashed: no address
or typed name is stored in the clear.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
T = TypeVar("T")


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def _trusted(hop: str, networks: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(hop)
    except ValueError:
        return False
    return any(address in network for network in networks)


def client_address(remote: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """The peer's address; behind a trusted proxy, the right-most X-Forwarded-For hop that is not
    one of ours (what our own proxy saw; anything left of it the client could have written)."""
    if not remote:
        return "unknown"
    if not trusted or not _trusted(remote, trusted):
        return remote
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop[:64]
    return hops[0][:64] if hops else remote


class Counters(Protocol):
    async def incr(self, key: str, ttl_s: float) -> int:
        """Add one; a new counter lives ``ttl_s``."""

    async def extend(self, key: str, ttl_s: float) -> None:
        """The key lives ``ttl_s`` from now (made, counting 1, if absent)."""

    async def remaining(self, key: str) -> float:
        """Seconds the key still lives (0: absent)."""

    async def delete(self, *keys: str) -> None: ...


class MemoryCounters:
    """Counters of this process only."""

    SWEEP_AT = 10_000  # entries; expired ones are dropped when there are more

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._items: dict[str, tuple[int, float]] = {}

    def _live(self, key: str) -> tuple[int, float] | None:
        item = self._items.get(key)
        if item is not None and item[1] <= self.clock():
            del self._items[key]
            return None
        return item

    async def incr(self, key: str, ttl_s: float) -> int:
        if len(self._items) > self.SWEEP_AT:
            now = self.clock()
            self._items = {k: v for k, v in self._items.items() if v[1] > now}
        item = self._live(key)
        count = (item[0] if item else 0) + 1
        self._items[key] = (count, item[1] if item else self.clock() + ttl_s)
        return count

    async def extend(self, key: str, ttl_s: float) -> None:
        item = self._live(key)
        self._items[key] = (item[0] if item else 1, self.clock() + ttl_s)

    async def remaining(self, key: str) -> float:
        item = self._live(key)
        return max(0.0, item[1] - self.clock()) if item else 0.0

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._items.pop(key, None)


_INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""
_EXTEND = """
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then redis.call('SET', KEYS[1], 1, 'PX', ARGV[1]) end
return 1
"""


class RedisCounters:
    """Counters every process shares. While Redis is unreachable this process's memory stands in,
    and Redis is tried again ``retry_s`` later (a log-in never waits on a dead Redis twice)."""

    def __init__(
        self, redis: Redis, fallback: MemoryCounters | None = None, *, retry_s: float = 30.0
    ) -> None:
        self.redis = redis
        self.fallback = fallback or MemoryCounters()
        self.retry_s = retry_s
        self._down_until = 0.0
        self._incr = redis.register_script(_INCR)
        self._extend = redis.register_script(_EXTEND)

    async def _either(self, in_redis: Callable[[], Awaitable[T]], in_memory: Callable[[], Awaitable[T]]) -> T:
        if time.monotonic() >= self._down_until:
            try:
                return await in_redis()
            except (RedisError, OSError):
                log.warning("console log-in throttle: Redis unavailable, counting in this process")
                self._down_until = time.monotonic() + self.retry_s
        return await in_memory()

    async def incr(self, key: str, ttl_s: float) -> int:
        async def in_redis() -> int:
            return int(await self._incr(keys=[key], args=[_ms(ttl_s)]))

        return await self._either(in_redis, lambda: self.fallback.incr(key, ttl_s))

    async def extend(self, key: str, ttl_s: float) -> None:
        async def in_redis() -> None:
            await self._extend(keys=[key], args=[_ms(ttl_s)])

        await self._either(in_redis, lambda: self.fallback.extend(key, ttl_s))

    async def remaining(self, key: str) -> float:
        async def in_redis() -> float:
            return max(0.0, int(await self.redis.pttl(key)) / 1000)

        return await self._either(in_redis, lambda: self.fallback.remaining(key))

    async def delete(self, *keys: str) -> None:
        async def in_redis() -> None:
            await self.redis.delete(*keys)

        await self.fallback.delete(*keys)
        await self._either(in_redis, self._nothing)

    @staticmethod
    async def _nothing() -> None:
        return None


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class LoginThrottle:
    """The one place for the log-in throttle's rules (see the module's docstring)."""

    def __init__(
        self, counters: Counters, *, attempts: int, window_s: float, address_attempts: int,
        lockout_max_s: float, prefix: str = "touchpoint",
    ) -> None:
        self.counters = counters
        self.attempts = attempts
        self.window_s = window_s
        self.address_attempts = address_attempts
        self.lockout_max_s = max(lockout_max_s, window_s)
        self.prefix = f"{prefix}:console:login"

    def _subjects(self, address: str, username: str) -> tuple[tuple[str, int], tuple[str, int]]:
        name = username.strip().lower()
        pair = hashlib.sha256(f"{address}\n{name}".encode()).hexdigest()[:32]
        addr = hashlib.sha256(address.encode()).hexdigest()[:32]
        return (f"pair:{pair}", self.attempts), (f"addr:{addr}", self.address_attempts)

    async def retry_after(self, address: str, username: str) -> float:
        """Seconds until this address may try this name again (0: now)."""
        waits = [await self.counters.remaining(f"{self.prefix}:lock:{subject}")
                 for subject, _ in self._subjects(address, username)]
        return max(waits)

    async def failed(self, address: str, username: str) -> None:
        for subject, limit in self._subjects(address, username):
            failures = await self.counters.incr(f"{self.prefix}:fails:{subject}", self.window_s)
            if failures < limit:
                continue
            # Locked: the first time for one window, then twice as long after each further failure.
            # The count is kept as long as the longest lock, so waiting it out does not reset it.
            lock_s = min(self.window_s * 2 ** min(failures - limit, 32), self.lockout_max_s)
            await self.counters.extend(f"{self.prefix}:fails:{subject}", self.lockout_max_s)
            await self.counters.extend(f"{self.prefix}:lock:{subject}", lock_s)

    async def succeeded(self, address: str, username: str) -> None:
        """The name's failures from this address are forgotten (the address's are not)."""
        (pair, _), _ = self._subjects(address, username)
        await self.counters.delete(f"{self.prefix}:fails:{pair}", f"{self.prefix}:lock:{pair}")
