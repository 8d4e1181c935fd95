"""Shopify webhooks under load: how fast each is answered while the queue is being applied, and
how fast the queue is applied, over real HTTP, on SQLite and PostgreSQL.

    python bench/connectors.py            # PostgreSQL too when TOUCHPOINT_TEST_POSTGRES_URL is set

Shopify wants an answer within 5 s. A store's burst (new orders, payments, fulfilments, carts,
customer and stock updates, built from tests/data/connectors/) is posted by 8 clients in a process
of their own while the events API's worker applies the queue. The last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import copy
import json
import multiprocessing
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from pydantic import SecretStr

from touchpoint.config import load_settings
from touchpoint.db import Database, upgrade_database
from touchpoint.events_api.app import create_events_app
from touchpoint.events_api.connectors.common import base64_hmac
from touchpoint.events_api.connectors.queue import pending_count
from touchpoint.seed.demo import seed_demo

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "connectors" / "shopify"
SECRET = "bench-shopify-7d3e9a1c5f08b2e6d4a7c1f9e3b5d0a8"
EVENTS_SECRET = "bench-events-4c9e2a7f1d3b8e6a0c5f9d2b7e4a1c8f"
CLIENTS = 8
DELIVERIES = 600
LOCATION = "71234567890"


def load(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text("utf-8"))


def deliveries(count: int) -> list[tuple[str, dict[str, Any]]]:
    """A burst: each new order is created, paid and fulfilled; carts, customers and stock between."""
    order, fulfillment = load("orders_create"), load("fulfillments_create")
    checkout, customer = load("checkouts_create"), load("customers_update")
    product, level = load("products_update"), load("inventory_levels_update")
    out: list[tuple[str, dict[str, Any]]] = [("products/update", product)]
    n = 0
    while len(out) < count:
        n += 1
        created = copy.deepcopy(order) | {"id": 6_000_000 + n, "name": f"#{5000 + n}"}
        out.append(("orders/create", created))
        minute = f"{n % 60:02d}"
        out.append(("checkouts/update", checkout | {"token": f"t{n}",
                                                    "updated_at": f"2026-11-27T10:{minute}:00+01:00"}))
        out.append(("orders/paid", created | {"financial_status": "paid",
                                              "updated_at": "2026-11-27T10:05:00+01:00"}))
        hour = f"{11 + n % 12:02d}"
        out.append(("customers/update", customer | {"updated_at": f"2026-11-27T{hour}:00:00+01:00"}))
        shipped = {"id": 7_000_000 + n, "order_id": created["id"], "name": f"#{5000 + n}.1"}
        out.append(("fulfillments/create", fulfillment | shipped))
        out.append(("inventory_levels/update", level | {"available": n % 9,
                                                        "updated_at": f"2026-11-27T13:{minute}:00+01:00"}))
    return out[:count]


def post_all(url: str, items: list[tuple[str, dict[str, Any]]]) -> list[float]:
    """The platform's side, in its own process: the answer time of every delivery, in seconds."""
    encoded = [(topic, json.dumps(body).encode()) for topic, body in items]
    return asyncio.run(_post_all(url, encoded))


async def _post_all(url: str, items: list[tuple[str, bytes]]) -> list[float]:
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    latencies: list[float] = []

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            topic, raw = queue.get_nowait()
            headers = {"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": base64_hmac(SECRET, raw),
                       "X-Shopify-Event-Id": str(uuid.uuid4()), "Content-Type": "application/json"}
            started = time.perf_counter()
            async with session.post(url, data=raw, headers=headers) as response:
                if response.status != 200:
                    raise RuntimeError(f"{response.status}: {await response.text()}")
            latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(CLIENTS)))
    return latencies


async def bench(url: str) -> dict[str, float]:
    await upgrade_database(url)
    db = Database(url)
    settings = load_settings(_env_file=None, database_url=url, events_secret=SecretStr(EVENTS_SECRET),
                             shopify_webhook_secret=SecretStr(SECRET),
                             shopify_locations={LOCATION: "mitte"})
    await seed_demo(db)
    runner = web.AppRunner(create_events_app(settings, db), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    store = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        started = time.perf_counter()
        latencies = await asyncio.get_running_loop().run_in_executor(
            store, post_all, f"http://127.0.0.1:{port}/webhooks/shopify", deliveries(DELIVERIES))
        posted = time.perf_counter() - started
        for _ in range(12_000):  # the queue is applied in the background; look every 50 ms
            if not await pending_count(db):
                break
            await asyncio.sleep(0.05)
        drained = time.perf_counter() - started
    finally:
        store.shutdown()
        await runner.cleanup()
        await db.dispose()
    latencies.sort()
    return {"p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
            "max_ms": round(latencies[-1] * 1000, 1),
            "received_per_s": round(DELIVERIES / posted), "applied_per_s": round(DELIVERIES / drained)}


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
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        figures["sqlite"] = await bench(f"sqlite+aiosqlite:///{tmp}/bench.db")
    postgres_url = os.environ.get("TOUCHPOINT_TEST_POSTGRES_URL")
    if postgres_url:
        async with postgres_database(postgres_url) as url:
            figures["postgres"] = await bench(url)
    print(f"{'backend':<10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'received/s':>12}{'applied/s':>11}")
    for name, f in figures.items():
        print(f"{name:<10}{f['p50_ms']:>9}{f['p99_ms']:>9}{f['max_ms']:>9}{f['received_per_s']:>12}"
              f"{f['applied_per_s']:>11}")
    worst = max(f["max_ms"] for f in figures.values())
    print(f"Shopify's 5 s answer limit: {'met' if worst < 5000 else 'NOT met'} (slowest answer {worst} ms)")
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
