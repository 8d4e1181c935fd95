"""Posting into staff groups under Telegram's per-group limit without dropping or reordering.

Telegram takes about 20 bot messages a minute into one group (a forum counts as one group).
Each staff group gets a FIFO queue drained by one worker that paces itself under that limit
and waits out a 429. A burst from one customer is coalesced: a text post still waiting in
the queue, and the last one for its topic, absorbs the customer's next text, so a customer
typing five lines in a row costs one post. Media are copied one by one, in their place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from touchpoint.messaging.base import ChannelRejected, ChannelRetryAfter, ChannelUnavailable

log = logging.getLogger(__name__)

TEXT_LIMIT = 4000  # Telegram's 4096, minus room for the separators
_MARGIN_S = 0.05  # our clock and Telegram's are not the same clock
_MAX_ATTEMPTS = 5


@dataclass
class Post:
    chat_id: int
    thread_id: int | None
    parts: list[str] = field(default_factory=list)  # HTML, joined by blank lines
    copy_from: tuple[int, int] | None = None  # (chat id, message id) to copy as is
    buttons: list[list[tuple[str, str]]] = field(default_factory=list)  # (label, callback data)
    coalesce_key: str | None = None  # posts with the same key may merge
    # A closed topic refuses posts (TOPIC_CLOSED): a line for a conversation already closed is
    # posted by reopening the topic for a moment; ``close_topic`` closes it, in its place in line,
    # after the posts queued before it.
    while_closed: bool = False
    close_topic: bool = False

    @property
    def text(self) -> str:
        return "\n\n".join(self.parts)

    def absorb(self, other: Post) -> bool:
        if (
            self.coalesce_key is None
            or other.coalesce_key != self.coalesce_key
            or self.copy_from is not None
            or other.copy_from is not None
            or self.close_topic
            or other.close_topic
            or self.while_closed != other.while_closed
            or other.buttons
            or len(self.text) + len(other.text) + 2 > TEXT_LIMIT
        ):
            return False
        self.parts.extend(other.parts)
        return True


class GroupSender(Protocol):
    async def post(self, post: Post) -> None:
        """Send one post; raises ChannelRetryAfter / ChannelRejected / ChannelUnavailable."""


class GroupQueue:
    def __init__(
        self,
        sender: GroupSender,
        max_posts: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.sender = sender
        self.max_posts = max_posts
        self.window_s = window_s
        self.clock = clock
        self.sleep = sleep
        self._queues: dict[int, deque[Post]] = {}
        self._sent: dict[int, deque[float]] = {}
        self._wakeup: dict[int, asyncio.Event] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def put(self, post: Post) -> None:
        queue = self._queues.setdefault(post.chat_id, deque())
        last = next((p for p in reversed(queue) if p.thread_id == post.thread_id), None)
        if last is None or not last.absorb(post):
            queue.append(post)
            self._busy += 1
            self._idle.clear()
        self._wakeup.setdefault(post.chat_id, asyncio.Event()).set()
        if post.chat_id not in self._workers:
            self._workers[post.chat_id] = asyncio.create_task(self._work(post.chat_id))

    def retarget(self, chat_id: int, old_thread: int, new_thread: int) -> None:
        """Queued posts for a topic that was replaced go to its successor."""
        for post in self._queues.get(chat_id, ()):
            if post.thread_id == old_thread:
                post.thread_id = new_thread

    async def drain(self) -> None:
        """Wait until every queued post has been sent (or given up on)."""
        await self._idle.wait()

    async def close(self) -> None:
        for task in self._workers.values():
            task.cancel()
        for task in self._workers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()

    async def _work(self, chat_id: int) -> None:
        queue, wakeup = self._queues[chat_id], self._wakeup[chat_id]
        while True:
            if not queue:
                wakeup.clear()
                await wakeup.wait()
                continue
            await self._pace(chat_id)
            post = queue.popleft()  # out of the queue: nothing merges into a post in flight
            try:
                await self._send(post)
            finally:
                self._busy -= 1
                if self._busy == 0:
                    self._idle.set()

    async def _pace(self, chat_id: int) -> None:
        sent = self._sent.setdefault(chat_id, deque())
        while True:
            now = self.clock()
            while sent and sent[0] <= now - self.window_s:
                sent.popleft()
            if len(sent) < self.max_posts:
                return
            await self.sleep(sent[0] + self.window_s - now + _MARGIN_S)

    async def _send(self, post: Post) -> None:
        attempts = 0
        while True:
            try:
                await self.sender.post(post)
            except ChannelRetryAfter as exc:
                log.info("group %s asked to wait %ss", post.chat_id, exc.retry_after)
                self._sent[post.chat_id].append(self.clock())  # it counted against the limit
                await asyncio.sleep(exc.retry_after)
                continue
            except ChannelUnavailable:
                attempts += 1
                if attempts >= _MAX_ATTEMPTS:
                    log.error("gave up posting into group %s after %s attempts", post.chat_id, attempts)
                    return
                await asyncio.sleep(min(2**attempts, 30))
                continue
            except ChannelRejected as exc:
                log.error("group %s refused a post: %s", post.chat_id, exc)
                return
            except Exception:
                log.exception("posting into group %s failed", post.chat_id)
                return
            self._sent[post.chat_id].append(self.clock())
            return
