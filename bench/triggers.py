"""One trigger-evaluation tick over a large event log.

PostgreSQL: 1,000,000 customers and 10,000,000 historical events (goal: a tick < 2 s).
SQLite: 100,000 customers and 1,000,000 events.

The history is generated inside the database (generate_series / a recursive CTE), the cursor is
put at its end, and then one tick's worth of new events arrives: --new events (default 1,000,
i.e. ~33 events/s over a 30 s tick, about 25× the history's average rate) for random customers —
carts, product views (some the third view of a product), orders, deliveries and chat noise. The
tick reads them past the cursor, applies exit goals, checks triggers, counts repeated views and
"unless" events in each customer's history, and enrols. Timed: `JourneyEngine.evaluate_new_events`.

    python bench/triggers.py [--scale 0.1] [--new 1000] [--skip-postgres]

Last line: {"postgres_1m_tick_s": …, "sqlite_100k_tick_s": …}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import func, insert, select, text

from touchpoint.config import load_settings
from touchpoint.customers.models import BehaviourEvent
from touchpoint.db import Database, upgrade_database
from touchpoint.journeys.engine import JourneyEngine
from touchpoint.journeys.models import Enrolment, JourneyCursor
from touchpoint.journeys.spec import load_journeys

warnings.filterwarnings("ignore", category=DeprecationWarning)  # sqlmodel's session.execute notice
POSTGRES_URL = os.environ.get("TOUCHPOINT_BENCH_POSTGRES_URL") or os.environ.get(
    "TOUCHPOINT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
HISTORY_TYPES = ["product.viewed", "product.viewed", "chat.menu", "chat.menu", "cart.updated",
                 "order.created", "order.status_changed", "chat.help"]

PG_CUSTOMERS = """
INSERT INTO customers (telegram_id, first_name, timezone, marketing_consent, nudges_paused, reachable,
                       created_at, last_seen_at, store_customer_id)
SELECT 10000000 + i, 'C', 'Europe/Berlin', (i % 4 <> 0), false, (i % 50 <> 0), now() - interval '400 days',
       now() - (i % 120) * interval '1 day', CASE WHEN i % 2 = 0 THEN 'S-' || i END
FROM generate_series(1, CAST(:n AS integer)) AS i
"""
PG_EVENTS = """
INSERT INTO behaviour_events (customer_id, type, source, payload, occurred_at)
SELECT 1 + (i * 7919) % CAST(:customers AS bigint), (ARRAY{types})[1 + i % {ntypes}], 'store',
       json_build_object('sku', 'K-' || (i % 500), 'cart_id', 'c' || (i % 100000), 'total_minor', i % 9000,
                         'status', 'delivered', 'order_number', 'A-' || i),
       now() - (i % 7776000) * interval '1 second'
FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS i
"""
SQLITE_CUSTOMERS = """
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n)
INSERT INTO customers (telegram_id, first_name, timezone, marketing_consent, nudges_paused, reachable,
                       created_at, last_seen_at, store_customer_id)
SELECT 10000000 + i, 'C', 'Europe/Berlin', (i % 4 <> 0), 0, (i % 50 <> 0), :old,
       datetime('now', '-' || (i % 120) || ' days'), CASE WHEN i % 2 = 0 THEN 'S-' || i END FROM s
"""
SQLITE_EVENTS = """
WITH RECURSIVE s(i) AS (SELECT :start UNION ALL SELECT i + 1 FROM s WHERE i < :stop)
INSERT INTO behaviour_events (customer_id, type, source, payload, occurred_at)
SELECT 1 + (i * 7919) % :customers, json_extract(:types, '$[' || (i % {ntypes}) || ']'), 'store',
       json_object('sku', 'K-' || (i % 500), 'cart_id', 'c' || (i % 100000), 'total_minor', i % 9000,
                   'status', 'delivered', 'order_number', 'A-' || i),
       datetime('now', '-' || (i % 7776000) || ' seconds') FROM s
