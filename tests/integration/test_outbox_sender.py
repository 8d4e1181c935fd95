"""The outbox sender against a scripted channel, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import event, update
from sqlmodel import select

from tests.factories import make_customer
from touchpoint.config import load_settings
from touchpoint.customers.models import Customer
from touchpoint.db import Database
from touchpoint.i18n import Translator, get_translator
from touchpoint.messaging import (
    Button,
    ChannelBlocked,
    ChannelError,
    ChannelRejected,
    ChannelRetryAfter,
    ChannelUnavailable,
    OutgoingMessage,
    Rendered,
    SendResult,
    template,
)
from touchpoint.messaging.models import Delivery, OutboxMessage
from touchpoint.messaging.outbox import enqueue
from touchpoint.messaging.rules import Lane
from touchpoint.messaging.sender import OutboxSender, Pacing, _Outcome, reap_expired_leases

settings = load_settings(_env_file=None, quiet_hours_start=23, quiet_hours_end=0, messages_per_day=100,
                         marketing_per_day=100, marketing_per_week=100, repeat_template_days=0)
FAST = Pacing().scaled(1000)
NOON = datetime(2026, 6, 1, 10, tzinfo=UTC)


@template("test.note")
def _note(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    return Rendered(f"[{locale}] {params['text']}", ((Button("ok", callback_data="t:ok"),),))


class ScriptedChannel:
    """Records what would reach Telegram; raises the errors a test queues for a chat."""

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []
        self.failures: dict[int, list[ChannelError]] = {}
        self.next_id = 100

    async def send(self, message: OutgoingMessage) -> SendResult:
        queued = self.failures.get(message.chat_id)
        if queued:
            raise queued.pop(0)
        self.sent.append(message)
        if message.edit_message_id is not None:
            return SendResult(message.edit_message_id)
        self.next_id += 1
        return SendResult(self.next_id)

    def texts(self, chat_id: int) -> list[str]:
        return [m.text for m in self.sent if m.chat_id == chat_id]


@pytest.fixture
def channel() -> ScriptedChannel:
    return ScriptedChannel()


@pytest.fixture
def sender(db: Database, channel: ScriptedChannel) -> OutboxSender:
    return OutboxSender(db, settings, channel, get_translator(), pacing=FAST)


@pytest.fixture(autouse=True)
def noon() -> Any:
    with time_machine.travel(NOON, tick=True) as traveller:
        yield traveller


async def queue(db: Database, telegram_id: int, text: str, lane: Lane = Lane.TRANSACTIONAL,
                **kwargs: Any) -> int:
    async with db.session() as session:
        customer = (await session.exec(select(Customer).where(Customer.telegram_id == telegram_id))).first()
        if customer is None:
            customer = await make_customer(session, telegram_id, locale="ru")
        row = await enqueue(session, settings, customer, "test.note", {"text": text}, lane=lane, **kwargs)
        await session.flush()
        assert row.id is not None
        return row.id


async def statuses(db: Database) -> dict[int, tuple[str, str | None]]:
    async with db.session() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    return {row.id: (row.status, row.reason) for row in rows if row.id is not None}


async def test_sends_in_lane_order_and_records_delivery(db: Database, sender: OutboxSender,
                                                        channel: ScriptedChannel) -> None:
    promo = await queue(db, 1, "promo", Lane.MARKETING)
    update = await queue(db, 1, "your order shipped")
    assert await sender.drain_once() == 2
    assert channel.texts(1) == ["[ru] your order shipped", "[ru] promo"]
    assert (await statuses(db))[promo] == ("sent", None)
    async with db.session() as session:
        deliveries = (await session.exec(select(Delivery))).all()
    assert {d.outbox_id for d in deliveries} == {promo, update}
    assert await sender.drain_once() == 0  # nothing is sent twice


async def test_live_card_is_edited_in_place(db: Database, sender: OutboxSender,
                                            channel: ScriptedChannel) -> None:
    await queue(db, 1, "packed", card_key="order:1")
    await sender.drain_once()
    await queue(db, 1, "shipped", card_key="order:1", edit_in_place=True)
    await queue(db, 2, "other customer", card_key="order:1", edit_in_place=True)
    await sender.drain_once()
    _first, *later = channel.sent
    edit = next(m for m in later if m.chat_id == 1)
    other = next(m for m in later if m.chat_id == 2)  # chats are sent in parallel, in any order
    assert edit.edit_message_id == 101  # the first send's message id
    assert edit.text == "[ru] shipped" and other.edit_message_id is None


async def test_retry_after_pauses_and_retries(db: Database, sender: OutboxSender,
                                              channel: ScriptedChannel, noon: Any) -> None:
    row = await queue(db, 1, "hello")
    channel.failures[1] = [ChannelRetryAfter(3)]
    await sender.drain_once()
    assert (await statuses(db))[row] == ("pending", "retry_after")
    assert await sender.drain_once() == 0  # not due before retry_after has passed
    noon.shift(timedelta(seconds=4))
    sender.limiter._paused_until = 0  # the monotonic pause is not moved by time-machine
    assert await sender.drain_once() == 1
    assert channel.texts(1) == ["[ru] hello"]


async def test_blocked_customer_becomes_unreachable(db: Database, sender: OutboxSender,
                                                    channel: ScriptedChannel) -> None:
    row = await queue(db, 1, "hello")
    later = await queue(db, 1, "promo", Lane.MARKETING)
    channel.failures[1] = [ChannelBlocked("bot was blocked by the user")]
    await sender.drain_once()
    result = await statuses(db)
    assert result[row] == ("failed", "blocked")
    assert result[later] == ("skipped", "unreachable")
    async with db.session() as session:
        customer = (await session.exec(select(Customer).where(Customer.telegram_id == 1))).one()
    assert customer.reachable is False


async def outbox_row(db: Database, row_id: int) -> OutboxMessage:
    async with db.session() as session:
        found = await session.get(OutboxMessage, row_id)
    assert found is not None
    return found


async def delivery_of(db: Database, row_id: int) -> Delivery | None:
    async with db.session() as session:
        return (await session.exec(select(Delivery).where(Delivery.outbox_id == row_id))).first()


async def test_failed_sends_record_the_error_and_a_real_delivery_status(
    db: Database, sender: OutboxSender, channel: ScriptedChannel
) -> None:
    """``last_error`` was never written and every delivery said "sent": now both tell the truth."""
    blocked = await queue(db, 1, "hello")
    rejected = await queue(db, 2, "hello")
    retried = await queue(db, 3, "hello")
    sent = await queue(db, 4, "hello")
    channel.failures[1] = [ChannelBlocked("Forbidden: bot was blocked by the user")]
    channel.failures[2] = [ChannelRejected("Bad Request: chat not found")]
    channel.failures[3] = [ChannelUnavailable("Server disconnected")]
    await sender.drain_once()

    assert (await outbox_row(db, blocked)).last_error == (
        "ChannelBlocked: Forbidden: bot was blocked by the user")
    assert (await outbox_row(db, rejected)).last_error == "ChannelRejected: Bad Request: chat not found"
    waiting = await outbox_row(db, retried)
    assert (waiting.status, waiting.last_error) == ("pending", "ChannelUnavailable: Server disconnected")
    assert (await outbox_row(db, sent)).last_error is None
    settled = {row: await delivery_of(db, row) for row in (blocked, rejected, retried, sent)}
    assert {row: d.status if d else None for row, d in settled.items()} == {
        blocked: "blocked", rejected: "failed", retried: None, sent: "sent"}
    assert settled[blocked].telegram_message_id is None  # type: ignore[union-attr]


async def test_crash_after_claim_is_retried_once(db: Database, sender: OutboxSender,
                                                 channel: ScriptedChannel, noon: Any) -> None:
    row = await queue(db, 1, "hello")
    claimed = await sender.claim()  # the process dies right after claiming
    assert [r.id for r in claimed] == [row]
    assert await sender.drain_once() == 0  # leased: nobody else takes it
    noon.shift(timedelta(minutes=3))
    assert await reap_expired_leases(db) == 1
    assert await sender.drain_once() == 1
    assert channel.texts(1) == ["[ru] hello"]


@pytest.mark.parametrize(("lane", "resent"), [(Lane.TRANSACTIONAL, True), (Lane.MARKETING, False)])
async def test_crash_during_send(db: Database, sender: OutboxSender, channel: ScriptedChannel,
                                 noon: Any, lane: Lane, resent: bool) -> None:
    """Died after "sending" was recorded: at-least-once for transactional, at-most-once for marketing."""
    row = await queue(db, 1, "hello", lane)
    await sender.claim()
    async with db.session() as session:
        await session.exec(update(OutboxMessage).where(OutboxMessage.id == row).values(status="sending"))
    noon.shift(timedelta(minutes=3))
    await reap_expired_leases(db)
    await sender.drain_once()
    assert channel.texts(1) == (["[ru] hello"] if resent else [])
    assert (await statuses(db))[row] == (("sent", None) if resent else ("failed", "outcome_unknown"))


async def test_two_senders_share_one_outbox(db: Database) -> None:
    """Two processes draining at once: every row is sent exactly once."""
    rows = [await queue(db, 1000 + i, f"m{i}") for i in range(60)]
    channels = [ScriptedChannel(), ScriptedChannel()]
    senders = [OutboxSender(Database(db.url), settings, ch, get_translator(), pacing=FAST, batch_size=7)
               for ch in channels]

    async def drain(s: OutboxSender) -> None:
        while await s.drain_once():
            pass

    await asyncio.gather(*(drain(s) for s in senders))
    texts = [m.text for ch in channels for m in ch.sent]
    assert sorted(texts) == sorted(f"[ru] m{i}" for i in range(60))
    assert all(status == ("sent", None) for status in (await statuses(db)).values())
    assert len(rows) == 60
    for s in senders:
        await s.db.dispose()


async def sent_once(channel: ScriptedChannel, timeout_s: float = 10.0) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if channel.sent:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("nothing was sent")


@pytest.mark.parametrize(("lane", "resent"), [(Lane.TRANSACTIONAL, True), (Lane.MARKETING, False)])
async def test_crash_after_send_before_its_outcome_is_written(
    db: Database, sender: OutboxSender, channel: ScriptedChannel, noon: Any, lane: Lane, resent: bool
) -> None:
    """Telegram took the message; the process died before the group commit wrote it down."""
    row = await queue(db, 1, "hello", lane)
    process_dies = asyncio.Event()

    async def write_outcomes(session: Any, outcomes: list[Any]) -> None:
        if outcomes:
            await process_dies.wait()  # never set: the process is gone before the outcome is written

    sender._write_outcomes = write_outcomes  # type: ignore[method-assign]
    drain = asyncio.create_task(sender.drain_once())
    await sent_once(channel)
    for task in (drain, sender._committer):
        assert task is not None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert (await statuses(db))[row] == ("sending", None)  # the send happened, the outcome was lost

    noon.shift(timedelta(minutes=3))
    await reap_expired_leases(db)
    await OutboxSender(db, settings, channel, get_translator(), pacing=FAST).drain_once()
    assert channel.texts(1) == ["[ru] hello"] * (2 if resent else 1)
    assert (await statuses(db))[row] == (("sent", None) if resent else ("failed", "outcome_unknown"))


async def test_recheck_judges_a_group_in_a_few_queries(db: Database, sender: OutboxSender,
                                                       channel: ScriptedChannel, noon: Any) -> None:
    """Rows claimed together are re-checked together: one look at the customers, one at the
    messages planned for them, whatever their number; each row gets its own verdict."""
    consent_gone = await queue(db, 1, "promo 1", Lane.MARKETING)
    paused = await queue(db, 2, "check-in", Lane.SERVICE)
    expiring = await queue(db, 3, "flash sale", Lane.MARKETING, expires_at=NOON + timedelta(minutes=5))
    fine = await queue(db, 4, "promo 4", Lane.MARKETING)
    now_at_night = await queue(db, 5, "promo 5", Lane.MARKETING)
    order = await queue(db, 6, "your order shipped")
    async with db.session() as session:  # things change while the messages wait
        for telegram_id, values in ((1, {"marketing_consent": False}), (2, {"nudges_paused": True}),
                                    (5, {"timezone": "Pacific/Tongatapu"})):  # 23:00 there: quiet
            customer = (await session.exec(select(Customer).where(Customer.telegram_id == telegram_id))).one()
            for key, value in values.items():
                setattr(customer, key, value)
    noon.shift(timedelta(minutes=10))

    selects: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(" ".join(statement.split()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        assert await sender.drain_once() == 6
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)

    result = await statuses(db)
    assert result[consent_gone] == ("skipped", "no_consent")
    assert result[paused] == ("skipped", "opted_out")
    assert result[expiring] == ("skipped", "expired")
    assert result[now_at_night] == ("pending", "quiet_hours")
    assert result[fine] == result[order] == ("sent", None)
    assert sorted(m.chat_id for m in channel.sent) == [4, 6]
    async with db.session() as session:
        delayed = await session.get(OutboxMessage, now_at_night)
    assert delayed is not None and delayed.due_at == datetime(2026, 6, 1, 11, tzinfo=UTC)  # 00:00 there
    assert sum(" FROM customers" in s for s in selects) == 1
    # Caps and repeats, for all of them (PostgreSQL's claim also reads the chats' latest sends).
    assert sum(" FROM outbox" in s and "max(" not in s for s in selects) == 1


async def test_a_retried_message_keeps_its_chat_in_order(db: Database, sender: OutboxSender,
                                                        channel: ScriptedChannel, noon: Any) -> None:
    first = await queue(db, 1, "first")
    second = await queue(db, 1, "second")
    channel.failures[1] = [ChannelRetryAfter(3)]
    await sender.drain_once()
    result = await statuses(db)
    assert result[first] == ("pending", "retry_after")
    assert result[second] == ("pending", "behind_retry")  # not sent before the first one
    noon.shift(timedelta(seconds=4))
    sender.limiter._paused_until = 0  # the monotonic pause is not moved by time-machine
    while await sender.drain_once():
        pass
    assert channel.texts(1) == ["[ru] first", "[ru] second"]
    async with db.session() as session:
        rows = {row.id: row for row in (await session.exec(select(OutboxMessage))).all()}
    assert rows[first].attempts == rows[second].attempts == 1  # held back, not failed attempts


@pytest.mark.parametrize(("lane", "outcome"), [(Lane.TRANSACTIONAL, ("pending", "outcome_unknown")),
                                               (Lane.MARKETING, ("failed", "outcome_unknown"))])
async def test_an_unexpected_channel_error_is_an_unknown_outcome(
    db: Database, sender: OutboxSender, channel: ScriptedChannel, lane: Lane, outcome: tuple[str, str]
) -> None:
    """Decided at once as the lease reaper would: retried unless marketing (at-most-once)."""
    row = await queue(db, 1, "hello", lane)
    channel.failures[1] = [RuntimeError("garbled answer")]  # type: ignore[list-item]
    await sender.drain_once()
    assert (await statuses(db))[row] == outcome


async def test_a_running_sender_keeps_each_chat_in_order_across_batches(db: Database,
                                                                       channel: ScriptedChannel) -> None:
    """The next batch is claimed while the last one is still sending: a chat in both waits its turn."""
    for i in range(5):
        await queue(db, 1, f"chat 1 #{i}")
        await queue(db, 100 + i, f"other {i}")
    sender = OutboxSender(db, settings, channel, get_translator(), pacing=FAST, batch_size=3, concurrency=2)
    stop = asyncio.Event()
    running = asyncio.create_task(sender.run(stop, idle_poll_s=0.01))
    for _ in range(1000):
        if all(status == ("sent", None) for status in (await statuses(db)).values()):
            break
        await asyncio.sleep(0.01)
    stop.set()
    await running
    assert channel.texts(1) == [f"[ru] chat 1 #{i}" for i in range(5)]
    assert len(channel.sent) == 10


async def test_one_bad_outcome_does_not_hold_up_the_others(db: Database, sender: OutboxSender,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """A group commit that fails is written again outcome by outcome; only the bad one is dropped."""
    rows = [await queue(db, 1, "a"), await queue(db, 2, "b")]
    bad = _Outcome(10**9, {"status": "sent"}, delivery=dict(  # no such outbox row: a foreign key error
        outbox_id=10**9, customer_id=None, chat_id=3, telegram_message_id=1, card_key=None,
        sent_at=NOON))
    record = sender._record

    def record_with_a_bad_one(*args: Any, **kwargs: Any) -> None:
        record(*args, **kwargs)
        if bad not in sender._outcomes:
            sender._outcomes.append(bad)

    sender._record = record_with_a_bad_one  # type: ignore[method-assign]
    assert await sender.drain_once() == 2
    result = await statuses(db)
    assert [result[row] for row in rows] == [("sent", None)] * 2
    assert f"outbox {10**9}: outcome not written" in caplog.text


class TimedChannel(ScriptedChannel):
    """Several senders' deliveries on one clock: (when, chat, text)."""

    def __init__(self, log: list[tuple[float, int, str]]) -> None:
        super().__init__()
        self.log = log

    async def send(self, message: OutgoingMessage) -> SendResult:
        self.log.append((time.monotonic(), message.chat_id, message.text))
        await asyncio.sleep(0.002)  # a request takes a moment: the other process may run meanwhile
        return await super().send(message)


