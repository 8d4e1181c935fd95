"""Update throughput: a bare aiogram dispatcher against Touchpoint's full stack, side by side.

The same stream of mixed customer updates (menu taps, questions, order look-ups, commands) goes
through (a) a bare Dispatcher whose handlers only reply and (b) Touchpoint's dispatcher with all
its middlewares and a real database, on SQLite and (when a server is given) PostgreSQL. Both use
an in-process fake Bot API session, so the figures are the bot's own cost, not the network's.
For scale, (c) is the floor of any bot with a database: the bare dispatcher plus one session per
update that reads the customer by an indexed key, nothing else. Then resident memory with
100,000 customers in the database.

    python bench/updates.py [--updates 2000] [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test]

PostgreSQL defaults to TOUCHPOINT_BENCH_POSTGRES_URL or TOUCHPOINT_TEST_POSTGRES_URL; without
one its figures are null. The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
from aiogram import BaseMiddleware, Bot, Dispatcher, F, Router
from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import CallbackQuery, Message, Update
from pydantic import SecretStr
from sqlalchemy import insert, select

from bot.app import create_dispatcher
from bot.keyboards import MenuCallback
from touchpoint.config import SANDBOX_TOKEN, load_settings
from touchpoint.customers.models import Customer
from touchpoint.db import Database, upgrade_database

BIG_POPULATION = 100_000
QUESTIONS = ("do you have oat milk?", "what time do you open on sunday", "is the grinder in stock")
LOOKUPS = ("where is my order 10234", "order status A-5531", "track my parcel please")
MENU = ("products", "orders", "returns", "invite")


class FakeSession(BaseSession):
    """Answers every Bot API call in memory, as Telegram would, with no network."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self._message_id = 0

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        self.calls += 1
        name = method.__api_method__
        if name in ("sendMessage", "editMessageText"):
            self._message_id += 1
            chat_id = getattr(method, "chat_id", None) or 1
            result: Any = {"message_id": self._message_id, "date": 0,
                           "chat": {"id": chat_id, "type": "private"}, "text": getattr(method, "text", "")}
        else:
            result = True
        # Parsed like a real answer, so both stacks pay the same decoding cost.
        response = self.check_response(bot, method, 200, json.dumps({"ok": True, "result": result}))
        return response.result  # type: ignore[return-value]

    async def close(self) -> None:
        return None

    async def stream_content(self, *args: Any, **kwargs: Any) -> AsyncIterator[bytes]:  # pragma: no cover
        raise NotImplementedError
        yield b""


def make_stream(customers: int, per_customer: int, first_user: int = 500_000) -> list[dict[str, Any]]:
    """Each customer: /start, then a mix of menu taps, questions and order look-ups, interleaved."""
    stream: list[dict[str, Any]] = []
    update_id = 0
    for step in range(per_customer):
        for n in range(customers):
            user = {"id": first_user + n, "is_bot": False, "first_name": f"Bench{n}",
                    "language_code": ("en", "ru", "zh")[n % 3]}
            chat = {"id": user["id"], "type": "private"}
            update_id += 1
            kind = "start" if step == 0 else ("tap", "question", "lookup", "help")[(step + n) % 4]
            if kind == "tap":
                data = MenuCallback(action=MENU[(step + n) % len(MENU)]).pack()
                message = {"message_id": 1, "date": 0, "chat": chat, "text": "menu",
                           "from": {"id": 42, "is_bot": True, "first_name": "Touchpoint"}}
                query = {"id": str(update_id), "from": user, "chat_instance": "1", "data": data,
                         "message": message}
                stream.append({"update_id": update_id, "callback_query": query})
                continue
            text = {"start": "/start", "help": "/help", "question": QUESTIONS[n % 3],
                    "lookup": LOOKUPS[n % 3]}[kind]
            entities = [{"type": "bot_command", "offset": 0, "length": len(text)}] if text[0] == "/" else None
            message = {"message_id": update_id, "date": 0, "chat": chat, "from": user, "text": text}
            if entities:
                message["entities"] = entities
            stream.append({"update_id": update_id, "message": message})
    return stream


