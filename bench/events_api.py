"""Signed store events ingested per second, over real HTTP, on SQLite and PostgreSQL.

    python bench/events_api.py            # PostgreSQL too when TOUCHPOINT_TEST_POSTGRES_URL is set

Each run migrates a fresh database, loads the demo shop, links a few chats (so status changes
queue live order cards), then posts a realistic mix (views, carts, new orders, status changes)
as single-event requests and as batches of 100, with a few clients in parallel. The clients run in
a process of their own, as the store's systems do: their JSON encoding and signing are not charged
to the bot. The last line is one JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import multiprocessing
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from pydantic import SecretStr
from sqlmodel import select

from touchpoint.clock import utcnow
from touchpoint.config import load_settings
from touchpoint.customers.models import Customer
from touchpoint.db import Database, upgrade_database
from touchpoint.events_api.app import create_events_app
from touchpoint.events_api.signing import signed_headers
from touchpoint.orders.models import Order
from touchpoint.seed.demo import seed_demo

SECRET = "0b7e3f9d2c6a41e8b5d07f3a9c2e6b14d8f0a5c3e7b92d16f4a8c0e3b5d7f9a2"
CLIENTS = 4
SINGLE_EVENTS = 1_000
BATCH_SIZE = 100
BATCHES = 100
CUSTOMERS = [f"C-100{i}" for i in range(1, 9)]
SKUS = ["ESP-001", "ESP-002", "ESP-003"]


class EventMaker:
    """40% views, 30% cart updates, 10% new orders, 20% status changes of those orders."""

    def __init__(self, run: str, orders: list[str]) -> None:
        # Status changes go to the seeded orders: with parallel clients, an order created in one
        # request may not exist yet when another request moves it on.
        self.run, self.counter, self.orders = run, itertools.count(), [[number, 0] for number in orders]
        self.statuses = ["paid", "packed", "shipped", "out_for_delivery", "delivered"]

    def next(self) -> dict[str, Any]:
        n = next(self.counter)
        customer = CUSTOMERS[n % len(CUSTOMERS)]
        event_id = f"{self.run}-{n}"
        kind = n % 10
        if kind < 4:
            return {"id": event_id, "type": "product.viewed",
                    "data": {"customer_id": customer, "sku": SKUS[n % 3]}}
        if kind < 7:
            return {"id": event_id, "type": "cart.updated", "data": {"customer_id": customer, "items": [
                {"sku": SKUS[n % 3], "quantity": 1 + n % 2, "unit_price_minor": 2990}]}}
        if kind == 7:
            number = f"BN-{n:08d}"
            return {"id": event_id, "type": "order.created", "data": {
                "number": number, "customer_id": customer, "contact_phone": "+4915112345671",
                "items": [{"sku": SKUS[n % 3], "quantity": 1, "unit_price_minor": 2990}]}}
        order = self.orders[n % len(self.orders)]
        status = self.statuses[order[1] % len(self.statuses)]
        order[1] += 1
        data: dict[str, Any] = {"number": order[0], "status": status}
        if status == "shipped":
            data |= {"carrier": "DHL", "tracking_number": f"JJD{n}"}
        return {"id": event_id, "type": "order.status_changed", "data": data}


def post_all(url: str, bodies: list[Any]) -> float:
    """The store's side, in its own process: posts the bodies with a few clients in parallel and
    returns how long that took, in seconds."""
    encoded = [json.dumps(body).encode() for body in bodies]
    return asyncio.run(_post_all(url, encoded))


async def _post_all(url: str, bodies: list[bytes]) -> float:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            raw = queue.get_nowait()
            headers = signed_headers(SECRET, int(time.time()), raw)
            async with session.post(url, data=raw, headers=headers) as response:
                if response.status != 200:
                    raise RuntimeError(f"{response.status}: {await response.text()}")

    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(CLIENTS)))
        return time.perf_counter() - started


async def measure(store: ProcessPoolExecutor, url: str, bodies: list[Any], events: int) -> float:
    elapsed = await asyncio.get_running_loop().run_in_executor(store, post_all, url, bodies)
    return events / elapsed


async def bench(url: str) -> dict[str, float]:
    await upgrade_database(url)
    db = Database(url)
    settings = load_settings(_env_file=None, database_url=url, events_secret=SecretStr(SECRET))
    await seed_demo(db)
    async with db.session() as session:  # linked chats: status changes queue their live cards
        for i, store_id in enumerate(CUSTOMERS):
            now = utcnow()
            session.add(Customer(telegram_id=9_000_000 + i, timezone="Europe/Berlin", created_at=now,
                                 last_seen_at=now, store_customer_id=store_id))
    runner = web.AppRunner(create_events_app(settings, db), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    endpoint = f"http://127.0.0.1:{port}/api/v1/events"
    store = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        async with db.session() as session:
            numbers = list((await session.exec(select(Order.number))).all())
        maker = EventMaker(uuid.uuid4().hex[:8], numbers)
        await measure(store, endpoint, [maker.next() for _ in range(50)], 50)  # warm-up
        single = await measure(store, endpoint, [maker.next() for _ in range(SINGLE_EVENTS)], SINGLE_EVENTS)
        batches = [{"events": [maker.next() for _ in range(BATCH_SIZE)]} for _ in range(BATCHES)]
        batch = await measure(store, endpoint, batches, BATCH_SIZE * BATCHES)
    finally:
        store.shutdown()
        await runner.cleanup()
        await db.dispose()
    return {"single_eps": round(single), "batch_eps": round(batch)}


@asynccontextmanager
async def postgres_database(base_url: str) -> AsyncIterator[str]:
    dsn = base_url.replace("postgresql+asyncpg://", "postgresql://")
    name = f"tp_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield base_url.rsplit("/", 1)[0] + "/" + name
    finally:
        admin = await asyncpg.connect(dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main() -> None:
    figures: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = await bench(f"sqlite+aiosqlite:///{tmp}/bench.db")
    figures["sqlite_batch_eps"], figures["sqlite_single_eps"] = sqlite["batch_eps"], sqlite["single_eps"]
    postgres_url = os.environ.get("TOUCHPOINT_TEST_POSTGRES_URL")
    if postgres_url:
        async with postgres_database(postgres_url) as url:
            postgres = await bench(url)
        figures["postgres_batch_eps"] = postgres["batch_eps"]
        figures["postgres_single_eps"] = postgres["single_eps"]
    else:
        figures["postgres_batch_eps"] = figures["postgres_single_eps"] = None
    print(f"{'backend':<12}{'single ev/s':>14}{'batch×100 ev/s':>16}{'batch/single':>14}")
    for name in ("sqlite", "postgres"):
        single, batch = figures[f"{name}_single_eps"], figures[f"{name}_batch_eps"]
        if single and batch:
            print(f"{name:<12}{single:>14,.0f}{batch:>16,.0f}{batch / single:>13.1f}×")
    if figures["postgres_batch_eps"]:
        print(f"goal ≥ 2,000 ev/s in batches on PostgreSQL: "
              f"{'met' if figures['postgres_batch_eps'] >= 2000 else 'NOT met'}")
    print(json.dumps({key: figures[key] for key in ("sqlite_batch_eps", "postgres_batch_eps",
                                                    "postgres_single_eps")}))


if __name__ == "__main__":
    asyncio.run(main())