async def test_two_running_senders_keep_a_chat_in_order_and_paced(db: Database) -> None:
    """Two processes (own connection pools) draining one PostgreSQL outbox in small batches: the 14
    messages of one chat arrive in order, once each, never closer than the chat's interval."""
    if db.dialect != "postgresql":
        pytest.skip("several processes share PostgreSQL only")
    for i in range(14):
        await queue(db, 1, f"chat 1 #{i}")
        if i % 2:
            await queue(db, 500 + i, f"other {i}")
    log: list[tuple[float, int, str]] = []
    pacing = Pacing().scaled(20)  # 1/s per chat becomes one per 50 ms
    senders = [OutboxSender(Database(db.url), settings, TimedChannel(log), get_translator(), pacing=pacing,
                            batch_size=2, concurrency=4) for _ in range(2)]
    stop = asyncio.Event()
    running = [asyncio.create_task(s.run(stop, idle_poll_s=0.005)) for s in senders]
    for _ in range(1000):
        if all(status == ("sent", None) for status in (await statuses(db)).values()):
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.gather(*running)
    chat = [(at, text) for at, chat_id, text in log if chat_id == 1]
    assert [text for _, text in chat] == [f"[ru] chat 1 #{i}" for i in range(14)]
    assert len(log) == len({text for _, _, text in log}) == 21
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(chat)]
    assert min(gaps) >= pacing.private_chat_interval_s * 0.9
    assert all(len(s.channel.sent) for s in senders)  # type: ignore[attr-defined]
    for s in senders:
        await s.db.dispose()


async def test_paid_broadcast_marks_marketing_only(db: Database, channel: ScriptedChannel) -> None:
    """With TOUCHPOINT_PAID_BROADCAST_RATE set, marketing goes out with allow_paid_broadcast on its
    own (faster) limiter; transactional messages stay free. Off by default."""
    paid = settings.model_copy(update={"paid_broadcast_rate": 1000.0})
    promo = await queue(db, 1, "promo", Lane.MARKETING)
    order = await queue(db, 2, "your order shipped")
    sender = OutboxSender(db, paid, channel, get_translator(), pacing=FAST)
    assert sender.paid_limiter is not None and sender.paid_limiter.chats is sender.limiter.chats
    assert await sender.drain_once() == 2
    flags = {m.chat_id: m.paid_broadcast for m in channel.sent}
    assert flags == {1: True, 2: False}
    assert (await statuses(db))[promo] == (await statuses(db))[order] == ("sent", None)
    assert OutboxSender(db, settings, channel, get_translator()).paid_limiter is None
