"""Outbox drain through the sandbox: pace, limits, 429s, duplicates, losses, interactive latency.

10,000 due messages to 10,000 customers are drained by the real OutboxSender and the real
TelegramChannel (aiogram over HTTP) into the sandbox, with Telegram's limits (30/s overall,
1/s per private chat) scaled by SCALE so the run takes under a minute, while the sandbox
answers a 429 now and then. Meanwhile customers chat with the real bot (dispatcher polling the
same sandbox) and the time from their message to the bot's reply is measured.

Run: .venv/bin/python bench/outbox.py   (the last line is one JSON object)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, insert, select

from bot.app import create_bot, create_dispatcher
from bot.channel import TelegramChannel
from touchpoint.channels import Rendered, template
from touchpoint.clock import utcnow
from touchpoint.config import SANDBOX_TOKEN, load_settings
from touchpoint.customers.models import Customer
from touchpoint.db import Database, upgrade_database
from touchpoint.i18n import Translator, get_translator
from touchpoint.journeys.models import Delivery, OutboxMessage
from touchpoint.journeys.rules import Lane
from touchpoint.journeys.sender import OutboxSender, Pacing
from touchpoint.sandbox import Sandbox

MESSAGES = 10_000
TELEGRAM_GLOBAL_PER_S = 30.0
SCALE = 6.0  # time runs 6x faster: 180 messages/s overall, 1/6 s between messages to one chat
CHAOS_429 = 0.0005  # probability that the sandbox answers a send with 429 retry_after=1
CHATTERS = 20  # customers chatting with the bot during the drain
FIRST_ID = 10_000_000


@template("bench.outbox")
def _bench_message(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    return Rendered(f"Your order {params['n']} has shipped")


async def seed(db: Database) -> None:
    now = utcnow()
    customers = [
        dict(telegram_id=FIRST_ID + i, first_name="Bench", timezone="UTC", created_at=now,
             last_seen_at=now, marketing_consent=True, reachable=True, nudges_paused=False)
        for i in range(MESSAGES)
    ]
    async with db.session() as session:
        await session.execute(insert(Customer), customers)
        ids = dict((await session.execute(select(Customer.telegram_id, Customer.id))).all())
        rows = [
            dict(customer_id=ids[FIRST_ID + i], chat_id=FIRST_ID + i, lane=Lane.TRANSACTIONAL.value,
                 priority=Lane.TRANSACTIONAL.priority, template="bench.outbox", params={"n": i},
                 status="pending", due_at=now, created_at=now, attempts=0, edit_in_place=False)
            for i in range(MESSAGES)
        ]
        await session.execute(insert(OutboxMessage), rows)


def violations(times: list[float], limit: float, window: float) -> int:
    """How many sliding windows of ``window`` seconds hold more than ``limit`` sends."""
    count, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        if end - start + 1 > limit:
            count += 1
    return count


async def chat_during_drain(
    sandbox: Sandbox, stop: asyncio.Event, latencies: list[float], unanswered: list[int]
) -> None:
    async def one(user_id: int) -> None:
        while not stop.is_set():
            before = max((m["message_id"] for m in sandbox.messages(user_id)), default=0)
            started = time.perf_counter()
            sandbox.send_text(user_id, "/help")
            try:
                await sandbox.wait_for_bot_message(user_id, after_message_id=before, timeout=5)
            except TimeoutError:
                unanswered.append(user_id)
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.5)

    await asyncio.gather(*(one(user_id) for user_id in range(1, CHATTERS + 1)))


async def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="touchpoint-bench-"))
    url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    await upgrade_database(url)
    db = Database(url)
    await seed(db)

    sandbox = Sandbox()
    base_url = await sandbox.start()
    for i in range(MESSAGES):
        sandbox.user(FIRST_ID + i, "Bench")
    for user_id in range(1, CHATTERS + 1):
        sandbox.user(user_id, "Chatty", language_code="en")
    sandbox.set_random_retry_after(CHAOS_429, retry_after=1, seed=7)

    settings = load_settings(
        _env_file=None, database_url=url, telegram_api_base=base_url,
        bot_token=SecretStr(SANDBOX_TOKEN), messages_per_day=1000, flood_max_messages=1000,
    )
    bot = create_bot(settings)
    pacing = Pacing(global_per_second=TELEGRAM_GLOBAL_PER_S).scaled(SCALE)
    sender = OutboxSender(db, settings, TelegramChannel(bot), get_translator(), pacing=pacing,
                          batch_size=500, concurrency=64)
    chat_db = Database(url)
    dp = create_dispatcher(settings, chat_db)
    chat_bot = create_bot(settings)
    polling = asyncio.create_task(dp.start_polling(chat_bot, handle_signals=False, polling_timeout=1))
    await asyncio.sleep(1.0)

    stop_chatting = asyncio.Event()
    latencies: list[float] = []
    unanswered: list[int] = []
    chatting = asyncio.create_task(chat_during_drain(sandbox, stop_chatting, latencies, unanswered))
    stop_sender = asyncio.Event()
    started = time.monotonic()
    draining = asyncio.create_task(sender.run(stop_sender, idle_poll_s=0.2))
    while True:
        await asyncio.sleep(0.5)
        async with db.session() as session:
            left = (await session.execute(select(func.count()).select_from(OutboxMessage)
                                          .where(OutboxMessage.status != "sent"))).scalar_one()
        if left == 0 or time.monotonic() - started > 600:
            break
        if int(time.monotonic() - started) % 10 == 0:
            print(f"  {time.monotonic() - started:5.0f} s: {left} left", file=sys.stderr, flush=True)
    elapsed = time.monotonic() - started
    stop_sender.set()
    stop_chatting.set()
    await draining
    await chatting
    await dp.stop_polling()
    await polling

    bench_chats = {FIRST_ID + i for i in range(MESSAGES)}
    records = [r for r in sandbox.send_log if r.chat_id in bench_chats]
    ok_times = sorted(r.at for r in records if r.outcome == "ok")
    throttled = sum(1 for r in records if r.outcome == "429")
    per_chat: dict[int, list[float]] = {}
    for record in records:
        if record.outcome == "ok":
            per_chat.setdefault(record.chat_id, []).append(record.at)
    delivered_per_chat = {chat: len(sandbox.bot_messages(chat)) for chat in bench_chats}
    duplicates = sum(count - 1 for count in delivered_per_chat.values() if count > 1)
    lost = sum(1 for count in delivered_per_chat.values() if count == 0)
    chat_violations = sum(
        1 for times in per_chat.values() for a, b in itertools.pairwise(times)
        if b - a < pacing.private_chat_interval_s * 0.99
    )
    limit = pacing.global_per_second
    # Window of one (scaled) second; one extra send of slack for the window's edges.
    global_violations = violations(ok_times, limit + 1, 1.0)
    paused = throttled * 1.0  # each 429 told the sender to wait retry_after=1 s
    active = ok_times[-1] - ok_times[0] if len(ok_times) > 1 else elapsed
    raw_rate = len(ok_times) / active
    rate_fraction = raw_rate / limit
    rate_fraction_unpaused = len(ok_times) / max(active - paused, 1e-9) / limit
    async with db.session() as session:
        deliveries = (await session.execute(select(func.count()).select_from(Delivery))).scalar_one()

    p50 = statistics.median(latencies) if latencies else float("nan")
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) >= 100 else max(latencies or [0])
    print(f"messages:              {MESSAGES} to {MESSAGES} customers, SQLite, real aiogram client")
    print(f"limits (scale x{SCALE:g}):   {limit:g}/s overall (Telegram's {TELEGRAM_GLOBAL_PER_S:g}/s), "
          f"{pacing.private_chat_interval_s * 1000:.0f} ms per chat")
    print(f"drained in:            {elapsed:.1f} s ({active:.1f} s first to last send)")
    print(f"429s from sandbox:     {throttled} (each pauses everyone for retry_after = 1 s)")
    print(f"achieved rate:         {raw_rate:.1f}/s = {rate_fraction:.3f} of the limit "
          f"({rate_fraction_unpaused:.3f} outside retry_after pauses)")
    print(f"violations:            per chat {chat_violations}, global {global_violations}")
    print(f"duplicates / lost:     {duplicates} / {lost}   (delivery rows: {deliveries})")
    print(f"interactive replies:   {len(latencies)} while draining, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"{len(unanswered)} unanswered within 5 s")
    await sandbox.stop()
    await bot.session.close()
    await db.dispose()
    await chat_db.dispose()
    print(json.dumps({
        "rate_fraction": round(rate_fraction, 3), "chat_violations": chat_violations,
        "global_violations": global_violations, "duplicates": duplicates, "lost": lost,
        "interactive_p99_ms": round(p99, 1),
    }))


if __name__ == "__main__":
    asyncio.run(main())
