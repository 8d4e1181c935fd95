"""Several processes of one bot share its send rate through Redis: together they keep the rate,
the per-second ceiling and a 429 pause, as one process does alone."""

from __future__ import annotations

import asyncio
import bisect
import time

from redis.asyncio import Redis

from tests.production import redis_prefix
from touchpoint.messaging.pacing import Pacing, RateLimiter
from touchpoint.messaging.shared_pacing import SharedSlots, bot_rate_key

RATE = 200.0  # sends per second, for the bot as a whole


async def _drain(limiter: RateLimiter, chats: range, sent: list[float]) -> None:
    async def one(chat: int) -> None:
        async with limiter.slot(chat):
            sent.append(time.monotonic())
            await asyncio.sleep(0.001)  # the request on its way

    await asyncio.gather(*(one(chat) for chat in chats))


async def test_three_processes_keep_the_bot_rate_together() -> None:
    async with redis_prefix() as (url, prefix):
        await _three_processes(url, bot_rate_key(prefix, "123456:secret"))


async def _three_processes(url: str, key: str) -> None:
    clients = [Redis.from_url(url) for _ in range(3)]  # one connection pool per "process"
    limiters = [RateLimiter(Pacing(global_per_second=RATE), shared=SharedSlots(client, key))
                for client in clients]
    sent: list[float] = []
    try:
        started = time.monotonic()
        await asyncio.gather(*(_drain(limiter, range(i * 1000, i * 1000 + 100), sent)
                               for i, limiter in enumerate(limiters)))
        elapsed = time.monotonic() - started
    finally:
        for client in clients:
            await client.aclose()
    sent.sort()
    assert len(sent) == 300
    # Each process alone may send RATE a second: together, never more than RATE within any second
    # (so the 300 took more than a second), and not much less either.
    assert max(bisect.bisect_left(sent, at + 1.0) - i for i, at in enumerate(sent)) <= RATE
    assert elapsed > 1.0
    assert 300 / elapsed >= RATE * 0.75


async def test_a_retry_after_pauses_every_process() -> None:
    async with redis_prefix() as (url, prefix):
        await _pause_shared(url, bot_rate_key(prefix, "123456:secret"))


async def _pause_shared(url: str, key: str) -> None:
    first, second = Redis.from_url(url), Redis.from_url(url)
    try:
        one = RateLimiter(Pacing(global_per_second=RATE), shared=SharedSlots(first, key))
        other = RateLimiter(Pacing(global_per_second=RATE), shared=SharedSlots(second, key))
        one.pause(0.5)  # Telegram told this process to retry after half a second
        await asyncio.sleep(0.05)  # the pause reaches Redis
        started = time.monotonic()
        async with other.slot(1):
            waited = time.monotonic() - started
    finally:
        await first.aclose()
        await second.aclose()
    assert waited >= 0.35