def bare_dispatcher() -> Dispatcher:
    router = Router()

    async def reply(message: Message) -> None:
        await message.answer("ok")

    async def tap(query: CallbackQuery) -> None:
        await query.answer()
        await query.bot.send_message(query.from_user.id, "ok")  # type: ignore[union-attr]

    router.message.register(reply, F.text)
    router.callback_query.register(tap)
    dp = Dispatcher()
    dp.include_router(router)
    return dp


ReadCustomer = Callable[[int], Awaitable[Any]]


def floor_dispatcher(read_customer: ReadCustomer) -> Dispatcher:
    """The bare dispatcher plus one indexed read of the customer per update, in a transaction."""

    class OneRead(BaseMiddleware):
        async def __call__(self, handler: Callable[..., Any], event: Any, data: dict[str, Any]) -> Any:
            await read_customer(data["event_from_user"].id)
            return await handler(event, data)

    dp = bare_dispatcher()
    dp.update.middleware(OneRead())
    return dp


@asynccontextmanager
async def customer_reader(database_url: str, raw_driver: bool) -> AsyncIterator[ReadCustomer]:
    """Reads a customer id by Telegram id: through the stack's session, or the bare driver."""
    if not raw_driver:
        db = Database(database_url)

        async def through_session(telegram_id: int) -> Any:
            async with db.session() as session:
                query = select(Customer.id).where(Customer.telegram_id == telegram_id)
                return (await session.exec(query)).first()  # type: ignore[call-overload]
        try:
            yield through_session
        finally:
            await db.dispose()
    elif database_url.startswith("sqlite"):
        async with aiosqlite.connect(database_url.split(":///", 1)[1]) as connection:
            async def with_aiosqlite(telegram_id: int) -> Any:
                async with connection.execute("SELECT id FROM customers WHERE telegram_id = ?",
                                              (telegram_id,)) as cursor:
                    row = await cursor.fetchone()
                await connection.commit()
                return row
            yield with_aiosqlite
    else:
        pool = await asyncpg.create_pool(database_url.replace("+asyncpg", ""), min_size=1, max_size=1)
        try:
            async def with_asyncpg(telegram_id: int) -> Any:
                async with pool.acquire() as connection, connection.transaction():
                    return await connection.fetchrow("SELECT id FROM customers WHERE telegram_id = $1",
                                                     telegram_id)
            yield with_asyncpg
        finally:
            await pool.close()


async def floor(database_url: str, stream: list[dict[str, Any]]) -> dict[str, float]:
    """Updates/s of the floor through the stack's session and through the bare driver."""
    result = {}
    for how, raw_driver in (("session", False), ("driver", True)):
        async with customer_reader(database_url, raw_driver) as read_customer:
            bot = Bot(SANDBOX_TOKEN, session=FakeSession())
            result[how], _latencies = await run_stream(floor_dispatcher(read_customer), bot, stream)
    return result


async def run_stream(dp: Dispatcher, bot: Bot, stream: list[dict[str, Any]]) -> tuple[float, list[float]]:
    """Feeds the stream one update at a time; returns updates/s and per-update latencies (ms)."""
    updates = [Update.model_validate(raw, context={"bot": bot}) for raw in stream]
    latencies: list[float] = []
    started = time.perf_counter()
    for update in updates:
        before = time.perf_counter()
        await dp.feed_update(bot, update)
        latencies.append((time.perf_counter() - before) * 1000)
    elapsed = time.perf_counter() - started
    return len(updates) / elapsed, latencies


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def full_stack(database_url: str, stream: list[dict[str, Any]]) -> tuple[float, list[float], int]:
    settings = load_settings(_env_file=None, database_url=database_url, bot_token=SecretStr(SANDBOX_TOKEN),
                             flood_max_messages=1_000_000)  # the stream is fast on purpose: no flood control
    db = Database(database_url)
    session = FakeSession()
    bot = Bot(SANDBOX_TOKEN, session=session)
    dp = create_dispatcher(settings, db)
    try:
        ups, latencies = await run_stream(dp, bot, stream)
    finally:
        await db.dispose()
    return ups, latencies, session.calls


