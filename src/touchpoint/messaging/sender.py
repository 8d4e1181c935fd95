"""The outbox sender: claims due rows, checks the contact rules again, renders, paces and sends.

How it works: claimed rows are delivered by one task per chat (a chat's messages go one after the
other, in order; up to ``concurrency`` chats are in progress at once). Their database work is done
in group commits: one transaction writes the outcomes of the sends finished since the previous one
(delivery records, "sent", retries), then re-checks the rows about to be sent with a few set-based
queries and marks those still allowed "sending". One pacer spaces the sends (RateLimiter). So the
sender uses one database connection at a time, whatever the rate, and the bot's handlers do not
wait for the pool behind it.

Delivery semantics (see docs): a row is marked "sending" and committed *before* the channel is
called; its outcome is written by the next group commit, tens of milliseconds *after*. If the
process dies in between, the lease reaper finds the row still "sending": transactional and service
messages go back to "pending" (at-least-once: the customer may see an order update twice, never
miss it); marketing is marked failed (at-most-once: a nudge is never repeated). A crash between
claim and "sending" simply lets the lease expire and the row is retried; rows claimed but not yet
marked "sending" at shutdown are handed back at once (``release``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, tuple_, update
from sqlmodel import col

from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.customers.service import insert_ignoring_conflicts
from touchpoint.db import Database
from touchpoint.i18n import Translator, resolve_locale
from touchpoint.messaging import (
    ChannelBlocked,
    ChannelRejected,
    ChannelRetryAfter,
    ChannelUnavailable,
    OutgoingMessage,
    render,
)
from touchpoint.messaging.addresses import addresses
from touchpoint.messaging.base import Channel
from touchpoint.messaging.claim import OUTBOX, Claimed, claim_heads
from touchpoint.messaging.models import Delivery, OutboxMessage
from touchpoint.messaging.pacing import Pacing, RateLimiter
from touchpoint.messaging.rules import ContactQuestion, Lane, check_contacts, in_evening
from touchpoint.messaging.shared_pacing import SharedSlots

log = logging.getLogger(__name__)
__all__ = ["OutboxSender", "Pacing", "reap_expired_leases"]

# Called just before journey messages go out, with their enrolments: returns those whose journey
# still wants its message (an exit goal met meanwhile ends it).
EnrolmentGuard = Callable[[Any, Collection[int]], Awaitable[Collection[int]]]

# A group commit waits up to this long for more rows while chats are busy sending: ten transactions
# a second at most instead of one per message. Rows are re-checked about this long before their send.
GROUP_LINGER_S = 0.1
OUTCOME_UNKNOWN = "outcome_unknown"  # the send may or may not have reached Telegram
HELD_BACK = "behind_retry"  # a chat's later message waits for its earlier one being retried


@dataclass(slots=True)
class _Outcome:
    """What became of a send, written by the next group commit."""

    row_id: int
    values: dict[str, Any]  # outbox columns
    delivery: dict[str, Any] | None = None  # the Delivery row of a message Telegram accepted
    unreachable_customer: int | None = None  # 403: the customer blocked the bot


class OutboxSender:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        channel: Channel,
        translator: Translator,
        *,
        pacing: Pacing | None = None,
        lease: timedelta = timedelta(minutes=2),
        batch_size: int = 100,
        max_attempts: int = 5,
        concurrency: int = 32,
        enrolment_guard: EnrolmentGuard | None = None,
        shared: SharedSlots | None = None,
    ) -> None:
        """``shared``: the bot's send rate kept in Redis with its other processes (None: this
        process alone paces the bot, as with one process)."""
        self.db = db
        self.settings = settings
        self.channel = channel
        self.translate = translator
        self.limiter = RateLimiter(pacing or Pacing(), shared=shared)
        # Paid broadcasts: marketing may go faster, on a limiter of its own (the chats' intervals
        # are the same: the dict is shared), allow_paid_broadcast set on those messages.
        self.paid_limiter: RateLimiter | None = None
        if settings.paid_broadcast_rate > 0:
            free = self.limiter.pacing
            self.paid_limiter = RateLimiter(
                Pacing(settings.paid_broadcast_rate * free.time_scale, free.private_chat_interval_s,
                       free.group_chat_interval_s, free.time_scale),
                shared=SharedSlots(shared.redis, f"{shared.key}:paid") if shared is not None else None,
                chats=self.limiter.chats, even=False)
        self.lease = lease
        self.max_attempts = max_attempts
        self.enrolment_guard = enrolment_guard
        self._wake = asyncio.Event()
        self._held: set[int] = set()  # claimed, not yet re-checked: handed back on shutdown
        self._renew_at: datetime | None = None  # when the held rows' leases are half gone
        self._chats: dict[int, asyncio.Task[datetime | None]] = {}  # each chat's latest task
        self._tasks: set[asyncio.Task[datetime | None]] = set()
        self._active = 0  # chat tasks past the concurrency gate
        self._stopping = False
        # Group commits: rows waiting for their re-check, outcomes waiting to be written.
        self._requests: list[tuple[Claimed, asyncio.Future[OutgoingMessage | None]]] = []
        self._outcomes: list[_Outcome] = []
        self._committer: asyncio.Task[None] | None = None
        self._group_ready = asyncio.Event()
        fastest = max(self.limiter.pacing.global_per_second,
                      self.paid_limiter.pacing.global_per_second if self.paid_limiter else 0.0)
        self._group_size = max(1, int(fastest * GROUP_LINGER_S))
        # A chat's send takes a group commit (up to GROUP_LINGER_S) and a round trip: at a paid
        # broadcast's rate, more chats must be in progress at once, and batches claimed bigger.
        paid_fastest = fastest if self.paid_limiter is not None else 0.0
        self.batch_size = max(batch_size, int(paid_fastest * 0.5))
        self.concurrency = max(concurrency, int(paid_fastest * 0.3))
        self._slots = asyncio.Semaphore(self.concurrency)
        self._hurry = False

    def poke(self) -> None:
        """New rows may be due: drain now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, idle_poll_s: float = 1.0) -> None:
        """Deliver until ``stop``: the next batch is claimed while the current one is still sending."""
        try:
            while not stop.is_set():
                self._wake.clear()
                if self._waiting() < self.concurrency:
                    try:
                        rows = await self.claim()
                        if rows:
                            self._start(rows)
                            continue
                    except Exception:  # a database hiccup must not kill the sender
                        log.exception("outbox drain failed; retrying")
                waiters = [asyncio.ensure_future(self._wake.wait()),
                           asyncio.ensure_future(stop.wait())]
                await asyncio.wait(waiters, timeout=idle_poll_s, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
        except asyncio.CancelledError:
            for task in self._tasks:
                task.cancel()
            raise
        finally:
            # Chats finish the message in hand; the rest stay "claimed" for release().
            self._stopping = True
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._stopping = False
            await self.flush()

    async def drain_once(self) -> int:
        """Claim one batch of due rows and deliver them; returns how many were handled."""
        rows = await self.claim()
        if not rows:
            return 0
        self._start(rows)
        await asyncio.gather(*self._tasks)
        await self.flush()
        return len(rows)

    async def claim(self) -> list[Claimed]:
        """Lease a batch of due rows, in sending order, each chat taken as a whole (``claim_heads``).
        A chat whose last message went out moments ago from another process starts after its
        interval (``_respect_recent_sends``)."""
        rows = await claim_heads(self.db, staff=False, lease=self.lease, batch_size=self.batch_size)
        if rows and self.db.dialect == "postgresql":  # several processes share only PostgreSQL
            async with self.db.session() as session:
                await self._respect_recent_sends(session, {row.chat_id for row in rows}, utcnow())
        self._held.update(row.id for row in rows)
        if rows and self._renew_at is None:
            self._renew_at = utcnow() + self.lease / 2
        return rows

    async def _respect_recent_sends(self, session: Any, chats: set[int], now: datetime) -> None:
        """A chat's previous message may have gone from another process: its interval still holds."""
        longest = max(self.limiter.pacing.group_chat_interval_s, self.limiter.pacing.private_chat_interval_s)
        recent = (await session.execute(
            select(OUTBOX.c.chat_id, func.max(OUTBOX.c.sent_at))
            .where(OUTBOX.c.chat_id.in_(chats), OUTBOX.c.status == "sent",
                   OUTBOX.c.sent_at > now - timedelta(seconds=longest))
            .group_by(OUTBOX.c.chat_id))).all()
        for chat_id, sent_at in recent:
            self.limiter.sent_before(chat_id, (now - sent_at).total_seconds())

    async def release(self) -> int:
        """Write what is still in memory, then hand back the rows claimed but never marked
        "sending" (never handed to Telegram): pending again, without waiting for the lease."""
        await self.flush()
        if not self._held:
            return 0
        async with self.db.session() as session:
            result = await session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(self._held), OutboxMessage.status == "claimed")
                .values(status="pending", lease_until=None, attempts=OutboxMessage.attempts - 1)
            )
        self._held.clear()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def flush(self) -> None:
        """Write every outcome still waiting for a group commit (end of a drain, shutdown)."""
        self._hurry = True
        try:
            self._group_check()
            while self._committer is not None and not self._committer.done():
                await asyncio.wait([self._committer])
        finally:
            self._hurry = False

    # --- chats ---------------------------------------------------------------------------------

    def _waiting(self) -> int:
        """Chat tasks not yet past the concurrency gate: when few are left, claim the next batch."""
        return len(self._tasks) - self._active

    def _start(self, rows: list[Claimed]) -> None:
        by_chat: dict[int, list[Claimed]] = defaultdict(list)
        for row in rows:
            by_chat[row.chat_id].append(row)
        for chat_id, chat_rows in by_chat.items():
            # A chat already in progress (earlier batch): this batch's rows wait for it, in order.
            task = asyncio.create_task(self._deliver_chat(chat_rows, self._chats.get(chat_id)))
            self._chats[chat_id] = task
            self._tasks.add(task)
            task.add_done_callback(lambda done, chat_id=chat_id: self._chat_done(chat_id, done))

    def _chat_done(self, chat_id: int, task: asyncio.Task[datetime | None]) -> None:
        self._tasks.discard(task)
        if self._chats.get(chat_id) is task:
            del self._chats[chat_id]

    async def _deliver_chat(self, rows: list[Claimed],
                            previous: asyncio.Task[datetime | None] | None) -> datetime | None:
        """One chat's rows, in order. Returns until when a retry holds the chat back, if it does."""
        held_back = None
        if previous is not None:
            await asyncio.wait([previous])
            if not previous.cancelled() and previous.exception() is None:
                held_back = previous.result()
        async with self._slots:
            self._active += 1
            if self._waiting() < self.concurrency:
                self._wake.set()
            try:
                for row in rows:
                    if self._stopping:
                        break
                    try:
                        if held_back is not None and held_back > utcnow():
                            self._hold_back(row, held_back)
                            continue
                        message = await self._prepare(row)
                        if message is not None:
                            held_back = await self._send(row, message)
                    except Exception:
                        # Unknown trouble: leave the row to the lease reaper rather than lose it.
                        log.exception("outbox %s: delivery crashed", row.id)
            finally:
                self._active -= 1
                self._group_check()
        return held_back

    async def _send(self, row: Claimed, message: OutgoingMessage) -> datetime | None:
        """Pace and send a row marked "sending"; its outcome goes to the next group commit."""
        limiter = self.paid_limiter if message.paid_broadcast and self.paid_limiter else self.limiter
        async with limiter.slot(row.chat_id):
            try:
                result = await self.channel.send(message)
            except ChannelRetryAfter as exc:
                for paused in (self.limiter, self.paid_limiter):
                    if paused is not None:
                        paused.pause(exc.retry_after)
                return self._retry(row, timedelta(seconds=exc.retry_after), "retry_after", count=False,
                                   error=_error(exc))
            except ChannelBlocked as exc:
                self._record(row, "failed", "blocked", unreachable=True, error=_error(exc))
            except ChannelRejected as exc:
                self._record(row, "failed", f"rejected: {str(exc)[:50]}", error=_error(exc))
            except ChannelUnavailable as exc:
                return self._retry(row, timedelta(seconds=2 ** min(row.attempts, 8)), "unavailable",
                                   error=_error(exc))
            except Exception as exc:
                # Neither delivered nor refused for sure (a bug, a garbled answer): decide now what
                # the lease reaper would decide later, rather than hold the row for the lease.
                log.exception("outbox %s: send failed, outcome unknown", row.id)
                if row.lane == Lane.MARKETING.value:
                    self._record(row, "failed", OUTCOME_UNKNOWN, error=_error(exc))  # at-most-once
                    return None
                return self._retry(row, timedelta(seconds=2 ** min(row.attempts, 8)), OUTCOME_UNKNOWN,
                                   error=_error(exc))
            else:
                self._record(row, "sent", None, message_id=result.message_id)
        return None

    def _retry(self, row: Claimed, delay: timedelta, reason: str, count: bool = True,
               error: str | None = None) -> datetime | None:
        """Pending again after ``delay``; returns when, so the chat's later messages wait behind it."""
        if count and row.attempts >= self.max_attempts:
            self._record(row, "failed", f"{reason}: gave up", error=error)
            return None
        due_at = utcnow() + delay
        self._record(row, "pending", reason, due_at=due_at,
                     attempts=None if count else max(row.attempts - 1, 0), error=error)
        return due_at

    def _hold_back(self, row: Claimed, until: datetime) -> None:
        """An earlier message of this chat is being retried: this one goes after it (not an attempt)."""
        self._held.discard(row.id)
        self._record(row, "pending", HELD_BACK, due_at=until, attempts=max(row.attempts - 1, 0))

    def _record(self, row: Claimed, status: str, reason: str | None, *, due_at: datetime | None = None,
                attempts: int | None = None, message_id: int | None = None,
                unreachable: bool = False, error: str | None = None) -> None:
        """Queue a send's outcome for the next group commit. ``error`` (the channel's own words)
        goes to ``outbox.last_error``; a message that went (``sent``) or was given up on after a
        try (``failed``; ``blocked`` when the customer blocked the bot) gets its ``deliveries`` row
        with that status."""
        values: dict[str, Any] = {"status": status, "reason": reason, "lease_until": None}
        if due_at is not None:
            values["due_at"] = due_at
        if attempts is not None:
            values["attempts"] = attempts
        if error is not None:
            values["last_error"] = error
        outcome = _Outcome(row.id, values, unreachable_customer=row.customer_id if unreachable else None)
        now = utcnow()
        if status == "sent":
            values["sent_at"] = now
        if status in ("sent", "failed"):
            outcome.delivery = dict(outbox_id=row.id, customer_id=row.customer_id, chat_id=row.chat_id,
                                    telegram_message_id=message_id, card_key=row.card_key, sent_at=now,
                                    status="blocked" if unreachable else status)
        self._outcomes.append(outcome)
        self._group_check()

    # --- group commits -------------------------------------------------------------------------

    async def _prepare(self, row: Claimed) -> OutgoingMessage | None:
        """Re-check, render and mark "sending" in the next group commit; None: not to be sent now."""
        waiter: asyncio.Future[OutgoingMessage | None] = asyncio.get_running_loop().create_future()
        self._requests.append((row, waiter))
        self._group_check()
        return await waiter

    def _group_check(self) -> None:
        """A group commit will take what waits; at once if no chat in progress can add to it."""
        if not (self._requests or self._outcomes):
            return
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_groups())
        if self._hurry or len(self._requests) >= min(self._group_size, self._active):
            self._group_ready.set()

    async def _commit_groups(self) -> None:
        while self._requests or self._outcomes:
            if not (self._hurry or self._group_ready.is_set()):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(GROUP_LINGER_S):
                        await self._group_ready.wait()
            self._group_ready.clear()
            requests, self._requests = self._requests, []
            outcomes, self._outcomes = self._outcomes, []
            try:
                messages = await self._commit(outcomes, [row for row, _ in requests])
            except Exception as exc:
                for _, waiter in requests:  # those rows stay "claimed": retried after their lease
                    if not waiter.done():
                        waiter.set_exception(exc)
                await self._write_one_by_one(outcomes)
                continue
            for (_, waiter), message in zip(requests, messages, strict=True):
                if not waiter.done():
                    waiter.set_result(message)
            if outcomes:
                self._wake.set()  # a chat whose row just settled may have its next row claimable

    async def _write_one_by_one(self, outcomes: list[_Outcome]) -> None:
        """After a failed group commit: one bad outcome must not hold up the others. One that still
        fails is dropped; its row stays "sending", as after a crash (the lease reaper decides)."""
        for outcome in outcomes:
            try:
                async with self.db.session() as session:
                    await self._write_outcomes(session, [outcome])
            except Exception:
                log.exception("outbox %s: outcome not written; the lease reaper decides", outcome.row_id)

    async def _commit(self, outcomes: list[_Outcome], rows: list[Claimed]) -> list[OutgoingMessage | None]:
        """One transaction: outcomes first (the re-check sees them: a card just posted, a customer
        who just blocked the bot), then the rows about to be sent."""
        async with self.db.session() as session:
            await self._write_outcomes(session, outcomes)
            messages = await self._recheck(session, rows) if rows else []
            self._held.difference_update(row.id for row in rows)
            await self._renew_leases(session)
        return messages

    async def _renew_leases(self, session: Any) -> None:
        """Rows claimed long ago still wait for their turn (a chat with many messages goes at its
        own pace): their lease is renewed, so the reaper does not hand them to another process."""
        now = utcnow()
        if self._renew_at is None or now < self._renew_at:
            return
        self._renew_at = now + self.lease / 2 if self._held else None
        if self._held:
            await session.execute(update(OUTBOX)
                                  .where(OUTBOX.c.id.in_(self._held), OUTBOX.c.status == "claimed")
                                  .values(lease_until=now + self.lease))

    @staticmethod
    async def _write_outcomes(session: Any, outcomes: list[_Outcome]) -> None:
        if deliveries := [o.delivery for o in outcomes if o.delivery is not None]:
            # A row re-sent after its lease expired may already have its delivery: keep the first.
            await session.execute(insert_ignoring_conflicts(session, Delivery), deliveries)
        if unreachable := {o.unreachable_customer for o in outcomes if o.unreachable_customer is not None}:
            await session.execute(update(Customer).where(col(Customer.id).in_(unreachable))
                                  .values(reachable=False))
        await _update_rows(session, {o.row_id: o.values for o in outcomes})

    async def _recheck(self, session: Any, rows: list[Claimed]) -> list[OutgoingMessage | None]:
        """The rules again, just before sending (things change while a message waits), for a group
        of rows in a few queries. Skips and delays are written; the rest are rendered and marked
        "sending" in this same transaction, so the reaper can tell "never tried" from "maybe sent"."""
        now = utcnow()
        decided: dict[int, dict[str, Any]] = {}  # row id → the columns of a skip or delay

        def decide(row: Claimed, status: str, reason: str, due_at: datetime | None = None) -> None:
            decided[row.id] = {"status": status, "reason": reason, "lease_until": None,
                               **({"due_at": due_at} if due_at is not None else {})}

        for row in rows:
            if row.expires_at is not None and row.expires_at <= now:
                decide(row, "skipped", "expired")
        guarded = {row.enrolment_id for row in rows if row.enrolment_id is not None and row.id not in decided}
        if guarded and self.enrolment_guard is not None:
            live = set(await self.enrolment_guard(session, guarded))
            for row in rows:
                if row.enrolment_id in guarded and row.enrolment_id not in live and row.id not in decided:
                    decide(row, "skipped", "journey_exited")
        customer_ids = {row.customer_id for row in rows
                        if row.customer_id is not None and row.id not in decided}
        customers = {c.id: c for c in (await session.execute(
            select(Customer).where(col(Customer.id).in_(customer_ids)))).scalars()} if customer_ids else {}
        judged = [row for row in rows if row.id not in decided and row.customer_id in customers]
        questions = [ContactQuestion(customers[row.customer_id], Lane(row.lane), row.template,
                                     wait_for_quiet_hours=row.reason == "quiet_hours"
                                     or row.lane != Lane.TRANSACTIONAL, exclude_outbox_id=row.id)
                     for row in judged]
        verdicts = await check_contacts(session, self.settings, questions, now)
        for row, verdict in zip(judged, verdicts, strict=True):
            if verdict.action == "skip":
                decide(row, "skipped", verdict.reason or "rules")
            elif verdict.action == "delay":
                decide(row, "pending", verdict.reason or "delayed", verdict.not_before)
        cards = await self._card_message_ids(
            session, [row for row in rows if row.id not in decided and row.edit_in_place])
        extras = await addresses(session, {row.chat_id for row in rows if row.id not in decided})
        messages: list[OutgoingMessage | None] = []
        for row in rows:
            message = None
            if row.id not in decided:
                try:
                    message = self._render(row, customers.get(row.customer_id), cards, now,
                                           extras.get(row.chat_id, {}))
                except Exception:  # left "claimed": the lease reaper retries it, as after a crash
                    log.exception("outbox %s: rendering failed", row.id)
            messages.append(message)
        await _update_rows(session, decided)
        if sending := [row for row, message in zip(rows, messages, strict=True) if message is not None]:
            # Still ours? A row whose lease ran out may have been handed to another process (its
            # claim counted one more attempt): that process sends it, not this one.
            ours = set((await session.execute(
                update(OUTBOX).where(tuple_(OUTBOX.c.id, OUTBOX.c.attempts).in_(
                    [(row.id, row.attempts) for row in sending]), OUTBOX.c.status == "claimed")
                .values(status="sending").returning(OUTBOX.c.id))).scalars())
            if len(ours) < len(sending):
                log.warning("outbox: %d row(s) taken over after their lease ran out",
                            len(sending) - len(ours))
                messages = [message if message is None or row.id in ours else None
                            for row, message in zip(rows, messages, strict=True)]
        return messages

    def _render(self, row: Claimed, customer: Customer | None,
                cards: dict[tuple[int, str | None], int | None], now: datetime,
                extra: dict[str, object]) -> OutgoingMessage:
        locale = (resolve_locale(customer.locale, customer.language_code, self.settings.default_locale)
                  if customer else self.settings.default_locale)
        rendered = render(self.translate, locale, row.template, row.params)
        silent = row.lane == Lane.MARKETING.value and customer is not None and in_evening(
            now, customer.timezone, self.settings.quiet_hours_start)
        return OutgoingMessage(
            chat_id=row.chat_id, text=rendered.text, buttons=rendered.buttons,
            disable_notification=silent or row.edit_in_place,
            edit_message_id=cards.get((row.chat_id, row.card_key)) if row.edit_in_place else None,
            paid_broadcast=self.paid_limiter is not None and row.lane == Lane.MARKETING.value,
            extra=extra, addressed=True,
        )

    @staticmethod
    async def _card_message_ids(session: Any,
                                rows: list[Claimed]) -> dict[tuple[int, str | None], int | None]:
        """The message of each live card to edit, if the card was sent before (its latest delivery)."""
        keyed = [row for row in rows if row.card_key is not None]
        if not keyed:
            return {}
        query = (select(Delivery.chat_id, Delivery.card_key, Delivery.telegram_message_id)
                 .where(col(Delivery.card_key).in_({row.card_key for row in keyed}),
                        col(Delivery.chat_id).in_({row.chat_id for row in keyed}),
                        Delivery.status == "sent")  # a failed send left no message to edit
                 .order_by(col(Delivery.id)))
        return {(chat_id, card_key): message_id  # ordered by id: the latest one wins
                for chat_id, card_key, message_id in (await session.execute(query)).all()}


