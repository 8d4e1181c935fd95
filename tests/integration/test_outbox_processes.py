"""Several sender processes (tests/outbox_worker.py) drain one outbox on PostgreSQL, sharing the
bot's rate and each staff group's budget through Redis; the sandbox counts what Telegram would see.

Telegram's limits are scaled ×4 (100 messages/s for the bot, 0.25 s per private chat; a staff group
8 posts per second) so that a few hundred messages take seconds."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, insert, select

from tests.databases import postgres_database
from tests.outbox_worker import TELEGRAM_LIMIT_PER_S, TEMPLATE
from tests.production import redis_prefix, until
from touchpoint.aftersales.models import Ticket
from touchpoint.clock import utcnow
from touchpoint.config import SANDBOX_TOKEN
from touchpoint.customers.models import Customer
from touchpoint.db import Database, upgrade_database
from touchpoint.messaging.models import Delivery, OutboxMessage
from touchpoint.messaging.rules import Lane
from touchpoint.messaging.staff import StaffPost, enqueue_staff_post
from touchpoint.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]
SCALE = 4.0
WINDOW = 1 / SCALE  # Telegram's second, scaled
GLOBAL_PER_WINDOW = int(TELEGRAM_LIMIT_PER_S)
GROUP, GROUP_POSTS, GROUP_WINDOW_S = -100777, 8, 1.0
FIRST_CHAT, SEQUENCE_LENGTH = 700_000, 8
LEASE_S = 3.0


class Outbox:
    """The seeded queue and what each chat should receive."""

    def __init__(self, single: int, marketing: int, sequences: int, staff_posts: int) -> None:
        self.single = [FIRST_CHAT + n for n in range(single)]
        self.marketing = [FIRST_CHAT + 10_000 + n for n in range(marketing)]
        self.sequences = [FIRST_CHAT + 20_000 + n for n in range(sequences)]
        self.vetoed = FIRST_CHAT + 30_000  # a marketing message while an after-sales case is open
        self.staff_posts = staff_posts
        self.thread: int | None = None

    @property
    def customers(self) -> list[int]:
        return [*self.single, *self.marketing, *self.sequences, self.vetoed]

    async def seed(self, db: Database, sandbox: Sandbox, api_base: str) -> None:
        now = utcnow()
        async with db.session() as session:
            await session.execute(insert(Customer), [
                dict(telegram_id=chat, first_name="C", timezone="Europe/Berlin", created_at=now,
                     last_seen_at=now, marketing_consent=True, nudges_paused=False, reachable=True)
                for chat in self.customers])
        async with db.session() as session:
            ids = dict((await session.execute(select(Customer.telegram_id, Customer.id))).all())
            session.add(Ticket(number="C-000001", customer_id=ids[self.vetoed], kind="complaint",
                               status="new", created_at=now, updated_at=now))

            def row(chat: int, n: str, lane: Lane) -> dict[str, Any]:
                return dict(customer_id=ids[chat], chat_id=chat, lane=lane.value, priority=lane.priority,
                            template=TEMPLATE, params={"n": n}, status="pending", due_at=now,
                            created_at=now, edit_in_place=False, attempts=0)

            rows = [row(chat, str(chat), Lane.TRANSACTIONAL) for chat in self.single]
            rows += [row(chat, str(chat), Lane.MARKETING) for chat in [*self.marketing, self.vetoed]]
            rows += [row(chat, f"{chat} s{n}", Lane.TRANSACTIONAL)
                     for n in range(SEQUENCE_LENGTH) for chat in self.sequences]
            await session.execute(insert(OutboxMessage), rows)
            for chat in self.customers:
                sandbox.upsert_user(chat, "C")
            sandbox.create_group(GROUP, "Support", admins=[9001])
            sandbox.set_group_limit(GROUP_POSTS, GROUP_WINDOW_S)  # a post over the budget gets a 429
            async with aiohttp.ClientSession() as http, http.post(
                f"{api_base}/bot{SANDBOX_TOKEN}/createForumTopic", json={"chat_id": GROUP, "name": "Kai"}
            ) as response:
                self.thread = int((await response.json())["result"]["message_thread_id"])
            for n in range(self.staff_posts):
                enqueue_staff_post(session, StaffPost(GROUP, self.thread, [f"staff {n:02d}"]))

    async def open_rows(self, db: Database) -> int:
        async with db.session() as session:
            return int((await session.execute(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.status.in_(("pending", "claimed", "sending"))))).scalar_one())


@pytest.fixture
async def services() -> AsyncIterator[tuple[str, str, str]]:
    async with postgres_database("tp_outbox_procs") as database_url, redis_prefix() as (redis_url, prefix):
        await upgrade_database(database_url)
        yield database_url, redis_url, prefix


async def start_workers(count: int, services: tuple[str, str, str], api_base: str,
                        tmp_path: Path) -> list[asyncio.subprocess.Process]:
    database_url, redis_url, prefix = services
    env = {
        **os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        "TOUCHPOINT_BOT_TOKEN": SANDBOX_TOKEN, "TOUCHPOINT_TELEGRAM_API_BASE": api_base,
        "TOUCHPOINT_DATABASE_URL": database_url, "TOUCHPOINT_REDIS_URL": redis_url,
        "TOUCHPOINT_REDIS_PREFIX": prefix, "TOUCHPOINT_LOCALES_DIR": str(ROOT / "locales"),
        "TOUCHPOINT_HANDOFF_GROUP_MAX_POSTS": str(GROUP_POSTS),
        "TOUCHPOINT_HANDOFF_GROUP_WINDOW_S": str(GROUP_WINDOW_S),
        # Marketing whatever the hour of the run; the caps are not what is tested here.
        "TOUCHPOINT_QUIET_HOURS_START": "0", "TOUCHPOINT_QUIET_HOURS_END": "0",
        "TP_WORKER_SCALE": str(SCALE), "TP_WORKER_LEASE_S": str(LEASE_S),
    }
    workers = []
    for index in range(count):
        log = (tmp_path / f"worker{index}.log").open("wb")
        workers.append(await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.outbox_worker", env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
            stderr=log))
    for worker in workers:  # all up before anything is due... the queue is seeded already: fine
        assert worker.stdout is not None
        assert (await asyncio.wait_for(worker.stdout.readline(), 60)).strip() == b"ready"
    return workers


async def stop_workers(workers: list[asyncio.subprocess.Process]) -> None:
    for worker in workers:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            await asyncio.wait_for(worker.wait(), 15)
        except TimeoutError:
            worker.kill()
            await worker.wait()


def private_sends(sandbox: Sandbox) -> list[tuple[float, int]]:
    return sorted((r.at, r.chat_id) for r in sandbox.send_log if r.outcome == "ok" and r.chat_id > 0)


def check_pacing(sandbox: Sandbox) -> None:
    """The bot's rate and each chat's interval, as Telegram would count them."""
    sends = private_sends(sandbox)
    times = [at for at, _ in sends]
    over = [at for i, at in enumerate(times)
            if bisect.bisect_left(times, at + WINDOW) - i > GLOBAL_PER_WINDOW]
    assert over == [], f"{len(over)} scaled seconds with more than {GLOBAL_PER_WINDOW} sends"
    by_chat: dict[int, list[float]] = {}
    for at, chat in sends:
        by_chat.setdefault(chat, []).append(at)
    gaps = [b - a for ats in by_chat.values() for a, b in itertools.pairwise(ats)]
    assert not gaps or min(gaps) >= WINDOW * 0.9  # a little slack for when the sandbox logs a request
    group = sorted(r.at for r in sandbox.send_log if r.chat_id == GROUP and r.outcome == "ok")
    assert all(bisect.bisect_left(group, at + GROUP_WINDOW_S) - i <= GROUP_POSTS
               for i, at in enumerate(group))
    assert not [r for r in sandbox.send_log if r.outcome == "429"]  # nobody went over a limit


def texts(sandbox: Sandbox, chat: int, thread: int | None = None) -> list[str]:
    return [str(m.get("text")) for m in sandbox.bot_messages(chat, thread) if m.get("text")]


async def test_three_sender_processes_share_the_limits_keep_order_and_send_each_row_once(
    services: tuple[str, str, str], tmp_path: Path
) -> None:
    """(Two processes: the test below, until one is killed.)"""
    sandbox = Sandbox()
    api_base = await sandbox.start("127.0.0.1", 0)
    db = Database(services[0])
    outbox = Outbox(single=150, marketing=10, sequences=3, staff_posts=16)
    workers: list[asyncio.subprocess.Process] = []
    try:
        await outbox.seed(db, sandbox, api_base)
        workers = await start_workers(3, services, api_base, tmp_path)
        for _ in range(200):
            if not await outbox.open_rows(db):
                break
            await asyncio.sleep(0.2)
        await stop_workers(workers)

        check_pacing(sandbox)
        for chat in [*outbox.single, *outbox.marketing]:
            assert texts(sandbox, chat) == [f"note {chat}"], chat  # each row once
        for chat in outbox.sequences:  # in the order queued, whichever process sent each
            assert texts(sandbox, chat) == [f"note {chat} s{n}" for n in range(SEQUENCE_LENGTH)]
        assert texts(sandbox, GROUP, outbox.thread) == [f"staff {n:02d}" for n in range(outbox.staff_posts)]
        # The open complaint (after-sales' registered veto) kept marketing away from its customer.
        assert texts(sandbox, outbox.vetoed) == []
        async with db.session() as session:
            statuses = Counter((await session.execute(
                select(OutboxMessage.status, OutboxMessage.reason))).all())
            delivered = (await session.execute(select(func.count()).select_from(Delivery))).scalar_one()
        customers_rows = len(outbox.single) + len(outbox.marketing) + 3 * SEQUENCE_LENGTH
        assert statuses == {("sent", None): customers_rows + outbox.staff_posts,
                            ("skipped", "open_service_case"): 1}
        assert delivered == customers_rows
    finally:
        await stop_workers(workers)
        await db.dispose()
        await sandbox.stop()


async def test_a_killed_process_loses_nothing_but_at_most_once_marketing(
    services: tuple[str, str, str], tmp_path: Path
) -> None:
    """Two processes share the drain; SIGKILL one mid-drain: its rows come back after their lease.
    Transactional messages and staff posts all arrive (at-least-once: the one in flight may arrive
    twice); marketing arrives at most once; each chat's messages stay in order; the limits hold."""
    sandbox = Sandbox()
    api_base = await sandbox.start("127.0.0.1", 0)
    db = Database(services[0])
    outbox = Outbox(single=200, marketing=60, sequences=3, staff_posts=24)
    workers: list[asyncio.subprocess.Process] = []
    try:
        await outbox.seed(db, sandbox, api_base)
        workers = await start_workers(2, services, api_base, tmp_path)
        await until(lambda: len(private_sends(sandbox)) >= 80
                    and len(texts(sandbox, GROUP, outbox.thread)) >= 6, timeout=30)
        workers[0].kill()  # SIGKILL: no shutdown, its claimed and in-flight rows stay as they are
        await workers[0].wait()
        for _ in range(300):
            if not await outbox.open_rows(db):
                break
            await asyncio.sleep(0.2)
        await stop_workers(workers)

        check_pacing(sandbox)
        for chat in outbox.single:
            assert set(texts(sandbox, chat)) == {f"note {chat}"}, chat  # arrived, perhaps twice
        staff = texts(sandbox, GROUP, outbox.thread)
        expected_staff = [f"staff {n:02d}" for n in range(outbox.staff_posts)]
        assert [line for line, _ in itertools.groupby(staff)] == expected_staff
        for chat in outbox.sequences:
            got = [line for line, _ in itertools.groupby(texts(sandbox, chat))]  # a repeat is adjacent
            assert got == [f"note {chat} s{n}" for n in range(SEQUENCE_LENGTH)]
        async with db.session() as session:
            marketing = dict((await session.execute(
                select(OutboxMessage.chat_id, OutboxMessage.reason)
                .where(OutboxMessage.lane == Lane.MARKETING.value,
                       OutboxMessage.chat_id != outbox.vetoed))).all())
            settled = Counter((await session.execute(
                select(OutboxMessage.lane, OutboxMessage.status, OutboxMessage.reason))).all())
        assert all(len(texts(sandbox, chat)) <= 1 for chat in outbox.marketing)  # never twice
        # A marketing message is missing only if the dead process had it on its way (recorded so).
        lost = [chat for chat in outbox.marketing if not texts(sandbox, chat)]
        assert all(marketing[chat] == "outcome_unknown" for chat in lost)
        assert {key for key in settled if key[1] not in ("sent", "skipped")} <= {
            ("marketing", "failed", "outcome_unknown")}  # everything else went
    finally:
        await stop_workers(workers)
        await db.dispose()
        await sandbox.stop()
