"""Pacing outgoing messages to Telegram's limits: overall per bot, per private chat, per group."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from touchpoint.messaging.shared_pacing import SharedSlots

# How far the pacer makes up for lost time when the event loop woke it late.
CATCH_UP_STEPS = 8


@dataclass(frozen=True, slots=True)
class Pacing:
    """Telegram's limits: ~30 messages/s overall, 1/s per private chat, 20/min per group."""

    global_per_second: float = 25.0
    private_chat_interval_s: float = 1.0
    group_chat_interval_s: float = 3.0
    time_scale: float = 1.0  # >1: time runs faster (retry_after pauses shrink alike)

    def scaled(self, factor: float) -> Pacing:
        """The same limits with time running ``factor`` times faster (benchmarks, tests)."""
        return Pacing(self.global_per_second * factor, self.private_chat_interval_s / factor,
                      self.group_chat_interval_s / factor, self.time_scale * factor)


class RateLimiter:
    """Even spacing overall (a late timer is caught up, a few steps at most, but two sends are never
    less than half a step apart), never more than ``global_per_second`` within any second, and a
    minimum interval per chat counted from the end of its previous send.

    Telegram counts a request when it arrives, at some moment between our start and our end of it
    (the event loop may delay either). So a send starts only while fewer than the limit of others
    are on their way or ended within the last second: no second can hold one arrival too many.

    Waiters queue in arrival order and one pacer task lets them go, one per slot: each send costs one
    wake-up (not one per waiter per slot)."""

    def __init__(self, pacing: Pacing, clock: Callable[[], float] = time.monotonic,
                 shared: SharedSlots | None = None, chats: dict[int, float] | None = None,
                 even: bool = True) -> None:
        """``chats``: each chat's next moment, shared with another limiter of this process (the
        paid-broadcast one: a chat's interval holds whichever limiter sent its last message).
        ``even=False`` (paid broadcasts, a millisecond a step): a pacer woken late lets the sends it
        owes go at once rather than half a step apart, one event-loop turn each, which would cap
        the rate at the loop's turns a second; the per-second ceiling holds all the same."""
        self.pacing = pacing
        self._clock = clock
        self.shared = shared  # the bot's grid in Redis, shared with its other processes
        self._background: set[asyncio.Task[None]] = set()
        self._members: dict[asyncio.Future[None], str] = {}  # a send's entry in the shared window
        self._step = 1.0 / pacing.global_per_second
        self._second = 1.0 / pacing.time_scale
        self._limit = max(1, int(pacing.global_per_second * self._second))
        self._ended: deque[float] = deque()  # ends of sends within the last second
        self._in_flight = 0
        self._send_ended = asyncio.Event()
        self._queue: deque[asyncio.Future[None]] = deque()
        self._pacer: asyncio.Task[None] | None = None
        self._next_slot = 0.0  # the even grid: one step further per send
        self._not_before = 0.0  # half a step after the last send
        self._gap = self._step / 2 if even else 0.0
        self._next_per_chat: dict[int, float] = chats if chats is not None else {}
        self._paused_until = 0.0

    @property
    def chats(self) -> dict[int, float]:
        """Each chat's next moment (share it with another limiter through ``chats=``)."""
        return self._next_per_chat

    def sent_before(self, chat_id: int, seconds_ago: float) -> None:
        """The chat's previous message ended ``seconds_ago`` (perhaps in another process)."""
        interval = (self.pacing.group_chat_interval_s if chat_id < 0
                    else self.pacing.private_chat_interval_s)
        not_before = self._clock() - seconds_ago / self.pacing.time_scale + interval
        self._next_per_chat[chat_id] = max(self._next_per_chat.get(chat_id, 0.0), not_before)

    def pause(self, seconds: float) -> None:
        """Telegram said "retry after": everybody waits."""
        self._paused_until = max(self._paused_until, self._clock() + seconds / self.pacing.time_scale)
        self._next_slot = max(self._next_slot, self._paused_until)  # the time lost is not made up
        if self.shared is not None:
            self._background_call(self.shared.pause(seconds / self.pacing.time_scale))

    def _background_call(self, call: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(call)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @contextlib.asynccontextmanager
    async def slot(self, chat_id: int) -> AsyncIterator[None]:
        """Wait for the chat's interval and a global slot; send inside the block."""
        interval = (self.pacing.group_chat_interval_s if chat_id < 0
                    else self.pacing.private_chat_interval_s)
        # The chat's own wait comes first, outside the queue: a busy chat holds nobody up.
        while True:
            delay = max(self._next_per_chat.get(chat_id, 0.0), self._paused_until) - self._clock()
            if delay <= 0:
                break
            await asyncio.sleep(delay)
        waiter = asyncio.get_running_loop().create_future()
        self._queue.append(waiter)
        if self._pacer is None or self._pacer.done():
            self._pacer = asyncio.create_task(self._pace())
        try:
            await waiter  # the pacer counts this send on its way from here
            yield
        finally:
            if not waiter.done():
                waiter.cancel()  # cancelled while queued: the pacer skips it
            elif not waiter.cancelled():
                member = self._members.pop(waiter, None)
                if member is not None and self.shared is not None:
                    self._background_call(self.shared.end(member))
                self._in_flight -= 1
                self._ended.append(self._clock())
                self._send_ended.set()
            # From the end of the send: its request may reach Telegram late, the next must not be early.
            now = self._clock()
            self._next_per_chat[chat_id] = now + interval
            if len(self._next_per_chat) > 10_000:  # forget chats whose interval has passed
                for c in [c for c, t in self._next_per_chat.items() if t <= now]:
                    del self._next_per_chat[c]  # in place: another limiter may share the dict

    async def _pace(self) -> None:
        while True:
            await self._pace_queue()
            if self.shared is None:
                return
            await self.shared.give_back()  # the grants this process will not use stop counting
            if not self._queue:  # (no await between this check and the end: no waiter is stranded)
                return

    async def _pace_queue(self) -> None:
        while self._queue:
            now = self._clock()
            while self._ended and self._ended[0] <= now - self._second:
                self._ended.popleft()
            ready_at = max(self._next_slot, self._not_before, self._paused_until)
            if self._in_flight + len(self._ended) >= self._limit:
                if not self._ended:  # all on their way: wait for one to end
                    self._send_ended.clear()
                    await self._send_ended.wait()
                    continue
                ready_at = max(ready_at, self._ended[0] + self._second)  # the oldest end leaves the second
            if ready_at > now:
                await asyncio.sleep(ready_at - now)
                continue
            if self._queue[0].done():  # its task was cancelled
                self._queue.popleft()
                continue
            member = None
            if self.shared is not None:  # and the ceiling over all the bot's processes
                granted = await self.shared.acquire(self._second, self._limit, len(self._queue))
                if isinstance(granted, float):
                    await asyncio.sleep(granted)
                    continue
                member = granted
                now = self._clock()
            waiter = self._queue.popleft()
            if waiter.done():
                if member is not None and self.shared is not None:
                    self._background_call(self.shared.end(member))
                continue
            self._members[waiter] = member
            waiter.set_result(None)
            self._in_flight += 1
            # The grid moves on a step per send, so a timer woken late (the event loop was busy) is
            # caught up at half steps. It lags 8 steps at most: after an idle spell, at most 8 extra sends
            # go at half steps (twice the rate, for a moment, and within the second's limit).
            self._next_slot = max(self._next_slot, now - CATCH_UP_STEPS * self._step) + self._step
            self._not_before = now + self._gap


class GroupBudget:
    """Each group's budget, ``max_posts`` per ``window_s`` (Telegram: ~20 a minute per group), for
    the whole bot: counted in Redis with the bot's other processes when ``shared`` is given (the
    same window script as the bot's send rate, one window per group), else in this process.

    ``turn`` waits for a free place and returns the entry to hand to ``done`` after the post; a post
    counts from its turn until ``window_s`` after it ended (Telegram saw it somewhere in between)."""

    def __init__(self, max_posts: int, window_s: float, *, shared: Callable[[int], SharedSlots] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep) -> None:
        """``shared``: the group's window in Redis (a ``SharedSlots`` for a chat id)."""
        self.max_posts = max_posts
        self.window_s = window_s
        self._shared = shared
        self._windows: dict[int, SharedSlots] = {}
        self._clock = clock
        self._sleep = sleep
        self._ended: dict[int, deque[float]] = {}  # this process's posts per group that ended
        self._in_flight: dict[int, int] = {}
        self._paused_until: dict[int, float] = {}
        self._background: set[asyncio.Task[None]] = set()

    async def turn(self, chat_id: int) -> str | None:
        while True:
            wait = self._paused_until.get(chat_id, 0.0) - self._clock()
            if wait > 0:
                await self._sleep(wait)
                continue
            window = self._window(chat_id)
            if window is not None:
                granted = await window.acquire(self.window_s, self.max_posts, 1)
                if isinstance(granted, float):
                    await self._sleep(granted)
                    continue
                if granted is not None:
                    self._in_flight[chat_id] = self._in_flight.get(chat_id, 0) + 1
                    return granted
            # No Redis (or Redis unreachable): this process's own count.
            ended = self._ended.setdefault(chat_id, deque())
            now = self._clock()
            while ended and ended[0] <= now - self.window_s:
                ended.popleft()
            if self._in_flight.get(chat_id, 0) + len(ended) < self.max_posts:
                self._in_flight[chat_id] = self._in_flight.get(chat_id, 0) + 1
                return None
            await self._sleep(max(ended[0] + self.window_s - now, 0.01) if ended else 0.05)

    async def done(self, chat_id: int, entry: str | None) -> None:
        """The post ended (sent or not: Telegram may have counted it)."""
        self._in_flight[chat_id] -= 1
        self._ended.setdefault(chat_id, deque()).append(self._clock())
        window = self._window(chat_id)
        if entry is not None and window is not None:
            await window.end(entry)

    def pause(self, chat_id: int, seconds: float) -> None:
        """Telegram said "retry after" for this group: every process waits."""
        self._paused_until[chat_id] = max(self._paused_until.get(chat_id, 0.0), self._clock() + seconds)
        window = self._window(chat_id)
        if window is not None:
            task = asyncio.get_running_loop().create_task(window.pause(seconds))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _window(self, chat_id: int) -> SharedSlots | None:
        if self._shared is None:
            return None
        if chat_id not in self._windows:
            self._windows[chat_id] = self._shared(chat_id)
        return self._windows[chat_id]