def _error(exc: BaseException) -> str:
    """What the channel said, for ``outbox.last_error`` (kept short; never a stack trace)."""
    return f"{type(exc).__name__}: {exc}"[:500]


async def _update_rows(session: Any, changes: dict[int, dict[str, Any]]) -> None:
    """Per-row values for many outbox rows: one executemany per set of columns."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row_id, values in changes.items():
        by_columns[tuple(sorted(values))].append(
            {"row_id": row_id, **{f"new_{column}": value for column, value in values.items()}})
    for columns, params in by_columns.items():
        statement = (update(OUTBOX).where(OUTBOX.c.id == bindparam("row_id"))
                     .values({column: bindparam(f"new_{column}") for column in columns}))
        await session.execute(statement, params)


async def reap_expired_leases(db: Database) -> int:
    """Rows whose sender died: claimed → retry; sending → retry unless marketing (at-most-once)."""
    now = utcnow()
    expired = and_(OutboxMessage.lease_until.is_not(None), OutboxMessage.lease_until < now)  # type: ignore[union-attr]
    async with db.session() as session:
        retried = await session.execute(
            update(OutboxMessage)
            .where(expired, or_(OutboxMessage.status == "claimed",
                                and_(OutboxMessage.status == "sending",
                                     OutboxMessage.lane != Lane.MARKETING.value)))
            .values(status="pending", lease_until=None, reason="lease_expired")
        )
        dropped = await session.execute(
            update(OutboxMessage)
            .where(expired, OutboxMessage.status == "sending", OutboxMessage.lane == Lane.MARKETING.value)
            .values(status="failed", lease_until=None, reason=OUTCOME_UNKNOWN)
        )
    return int(retried.rowcount or 0) + int(dropped.rowcount or 0)
