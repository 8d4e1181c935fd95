"""The staff lane: posts into staff groups (handoff relay, context cards, status lines, reservation
notes, alerts) through the durable outbox, in order per group, under the group's budget.

A post is an outbox row (lane ``staff``, the group as its chat) written in the caller's transaction,
so once the update that caused it is marked handled the post is on disk. The lane's drainer claims a
group's due rows as a whole (the same head-of-chat rule as every other chat: one process works a
group at a time, in queue order), merges a burst waiting there (a customer's consecutive text lines
for one topic become one post, within Telegram's 4096 characters; media stay in their place) and
hands each post to a :class:`GroupPoster` (the bot's staff desk) under the group's budget, shared by
all processes (:class:`~touchpoint.messaging.pacing.GroupBudget`).

Delivery is at-least-once: the rows of a post are marked "sending" before it goes and "sent" after;
a process that dies in between leaves them "sending", and the lease reaper hands them back, so the
post may show twice in the topic but is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import delete, event, func, select, tuple_, update
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.clock import utcnow
from touchpoint.db import Database
from touchpoint.messaging.base import ChannelRejected, ChannelRetryAfter, ChannelUnavailable
from touchpoint.messaging.claim import IN_FLIGHT, OUTBOX, Claimed, claim_heads
from touchpoint.messaging.models import OutboxMessage
from touchpoint.messaging.pacing import GroupBudget
from touchpoint.messaging.rules import Lane

log = logging.getLogger(__name__)

TEXT_LIMIT = 4000  # Telegram's 4096, minus room for the separators
TEMPLATE = "staff.post"  # staff rows carry their text ready-made, in the staff language
MAX_ATTEMPTS = 5


@dataclass
class StaffPost:
    """One post into a staff group. ``conversation_id``: the post belongs to that conversation's
    topic, whichever it is when the post goes (a deleted topic is replaced); otherwise
    ``thread_id`` (None: the group's general chat)."""

    chat_id: int
    thread_id: int | None = None
    parts: list[str] = field(default_factory=list)  # HTML, joined by blank lines
    copy_from: tuple[int, int] | None = None  # (chat id, message id) to copy as is
    buttons: list[list[tuple[str, str]]] = field(default_factory=list)  # (label, callback data)
    coalesce_key: str | None = None  # posts with the same key may merge
    # A closed topic refuses posts (TOPIC_CLOSED): a line for a conversation already closed is
    # posted by reopening the topic for a moment; ``close_topic`` closes it, in its place in line.
    while_closed: bool = False
    close_topic: bool = False
    conversation_id: int | None = None
    row_ids: list[int] = field(default_factory=list)  # the outbox rows this post sends

    @property
    def text(self) -> str:
        return "\n\n".join(self.parts)

    @property
    def place(self) -> tuple[int | None, int | None]:
        return self.conversation_id, self.thread_id

    def absorb(self, other: StaffPost) -> bool:
        """Take ``other``'s lines if both are plain text of one burst and fit in one message."""
        if (
            self.coalesce_key is None
            or other.coalesce_key != self.coalesce_key
            or other.place != self.place
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
        self.row_ids.extend(other.row_ids)
        return True

    def params(self) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id, "parts": self.parts,
            "copy_from": list(self.copy_from) if self.copy_from else None,
            "buttons": [[list(button) for button in row] for row in self.buttons],
            "coalesce_key": self.coalesce_key, "while_closed": self.while_closed,
            "close_topic": self.close_topic, "conversation_id": self.conversation_id,
        }

    @classmethod
    def from_row(cls, row: Claimed) -> StaffPost:
        p = row.params
        return cls(
            row.chat_id, p.get("thread_id"), list(p.get("parts") or []),
            tuple(p["copy_from"]) if p.get("copy_from") else None,  # type: ignore[arg-type]
            [[(label, data) for label, data in line] for line in p.get("buttons") or []],
            p.get("coalesce_key"), bool(p.get("while_closed")), bool(p.get("close_topic")),
            p.get("conversation_id"), [row.id],
        )


def enqueue_staff_post(session: AsyncSession, post: StaffPost) -> OutboxMessage:
    """Queue ``post`` in the caller's transaction: it is durable when the caller commits."""
    now = utcnow()
    row = OutboxMessage(chat_id=post.chat_id, lane=Lane.STAFF.value, priority=Lane.STAFF.priority,
                        template=TEMPLATE, params=post.params(), due_at=now, created_at=now)
    session.add(row)
    return row


def when_committed(session: AsyncSession, callback: Any) -> None:
    """Call ``callback()`` once the session's current transaction commits (wake the drainer)."""
    event.listen(session.sync_session, "after_commit", lambda _session: callback(), once=True)


def coalesce(rows: Iterable[Claimed]) -> list[StaffPost]:
    """A group's claimed rows as posts, in order: a post still to go absorbs the next line of the
    same burst for its topic (lines for other topics in between do not stop it)."""
    posts: list[StaffPost] = []
    for row in rows:
        post = StaffPost.from_row(row)
        last = next((p for p in reversed(posts) if p.place == post.place), None)
        if last is None or not last.absorb(post):
            posts.append(post)
    return posts


class GroupPoster(Protocol):
    async def post(self, post: StaffPost) -> None:
        """Send one post; raises ChannelRetryAfter / ChannelRejected / ChannelUnavailable."""


class StaffLane:
    """Drains the staff lane: one task per group at a time, each group's posts in order."""

    def __init__(self, db: Database, poster: GroupPoster, budget: GroupBudget, *,
                 lease: timedelta = timedelta(minutes=2), batch_size: int = 200) -> None:
        self.db = db
        self.poster = poster
        self.budget = budget
        self.lease = lease
        self.batch_size = batch_size
        self._wake = asyncio.Event()
        self._groups: dict[int, asyncio.Task[None]] = {}
        self._held: set[int] = set()  # claimed, never marked "sending": handed back on stop

    def poke(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event, idle_poll_s: float = 1.0) -> None:
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    self._start(await self.claim())
                except Exception:  # a database hiccup must not stop the lane
                    log.exception("staff lane: claim failed; retrying")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(idle_poll_s):
                        await _first(self._wake.wait(), stop.wait())
        finally:
            for task in self._groups.values():
                task.cancel()
            await asyncio.gather(*self._groups.values(), return_exceptions=True)
            await self.release()

    async def claim(self) -> list[Claimed]:
        """The due rows of groups nobody is working on (heads first: see ``claim_heads``)."""
        rows = await claim_heads(self.db, staff=True, lease=self.lease, batch_size=self.batch_size)
        self._held.update(row.id for row in rows)
        return rows

    async def release(self) -> int:
        """Rows claimed but never handed to Telegram go back at once (not after the lease)."""
        if not self._held:
            return 0
        held, self._held = list(self._held), set()
        async with self.db.session() as session:
            result = await session.execute(
                update(OUTBOX).where(OUTBOX.c.id.in_(held), OUTBOX.c.status == "claimed")
                .values(status="pending", lease_until=None, attempts=OUTBOX.c.attempts - 1))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def idle(self, timeout: float = 30.0) -> None:
        """Wait until no staff post waits or is in flight (tests, tools)."""
        async with asyncio.timeout(timeout):
            while True:
                self.poke()
                async with self.db.session() as session:
                    left = (await session.execute(
                        select(func.count()).select_from(OUTBOX).where(
                            OUTBOX.c.lane == Lane.STAFF.value,
                            OUTBOX.c.status.in_(("pending", *IN_FLIGHT))))).scalar_one()
                if not left and not self._groups:
                    return
                await asyncio.sleep(0.05)

    def _start(self, rows: list[Claimed]) -> None:
        by_group: dict[int, list[Claimed]] = defaultdict(list)
        for row in rows:
            by_group[row.chat_id].append(row)
        for chat_id, group_rows in by_group.items():
            task = asyncio.create_task(self._deliver_group(chat_id, group_rows, self._groups.get(chat_id)))
            self._groups[chat_id] = task
            task.add_done_callback(lambda done, chat_id=chat_id: self._group_done(chat_id, done))

    def _group_done(self, chat_id: int, task: asyncio.Task[None]) -> None:
        if self._groups.get(chat_id) is task:
            del self._groups[chat_id]
        self._wake.set()  # the group's next rows are claimable now

    async def _deliver_group(self, chat_id: int, rows: list[Claimed],
                             previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        posts = coalesce(rows)
        attempts = {row.id: row.attempts for row in rows}
        for index, post in enumerate(posts):
            waiting = [row_id for later in posts[index + 1:] for row_id in later.row_ids]
            try:
                turn = await self.budget.turn(chat_id)
                # "sending" before the post goes; the rest of the batch keeps its lease meanwhile.
                if not await self._mark({row_id: attempts[row_id] for row_id in post.row_ids}, waiting):
                    await self.budget.done(chat_id, turn)
                    log.warning("staff lane: group %s taken over after its lease ran out", chat_id)
                    self._held.difference_update(waiting)
                    return
                try:
                    await self.poster.post(post)
                finally:
                    await self.budget.done(chat_id, turn)
            except ChannelRetryAfter as exc:
                log.info("group %s asked to wait %ss", chat_id, exc.retry_after)
                self.budget.pause(chat_id, exc.retry_after)
                await self._later(post.row_ids + waiting, exc.retry_after, "retry_after")
                return
            except ChannelUnavailable as exc:
                if max(attempts[row_id] for row_id in post.row_ids) >= MAX_ATTEMPTS:
                    log.error("gave up posting into group %s: %s", chat_id, exc)
                    await self._settle(post.row_ids, "failed", "unavailable: gave up")
                    continue
                delay = 2 ** min(max(attempts[row_id] for row_id in post.row_ids), 5)
                await self._later(post.row_ids + waiting, delay, "unavailable", count=True)
                return
            except ChannelRejected as exc:
                log.error("group %s refused a post: %s", chat_id, exc)
                await self._settle(post.row_ids, "failed", f"rejected: {str(exc)[:50]}")
                continue
            except asyncio.CancelledError:
                raise
            except Exception:  # left "sending": the lease reaper hands it back (at-least-once)
                log.exception("staff post into group %s failed", chat_id)
                self._held.difference_update(waiting)
                return
            await self._settle(post.row_ids, "sent", None)

    async def _mark(self, sending: dict[int, int], waiting: list[int]) -> bool:
        """Mark a post's rows "sending" and renew the lease of the rest; False if they are no longer
        ours (the lease ran out and another process claimed them: one more attempt on record)."""
        async with self.db.session() as session:
            ours = (await session.execute(
                update(OUTBOX).where(tuple_(OUTBOX.c.id, OUTBOX.c.attempts).in_(list(sending.items())),
                                     OUTBOX.c.status == "claimed")
                .values(status="sending", lease_until=utcnow() + self.lease).returning(OUTBOX.c.id))).all()
            if len(ours) < len(sending):
                await session.rollback()
                return False
            if waiting:
                await session.execute(
                    update(OUTBOX).where(OUTBOX.c.id.in_(waiting), OUTBOX.c.status == "claimed")
                    .values(lease_until=utcnow() + self.lease))
        self._held.difference_update(sending)
        return True

    async def _settle(self, row_ids: list[int], status: str, reason: str | None) -> None:
        now = utcnow()
        async with self.db.session() as session:
            await session.execute(update(OUTBOX).where(OUTBOX.c.id.in_(row_ids)).values(
                status=status, reason=reason, lease_until=None,
                sent_at=now if status == "sent" else None))

    async def _later(self, row_ids: list[int], delay: float, reason: str, count: bool = False) -> None:
        """Back to pending after ``delay``, all of them at the same moment: they keep their order."""
        values: dict[str, Any] = dict(status="pending", reason=reason, lease_until=None,
                                      due_at=utcnow() + timedelta(seconds=delay))
        if not count:
            values["attempts"] = OUTBOX.c.attempts - 1  # a wait is not an attempt
        async with self.db.session() as session:
            await session.execute(update(OUTBOX).where(OUTBOX.c.id.in_(row_ids)).values(**values))
        self._held.difference_update(row_ids)


async def prune_staff_posts(db: Database, kept: timedelta = timedelta(days=2)) -> int:
    """Settled staff posts older than ``kept`` go: they hold customers' words, and the transcript
    keeps the conversation."""
    async with db.session() as session:
        result = await session.execute(delete(OUTBOX).where(
            OUTBOX.c.lane == Lane.STAFF.value, OUTBOX.c.status.in_(("sent", "failed")),
            OUTBOX.c.created_at < utcnow() - kept))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def _first(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