"""


async def seed(db: Database, customers: int, events: int) -> None:
    pg = db.dialect == "postgresql"
    chunk = 1_000_000
    async with db.session() as session:
        if pg:
            await session.execute(text(PG_CUSTOMERS), {"n": customers})
        else:
            await session.execute(text(SQLITE_CUSTOMERS), {"n": customers, "old": "2025-01-01 00:00:00"})
    types = "[" + ",".join(f"'{t}'" for t in HISTORY_TYPES) + "]"
    for start in range(1, events + 1, chunk):
        stop = min(start + chunk - 1, events)
        async with db.session() as session:
            if pg:
                await session.execute(text(PG_EVENTS.format(types=types, ntypes=len(HISTORY_TYPES))),
                                      {"customers": customers, "start": start, "stop": stop})
            else:
                await session.execute(text(SQLITE_EVENTS.format(ntypes=len(HISTORY_TYPES))),
                                      {"customers": customers, "start": start, "stop": stop,
                                       "types": json.dumps(HISTORY_TYPES)})
        print(f"  … {stop:,} events", file=sys.stderr, flush=True)
    async with db.session() as session:
        if pg:
            await session.execute(text("ANALYZE"))
        last = (await session.execute(select(func.max(BehaviourEvent.id)))).scalar_one()
        session.add(JourneyCursor(name="events", last_event_id=last, updated_at=datetime.now(UTC)))


async def new_events(db: Database, customers: int, count: int, rng: random.Random) -> None:
    now = datetime.now(UTC) - timedelta(minutes=1)
    rows = []
    for n in range(count):
        customer = rng.randint(1, customers)
        kind = rng.choices(["cart.updated", "product.viewed", "order.created", "order.status_changed",
                            "chat.menu"], [30, 40, 10, 10, 10])[0]
        payload = {"cart_id": f"n{n}", "total_minor": rng.choice([900, 4990, 12900]),
                   "sku": f"K-{rng.randint(0, 499)}", "status": "delivered", "order_number": f"N-{n}"}
        rows.append({"customer_id": customer, "type": kind, "source": "store", "payload": payload,
                     "occurred_at": now + timedelta(milliseconds=n)})
    async with db.session() as session:
        await session.execute(insert(BehaviourEvent), rows)


async def run(url: str, customers: int, events: int, new: int) -> tuple[float, int]:
    await upgrade_database(url)
    db = Database(url)
    try:
        started = time.perf_counter()
        await seed(db, customers, events)
        print(f"  seeded {customers:,} customers, {events:,} events in {time.perf_counter() - started:.0f}s",
              file=sys.stderr)
        await new_events(db, customers, new, random.Random(7))
        engine = JourneyEngine(load_settings(_env_file=None), load_journeys())
        started = time.perf_counter()
        enrolled = await engine.evaluate_new_events(db)
        elapsed = time.perf_counter() - started
        async with db.session() as session:
            total = (await session.execute(select(func.count()).select_from(Enrolment))).scalar_one()
        assert total == enrolled
        return elapsed, enrolled
    finally:
        await db.dispose()


async def postgres(customers: int, events: int, new: int) -> tuple[float, int]:
    dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    name = f"tp_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        return await run(POSTGRES_URL.rsplit("/", 1)[0] + "/" + name, customers, events, new)
    finally:
        admin = await asyncpg.connect(dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full sizes")
    parser.add_argument("--new", type=int, default=1000, help="new events in the measured tick")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    figures: dict[str, float | None] = {"postgres_1m_tick_s": None, "sqlite_100k_tick_s": None}
    pg_customers, sq_customers = int(1_000_000 * args.scale), int(100_000 * args.scale)
    with tempfile.TemporaryDirectory() as tmp:
        seconds, enrolled = await run(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", sq_customers,
                                      sq_customers * 10, args.new)
    print(f"SQLite     {sq_customers:>9,} customers {sq_customers * 10:>11,} events: tick over {args.new:,} "
          f"new events {seconds:.3f}s ({enrolled} enrolled), {seconds / 2:.2f}× the 2 s budget")
    figures["sqlite_100k_tick_s"] = round(seconds, 3)
    if not args.skip_postgres:
        seconds, enrolled = await postgres(pg_customers, pg_customers * 10, args.new)
        print(f"PostgreSQL {pg_customers:>9,} customers {pg_customers * 10:>11,} events: tick over "
              f"{args.new:,} new events {seconds:.3f}s ({enrolled} enrolled), "
              f"{seconds / 2:.2f}× the 2 s budget")
        figures["postgres_1m_tick_s"] = round(seconds, 3)
    if args.scale != 1.0:
        print(f"(scaled: {args.scale} of the full sizes)")
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
