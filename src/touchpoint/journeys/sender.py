"""The outbox sender: claims due rows, checks the contact rules again, renders, paces and sends.

Delivery semantics (see docs): a row is marked "sending" and committed *before* the channel is
called. If the process dies during the call, the lease reaper finds the row still "sending":
transactional and service messages go back to "pending" (at-least-once: the customer may see an
order update twice, never miss it); marketing is marked failed (at-most-once: a nudge is never
repeated). A crash between claim and "sending" simply lets the lease expire and the row is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlmodel import col

from touchpoint.channels import (
    ChannelBlocked,
    ChannelRejected,
    ChannelRetryAfter,
    ChannelUnavailable,
    OutgoingMessage,
    render,
)
from touchpoint.channels.all_templates import load_all_templates
from touchpoint.channels.base import Channel
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.db import Database
from touchpoint.i18n import Translator, resolve_locale
from touchpoint.journeys.models import Delivery, OutboxMessage
from touchpoint.journeys.rules import Lane, check_contact, in_evening

log = logging.getLogger(__name__)

# Called just before a journey message goes out: False means the journey ended (exit goal met).
EnrolmentGuard = Callable[[Any, int], Awaitable[bool]]


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
    """A global token-free pacer (even spacing) plus a minimum interval per chat."""

    def __init__(self, pacing: Pacing, clock: Callable[[], float] = time.monotonic) -> None:
        self.pacing = pacing
        self._clock = clock
        self._next_global = 0.0
        self._next_per_chat: dict[int, float] = {}
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        """Telegram said "retry after": everybody waits."""
        self._paused_until = max(self._paused_until, self._clock() + seconds / self.pacing.time_scale)

    async def acquire(self, chat_id: int) -> None:
        interval = (self.pacing.group_chat_interval_s if chat_id < 0
                    else self.pacing.private_chat_interval_s)
        while True:
            async with self._lock:
                now = self._clock()
                ready_at = max(self._next_global, self._next_per_chat.get(chat_id, 0.0),
                               self._paused_until)
                if ready_at <= now:
                    self._next_global = now + 1.0 / self.pacing.global_per_second
                    self._next_per_chat[chat_id] = now + interval
                    return
            await asyncio.sleep(ready_at - now)


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
    ) -> None:
        load_all_templates()
        self.db = db
        self.settings = settings
        self.channel = channel
        self.translate = translator
        self.limiter = RateLimiter(pacing or Pacing())
        self.lease = lease
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.enrolment_guard = enrolment_guard
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._held: frozenset[int] = frozenset()  # the current batch, handed back on shutdown

    def poke(self) -> None:
        """New rows may be due: drain now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, idle_poll_s: float = 1.0) -> None:
        while not stop.is_set():
            try:
                sent = await self.drain_once()
            except Exception:  # a database hiccup must not kill the sender
                log.exception("outbox drain failed; retrying")
                sent = 0
            if sent == 0:
                self._wake.clear()
                waiters = [asyncio.ensure_future(self._wake.wait()),
                           asyncio.ensure_future(stop.wait())]
                await asyncio.wait(waiters, timeout=idle_poll_s, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()

    async def drain_once(self) -> int:
        """Claim one batch of due rows and deliver them; returns how many were handled."""
        rows = await self.claim()
        if not rows:
            return 0
        by_chat: dict[int, list[OutboxMessage]] = defaultdict(list)
        for row in rows:
            by_chat[row.chat_id].append(row)
        # One task per chat keeps each chat's messages in order; chats proceed in parallel.
        await asyncio.gather(*(self._deliver_chat(chat_rows) for chat_rows in by_chat.values()))
        return len(rows)

    async def claim(self) -> list[OutboxMessage]:
        now = utcnow()
        due = (
            select(OutboxMessage.id)
            .where(OutboxMessage.status == "pending", OutboxMessage.due_at <= now)
            .order_by(OutboxMessage.priority, OutboxMessage.due_at, OutboxMessage.id)
            .limit(self.batch_size)
        )
        if self.db.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        claim = (
            update(OutboxMessage)
            .where(col(OutboxMessage.id).in_(due.scalar_subquery()))
            .values(status="claimed", lease_until=now + self.lease,
                    attempts=OutboxMessage.attempts + 1)
            .returning(OutboxMessage)
        )
        async with self.db.session() as session:
            result = await session.execute(select(OutboxMessage).from_statement(claim))
            rows = list(result.scalars().all())
        self._held = frozenset(row.id for row in rows if row.id is not None)
        return sorted(rows, key=lambda r: (r.priority, r.due_at, r.id or 0))

    async def release(self) -> int:
        """Rows of the last batch still only "claimed" were never handed to Telegram: pending again."""
        if not self._held:
            return 0
        async with self.db.session() as session:
            result = await session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(self._held), OutboxMessage.status == "claimed")
                .values(status="pending", lease_until=None, attempts=OutboxMessage.attempts - 1)
            )
        self._held = frozenset()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def _deliver_chat(self, rows: list[OutboxMessage]) -> None:
        async with self._slots:
            for row in rows:
                try:
                    await self._deliver(row)
                except Exception:
                    # Unknown trouble: leave the row to the lease reaper rather than lose it.
                    log.exception("outbox %s: delivery crashed", row.id)

    async def _deliver(self, row: OutboxMessage) -> None:
        assert row.id is not None
        async with self.db.session() as session:
            customer = await session.get(Customer, row.customer_id) if row.customer_id else None
            decision = await self._recheck(session, row, customer)
            if decision is not None:
                status, reason, due_at = decision
                await self._finish(session, row.id, status, reason, due_at=due_at)
                return
            locale = (resolve_locale(customer.locale, customer.language_code,
                                     self.settings.default_locale)
                      if customer else self.settings.default_locale)
            rendered = render(self.translate, locale, row.template, row.params)
            edit_id = await self._card_message_id(session, row) if row.edit_in_place else None
            silent = row.lane == Lane.MARKETING.value and customer is not None and in_evening(
                utcnow(), customer.timezone, self.settings.quiet_hours_start)
            message = OutgoingMessage(
                chat_id=row.chat_id, text=rendered.text, buttons=rendered.buttons,
                disable_notification=silent or row.edit_in_place, edit_message_id=edit_id,
            )
            # Recorded before the call (in the re-check's own transaction, one round trip less):
            # the reaper can tell "never tried" from "maybe sent". A crash while pacing below
            # counts as "maybe sent" — still at-most-once for marketing, at-least-once otherwise.
            await self._set(session, row.id, status="sending")
        await self.limiter.acquire(row.chat_id)
        try:
            result = await self.channel.send(message)
        except ChannelRetryAfter as exc:
            self.limiter.pause(exc.retry_after)
            await self._retry(row, timedelta(seconds=exc.retry_after), "retry_after", count=False)
        except ChannelBlocked:
            async with self.db.session() as session:
                if customer is not None:
                    await session.exec(update(Customer).where(Customer.id == customer.id)  # type: ignore[call-overload]
                                       .values(reachable=False))
                await self._finish(session, row.id, "failed", "blocked")
        except ChannelRejected as exc:
            async with self.db.session() as session:
                await self._finish(session, row.id, "failed", f"rejected: {str(exc)[:50]}")
        except ChannelUnavailable:
            await self._retry(row, timedelta(seconds=2 ** min(row.attempts, 8)), "unavailable")
        else:
            async with self.db.session() as session:
                session.add(Delivery(outbox_id=row.id, customer_id=row.customer_id,
                                     chat_id=row.chat_id, telegram_message_id=result.message_id,
                                     card_key=row.card_key, sent_at=utcnow()))
                await self._finish(session, row.id, "sent", None, sent=True)

    async def _recheck(
        self, session: Any, row: OutboxMessage, customer: Customer | None
    ) -> tuple[str, str, Any] | None:
        """The rules again, just before sending: things change while a message waits."""
        now = utcnow()
        if row.expires_at is not None and row.expires_at <= now:
            return "skipped", "expired", None
        if row.enrolment_id is not None and self.enrolment_guard is not None and not (
            await self.enrolment_guard(session, row.enrolment_id)
        ):
            return "skipped", "journey_exited", None
        if customer is None:
            return None
        verdict = await check_contact(
            session, self.settings, customer, Lane(row.lane), now, template=row.template,
            wait_for_quiet_hours=row.reason == "quiet_hours" or row.lane != Lane.TRANSACTIONAL,
            exclude_outbox_id=row.id,
        )
        if verdict.action == "skip":
            return "skipped", verdict.reason or "rules", None
        if verdict.action == "delay":
            return "pending", verdict.reason or "delayed", verdict.not_before
        return None

    async def _card_message_id(self, session: Any, row: OutboxMessage) -> int | None:
        """The message of the live card to edit, if this card was sent before."""
        if row.card_key is None:
            return None
        query = (select(Delivery.telegram_message_id)
                 .where(Delivery.chat_id == row.chat_id, Delivery.card_key == row.card_key)
                 .order_by(col(Delivery.id).desc()).limit(1))
        return (await session.execute(query)).scalar_one_or_none()

    async def _retry(self, row: OutboxMessage, delay: timedelta, reason: str, count: bool = True) -> None:
        assert row.id is not None
        async with self.db.session() as session:
            if count and row.attempts >= self.max_attempts:
                await self._finish(session, row.id, "failed", f"{reason}: gave up")
                return
            await self._set(session, row.id, status="pending", reason=reason,
                            due_at=utcnow() + delay, lease_until=None,
                            **({} if count else {"attempts": max(row.attempts - 1, 0)}))

    async def _finish(self, session: Any, row_id: int, status: str, reason: str | None,
                      *, due_at: Any = None, sent: bool = False) -> None:
        values: dict[str, Any] = {"status": status, "reason": reason, "lease_until": None}
        if due_at is not None:
            values["due_at"] = due_at
        if sent:
            values["sent_at"] = utcnow()
        await self._set(session, row_id, **values)

    @staticmethod
    async def _set(session: Any, row_id: int, **values: Any) -> None:
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(**values))


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
            .values(status="failed", lease_until=None, reason="outcome_unknown")
        )
    return int(retried.rowcount or 0) + int(dropped.rowcount or 0)
