"""Drain 10,000 due messages to 10,000 customers through the sandbox with the real sender.

Telegram's limits (30 messages/s overall, 1/s per private chat) are scaled by --scale (default
10: 300/s and 0.1 s per chat, so the run takes about 35 s instead of 6 minutes); the sandbox
injects a 429 (retry_after 1 s, also scaled for the pause) now and then. Meanwhile a few customers
chat with the bot (/help) and the latency of their replies is measured: replies are answered
directly by the bot's handlers, never queued behind nudges.

The fake Telegram (the sandbox, and the customers chatting through it) runs in a process of its
own, as the real one runs on other machines: its work must not slow the bot's event loop, or the
bench would charge the server's time to the bot's round trips.

Figures: achieved rate as a fraction of the (scaled) limit, counted from the sandbox's own log of
accepted sends, between the first and the last; per-chat violations (two messages to one chat
closer than the scaled 1 s); global violations (more than the limit within any scaled second);
duplicates and losses (chats with more than one / no message); p50/p99 of interactive replies;
and the CPU each side spent over the drain (``cpu_s``: the bot's processes, PostgreSQL's server
processes for the bench's database, the fake Telegram), read from /proc.

With ``--processes N`` (N ≥ 2, PostgreSQL) N sender processes drain the one queue together, sharing
the bot's rate through Redis (TOUCHPOINT_TEST_REDIS_URL); the bot's handlers answer the chatting
customers from the main process. A few chats also get 14 messages each: ``order_violations``
counts those that arrived out of order.

With ``--paid`` (one process, real time, 20,000 customers unless --messages says otherwise) the
messages are marketing and paid broadcasts are on at 1000/s (TOUCHPOINT_PAID_BROADCAST_RATE):
``paid_rate_msgs_s`` is the rate the fake Telegram saw; the per-chat interval still holds.

    python bench/outbox.py [--scale 10] [--messages 10000] [--sqlite] [--processes 2] [--paid]

Last line: {"rate_fraction": …, "chat_violations": …, "global_violations": …, "order_violations": …,
"duplicates": …, "lost": …, "interactive_p99_ms": …, "cpu_s": {"bot": …, "database": …, "telegram": …}}
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import multiprocessing
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import func, insert, select

from bot.app import create_bot, create_dispatcher, freeze_startup_heap
from bot.channel import TelegramChannel
from touchpoint.clock import utcnow
from touchpoint.config import SANDBOX_TOKEN, load_settings
from touchpoint.customers.models import Customer
from touchpoint.db import Database, upgrade_database
from touchpoint.i18n import get_translator
from touchpoint.messaging.models import OutboxMessage
from touchpoint.messaging.rules import Lane
from touchpoint.messaging.sender import OutboxSender, Pacing
from touchpoint.messaging.shared_pacing import SharedSlots
from touchpoint.sandbox import Sandbox
from touchpoint.wiring import load_all_templates

warnings.filterwarnings("ignore", category=DeprecationWarning)  # sqlmodel's session.execute notice
POSTGRES_URL = os.environ.get("TOUCHPOINT_BENCH_POSTGRES_URL") or os.environ.get(
    "TOUCHPOINT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
LIMIT_PER_S = 30.0
FIRST_CHAT = 5_000_000
CHATTERS = list(range(9_000_001, 9_000_021))
REDIS_URL = os.environ.get("TOUCHPOINT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SEQUENCE_CHATS, SEQUENCE_LENGTH = 20, 14  # chats that get several messages, to check their order
ORDER = re.compile(r"S(\d\d)")


def sequence_chats(count: int) -> list[int]:
    return [FIRST_CHAT + count + j for j in range(SEQUENCE_CHATS)]


def expected(count: int) -> dict[int, int]:
    """How many messages each chat should get."""
    return {**{FIRST_CHAT + i: 1 for i in range(count)},
            **dict.fromkeys(sequence_chats(count), SEQUENCE_LENGTH)}


async def seed(db: Database, count: int, lane: Lane = Lane.TRANSACTIONAL) -> None:
    now = utcnow()
    customers = [dict(telegram_id=chat, first_name="C", timezone="Europe/Berlin", created_at=now,
                      last_seen_at=now, marketing_consent=True, nudges_paused=False, reachable=True)
                 for chat in expected(count)]
    async with db.session() as session:
        await session.execute(insert(Customer), customers)
    async with db.session() as session:
        ids = dict((await session.execute(select(Customer.telegram_id, Customer.id))).all())
        rows = [dict(customer_id=ids[FIRST_CHAT + i], chat_id=FIRST_CHAT + i, lane=lane.value,
                     priority=lane.priority, template="journey.checkin",
                     params={"order_number": f"A-{i}"}, status="pending", due_at=now, created_at=now,
                     edit_in_place=False, attempts=0)
                for i in range(count)]
        rows += [dict(customer_id=ids[chat], chat_id=chat, lane=lane.value,
                      priority=lane.priority, template="journey.checkin",
                      params={"order_number": f"S{n:02d}"}, status="pending", due_at=now, created_at=now,
                      edit_in_place=False, attempts=0)
                 for n in range(SEQUENCE_LENGTH) for chat in sequence_chats(count)]
        for start in range(0, len(rows), 2_000):
            await session.execute(insert(OutboxMessage), rows[start:start + 2_000])


async def chat_during(sandbox: Sandbox, stop: asyncio.Event, latencies: list[float]) -> None:
    rng = random.Random(3)
    while not stop.is_set():
        user = rng.choice(CHATTERS)
        after = max((m["message_id"] for m in sandbox.iter_messages(user)), default=0)  # no copies
        started = time.perf_counter()
        sandbox.send_text(user, "/help")
        await sandbox.wait_for_bot_message(user, after_message_id=after, timeout=10)
        latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.05)


def telegram_process(pipe: Connection, count: int) -> None:
    """The fake Telegram's process: serves the Bot API, lets a few customers chat while the outbox
    drains, and at the end hands over what it saw."""
    asyncio.run(_telegram(pipe, count))


async def _telegram(pipe: Connection, count: int) -> None:
    loop = asyncio.get_running_loop()
    sandbox = Sandbox()
    pipe.send(await sandbox.start("127.0.0.1", 0))
    try:
        for chat in expected(count):
            sandbox.upsert_user(chat, "C")
        for user in CHATTERS:  # first contact outside the measurement
            sandbox.upsert_user(user, "Chatty")
            sandbox.send_text(user, "/start")
            await sandbox.wait_for_bot_message(user, timeout=30)
        pipe.send("ready")
        await loop.run_in_executor(None, pipe.recv)  # the drain starts
        sandbox.set_chaos(0.0005, 1, seed=11)
        stop, latencies = asyncio.Event(), []
        chatter = asyncio.create_task(chat_during(sandbox, stop, latencies))
        await loop.run_in_executor(None, pipe.recv)  # the outbox is empty
        stop.set()
        await chatter
        chats = expected(count)
        pipe.send({"sends": [(r.at, r.chat_id) for r in sandbox.send_log
                             if r.outcome == "ok" and r.chat_id in chats],
                   "received": [(len(sandbox.bot_messages(chat)), wanted) for chat, wanted in chats.items()],
                   "orders": [[int(m.group(1)) for m in map(ORDER.search, (str(b.get("text", ""))
                               for b in sandbox.bot_messages(chat))) if m]
                              for chat in sequence_chats(count)],
                   "retries": sum(1 for r in sandbox.send_log if r.outcome == "429"),
                   "latencies": latencies})
    finally:
        await sandbox.stop()


def sender_process(pipe: Connection, url: str, base: str, scale: float, redis_key: str) -> None:
    """One more bot process that only sends (as another `touchpoint run --webhook` would)."""
    asyncio.run(_sender(pipe, url, base, scale, redis_key))


async def _sender(pipe: Connection, url: str, base: str, scale: float, redis_key: str) -> None:
    loop = asyncio.get_running_loop()
    settings = load_settings(_env_file=None, database_url=url, telegram_api_base=base,
                             bot_token=SecretStr(SANDBOX_TOKEN))
    db, bot, redis = Database(url), create_bot(settings), Redis.from_url(REDIS_URL)
    try:
        load_all_templates()
        sender = OutboxSender(db, settings, TelegramChannel(bot), get_translator(),
                              pacing=Pacing(global_per_second=LIMIT_PER_S).scaled(scale),
                              batch_size=500, concurrency=64, shared=SharedSlots(redis, redis_key))
        freeze_startup_heap()
        pipe.send("ready")
        await loop.run_in_executor(None, pipe.recv)  # go
        stop = asyncio.Event()
        draining = asyncio.create_task(sender.run(stop, idle_poll_s=0.05))
        await loop.run_in_executor(None, pipe.recv)  # the outbox is empty
        stop.set()
        await draining
        await sender.release()
    finally:
        await bot.session.close()
        await db.dispose()
        await redis.aclose()


async def open_rows(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status.in_(("pending", "claimed", "sending"))))).scalar_one())


PAID_RATE = 1000.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (Linux /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def database_backends(database: str) -> list[int]:
    """PostgreSQL's server processes serving the bench's own database (their title names it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith("postgres:") and f" {database} " in f"{title} ":
                pids.append(int(entry.name))
    return pids


class CpuSplit:
    """CPU seconds spent over the drain by the bot's processes, the database's server processes for
    the bench's database, and the fake Telegram, side by side."""

    def __init__(self, bot: list[int], telegram: int, database: str | None) -> None:
        self.bot, self.telegram, self.database = bot, telegram, database
        self.start = self._snapshot()

    def _snapshot(self) -> dict[str, dict[int, float]]:
        backends = database_backends(self.database) if self.database else []
        return {"bot": {pid: cpu_seconds(pid) for pid in self.bot},
                "database": {pid: cpu_seconds(pid) for pid in backends},
                "telegram": {self.telegram: cpu_seconds(self.telegram)}}

    def spent(self) -> dict[str, float]:
        end = self._snapshot()
        return {part: round(sum(cpu - self.start[part].get(pid, 0.0) for pid, cpu in used.items()), 2)
                for part, used in end.items()}


async def run(url: str, scale: float, count: int, processes: int = 1, paid: bool = False) -> dict[str, float]:
    await upgrade_database(url)
    pipe, child_pipe = multiprocessing.get_context("spawn").Pipe()
    telegram = multiprocessing.get_context("spawn").Process(target=telegram_process, args=(child_pipe, count))
    telegram.start()
    loop = asyncio.get_running_loop()
    base = await loop.run_in_executor(None, pipe.recv)
    settings = load_settings(_env_file=None, database_url=url, telegram_api_base=base,
                             bot_token=SecretStr(SANDBOX_TOKEN), flood_max_messages=10_000,
                             # --paid: marketing at the paid rate, whatever the hour (no quiet hours)
                             paid_broadcast_rate=PAID_RATE if paid else 0.0,
                             quiet_hours_start=0, quiet_hours_end=0,
                             # the chats with 14 messages: caps would (rightly) skip 13 marketing ones
                             **({"marketing_per_day": 100, "marketing_per_week": 100, "messages_per_day": 100,
                                 "repeat_template_days": 0} if paid else {}))
    db = Database(url)
    bot = create_bot(settings)
    dp = create_dispatcher(settings, db)
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    senders: list[tuple[Any, Connection]] = []
    try:
        await seed(db, count, Lane.MARKETING if paid else Lane.TRANSACTIONAL)
        await loop.run_in_executor(None, pipe.recv)  # the chatting customers have said hello
        freeze_startup_heap()  # as BotServices.start does once the bot is up
        load_all_templates()
        if processes > 1:
            key = f"tp-bench-{uuid.uuid4().hex[:8]}:send-rate"
            for _ in range(processes):
                parent, child = multiprocessing.get_context("spawn").Pipe()
                worker = multiprocessing.get_context("spawn").Process(
                    target=sender_process, args=(child, url, base, scale, key))
                worker.start()
                senders.append((worker, parent))
            for _, parent in senders:
                await loop.run_in_executor(None, parent.recv)  # ready
            for _, parent in senders:
                parent.send("go")
        else:
            sender = OutboxSender(db, settings, TelegramChannel(bot), get_translator(),
                                  pacing=Pacing(global_per_second=LIMIT_PER_S).scaled(scale),
                                  batch_size=500, concurrency=64)
            stop = asyncio.Event()
            draining = asyncio.create_task(sender.run(stop, idle_poll_s=0.05))
        database = url.rsplit("/", 1)[1] if url.startswith("postgresql") else None
        split = CpuSplit([os.getpid(), *(worker.pid for worker, _ in senders if worker.pid)],
                         telegram.pid or 0, database)
        pipe.send("go")
        started = time.perf_counter()
        while time.perf_counter() - started < 600:
            if not await open_rows(db):
                break
            await asyncio.sleep(0.2)
        elapsed, cpu = time.perf_counter() - started, split.spent()
        if processes > 1:
            for worker, parent in senders:
                parent.send("stop")
                await loop.run_in_executor(None, worker.join, 30)
        else:
            stop.set()
            await draining
        pipe.send("stop")
        seen = await loop.run_in_executor(None, pipe.recv)
        result = figures(seen, scale, count, paid)
        print(f"CPU over the {elapsed:.1f} s drain (2 cores: {2 * elapsed:.1f} CPU-s at most): "
              + ", ".join(f"{part} {seconds:.1f} s" for part, seconds in cpu.items())
              + f"; load average {os.getloadavg()[0]:.1f}")
        result["cpu_s"] = cpu
        if paid:
            result["paid_rate_msgs_s"] = round(result.pop("rate_msgs_s"), 1)
        else:
            result.pop("rate_msgs_s")
        return result
    finally:
        with contextlib.suppress(RuntimeError):
            await dp.stop_polling()
        await asyncio.wait_for(polling, timeout=10)
        await bot.session.close()
        await db.dispose()
        telegram.join(timeout=10)
        for process in [telegram, *(worker for worker, _ in senders)]:
            if process.is_alive():
                process.kill()


def figures(seen: dict[str, Any], scale: float, count: int, paid: bool = False) -> dict[str, float]:
    sends = sorted(seen["sends"])
    times = [at for at, _ in sends]
    # The rate is the bulk's (one message per chat): the 14-message chats go at 1/s each, after it.
    bulk = [at for at, chat in sends if chat < FIRST_CHAT + count]
    ceiling = PAID_RATE if paid else LIMIT_PER_S
    limit, window = ceiling * scale, 1.0 / scale
    rate = (len(bulk) - 1) / (bulk[-1] - bulk[0]) if len(bulk) > 1 else 0.0
    # Over the limit if more than `limit`·(1 s) sends fall in any scaled second.
    global_violations = sum(1 for i, at in enumerate(times)
                            if bisect.bisect_left(times, at + window) - i > ceiling)
    last_per_chat: dict[int, float] = {}
    chat_violations = 0
    for at, chat in sends:
        if chat in last_per_chat and at - last_per_chat[chat] < window:
            chat_violations += 1
        last_per_chat[chat] = at
    received, retries = seen["received"], seen["retries"]
    order_violations = sum(1 for got in seen["orders"] if got != sorted(got))
    ordered = sorted(seen["latencies"])
    p50 = statistics.median(ordered) if ordered else 0.0
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0
    print(f"sent {len(times):,} of {count:,} at {rate:.1f}/s against a limit of {limit:.0f}/s "
          f"(30/s scaled ×{scale:g}): {rate / limit:.3f} of the limit; 429s injected: {retries}")
    print(f"interactive replies during the drain: {len(ordered)}, p50 {p50:.1f} ms, p99 {p99:.1f} ms "
          f"({p99 / 100:.2f}× the 100 ms goal)")
    return {"rate_msgs_s": rate, "rate_fraction": round(rate / limit, 3), "chat_violations": chat_violations,
            "global_violations": global_violations, "order_violations": order_violations,
            "duplicates": sum(max(0, n - wanted) for n, wanted in received),
            "lost": sum(max(0, wanted - n) for n, wanted in received), "interactive_p99_ms": round(p99, 1)}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--processes", type=int, default=1, help="sender processes (PostgreSQL, Redis)")
    parser.add_argument("--paid", action="store_true", help="marketing as paid broadcasts at 1000/s")
    args = parser.parse_args()
    if args.paid:
        args.scale, args.processes = 1.0, 1
        args.messages = args.messages if "--messages" in sys.argv else 20_000
    if args.processes > 1 and args.sqlite:
        parser.error("several sender processes need PostgreSQL")
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            result = await run(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", args.scale, args.messages,
                               paid=args.paid)
    else:
        dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
        name = f"tp_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(dsn)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        try:
            result = await run(POSTGRES_URL.rsplit("/", 1)[0] + "/" + name, args.scale, args.messages,
                               args.processes, args.paid)
        finally:
            admin = await asyncpg.connect(dsn)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    print("database:", "SQLite" if args.sqlite else "PostgreSQL", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