@asynccontextmanager
async def postgres_database(server_url: str) -> AsyncIterator[str]:
    plain = server_url.replace("postgresql+asyncpg://", "postgresql://")
    name = f"tp_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(plain, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        admin = await asyncpg.connect(plain, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def add_customers(database_url: str, count: int) -> None:
    db = Database(database_url)
    now = datetime.now(UTC)
    try:
        for start in range(0, count, 10_000):
            rows = [{"telegram_id": 900_000_000 + n, "first_name": "", "timezone": "Europe/Berlin",
                     "created_at": now, "last_seen_at": now, "marketing_consent": False,
                     "nudges_paused": False, "reachable": True}
                    for n in range(start, min(count, start + 10_000))]
            async with db.engine.begin() as connection:
                await connection.execute(insert(Customer), rows)
    finally:
        await db.dispose()


def rss_mb() -> float:
    """Resident memory now (Linux), else the peak so far."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(label: str, ups: float, latencies: list[float], bare_ups: float, out: Callable[..., None]) -> None:
    out(f"  {label:<22} {ups:8.0f} updates/s   ratio {ups / bare_ups:5.2f}   "
        f"p50 {percentile(latencies, 50):6.2f} ms   p99 {percentile(latencies, 99):6.2f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=2000, help="updates per run (default 2000)")
    parser.add_argument("--postgres", default=os.environ.get("TOUCHPOINT_BENCH_POSTGRES_URL")
                        or os.environ.get("TOUCHPOINT_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    customers = max(1, args.updates // 5)
    stream = make_stream(customers, 5)
    print(f"stream: {len(stream)} updates from {customers} customers "
          f"(/start, menu taps, questions, order look-ups, /help)")

    bare_ups, bare_latencies = await run_stream(bare_dispatcher(), Bot(SANDBOX_TOKEN, session=FakeSession()),
                                                stream)
    report("(a) bare aiogram", bare_ups, bare_latencies, bare_ups, print)

    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await upgrade_database(sqlite_url)
        sqlite_ups, sqlite_latencies, calls = await full_stack(sqlite_url, stream)
        report("(b) Touchpoint SQLite", sqlite_ups, sqlite_latencies, bare_ups, print)
        floor_ups = {"SQLite": await floor(sqlite_url, stream)}

        postgres_ups: float | None = None
        postgres_latencies: list[float] = []
        if args.postgres:
            async with postgres_database(args.postgres) as postgres_url:
                await upgrade_database(postgres_url)
                postgres_ups, postgres_latencies, _ = await full_stack(postgres_url, stream)
                floor_ups["Postgres"] = await floor(postgres_url, stream)
            report("(b) Touchpoint Postgres", postgres_ups, postgres_latencies, bare_ups, print)
        else:
            print("  (b) Touchpoint Postgres  skipped: no --postgres / TOUCHPOINT_TEST_POSTGRES_URL")
        print(f"  Bot API calls per update (full stack): {calls / len(stream):.2f}")
        print("  (c) floor: bare + one indexed read of the customer per update, in a transaction")
        for backend, ups in floor_ups.items():
            print(f"      {backend:<8} through the session {ups['session']:6.0f} updates/s "
                  f"(ratio {ups['session'] / bare_ups:4.2f}), bare driver {ups['driver']:6.0f} "
                  f"(ratio {ups['driver'] / bare_ups:4.2f})")

        big_url = f"sqlite+aiosqlite:///{tmp}/big.db"
        await upgrade_database(big_url)
        await add_customers(big_url, BIG_POPULATION)
        big_ups, _big_latencies, _ = await full_stack(big_url, make_stream(customers, 5, first_user=700_000))
        rss = rss_mb()
        print(f"  {BIG_POPULATION:,} customers in SQLite: {big_ups:.0f} updates/s, "
              f"resident memory {rss:.0f} MB")

    figures = {
        "bare_ups": round(bare_ups, 1),
        "sqlite_ups": round(sqlite_ups, 1),
        "postgres_ups": round(postgres_ups, 1) if postgres_ups is not None else None,
        "ratio_sqlite": round(sqlite_ups / bare_ups, 3),
        "ratio_postgres": round(postgres_ups / bare_ups, 3) if postgres_ups is not None else None,
        "p99_ms_sqlite": round(percentile(sqlite_latencies, 99), 2),
        "p99_ms_postgres": round(percentile(postgres_latencies, 99), 2) if postgres_latencies else None,
        "rss_mb_100k_customers": round(rss, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
