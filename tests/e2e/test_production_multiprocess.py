"""Two real `touchpoint run --webhook` processes on PostgreSQL and Redis behind a round-robin
proxy; the sandbox delivers updates for 200 customers and both processes drain one outbox."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import func, select

from tests.chat_texts import help_text
from tests.databases import postgres_database
from tests.e2e.harness import eventually
from tests.production import EVENTS_SECRET, RoundRobinProxy, free_port, redis_prefix, until
from touchpoint.clock import utcnow
from touchpoint.config import SANDBOX_TOKEN
from touchpoint.db import Database, upgrade_database
from touchpoint.i18n import get_translator
from touchpoint.messaging.models import Delivery, OutboxMessage
from touchpoint.sandbox import Sandbox

t = get_translator()
CUSTOMERS = 200
SEQUENCE, SEQUENCE_CHAT = 14, 20_001
LOCALES = ("en", "ru", "zh")
# The real CLI entry point; importing tests.production first registers the test's outbox template.
LAUNCH = "import tests.production; from bot.cli import main; main()"
ROOT = Path(__file__).resolve().parents[2]


async def ready(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(url + "/readyz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


@pytest.fixture
async def services() -> AsyncIterator[tuple[str, str, str]]:
    async with postgres_database("tp_multi") as database_url, redis_prefix() as (redis_url, prefix):
        await upgrade_database(database_url)
        yield database_url, redis_url, prefix


async def test_two_webhook_processes_behave_as_one_bot(
    services: tuple[str, str, str], tmp_path: Path
) -> None:
    database_url, redis_url, prefix = services
    sandbox = Sandbox()
    api_base = await sandbox.start("127.0.0.1", 0)
    ports = [free_port(), free_port()]
    proxy = RoundRobinProxy([f"http://127.0.0.1:{port}" for port in ports])
    await proxy.start()
    db = Database(database_url)
    processes: list[asyncio.subprocess.Process] = []
    try:
        users = list(range(10_001, 10_001 + CUSTOMERS))
        now = utcnow()
        async with db.session() as session:
            for n, user_id in enumerate(users):
                session.add(OutboxMessage(chat_id=user_id, lane="reply", template="test.process_note",
                                          params={"n": n}, due_at=now, created_at=now))
            # One chat with 14 messages: both processes drain, the chat gets them in order, paced.
            for n in range(SEQUENCE):
                session.add(OutboxMessage(chat_id=SEQUENCE_CHAT, lane="reply", template="test.process_note",
                                          params={"n": f"seq {n:02d}"}, due_at=now, created_at=now))
        for n, user_id in enumerate(users):
            sandbox.user(user_id, first_name=f"C{n}", language_code=LOCALES[n % 3])
        sandbox.user(SEQUENCE_CHAT, first_name="Seq", language_code="en")

        for index, port in enumerate(ports):
            env = {
                # This checkout's code, not whichever one the environment has installed.
                **os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
                "TOUCHPOINT_BOT_TOKEN": SANDBOX_TOKEN, "TOUCHPOINT_TELEGRAM_API_BASE": api_base,
                "TOUCHPOINT_DATABASE_URL": database_url, "TOUCHPOINT_REDIS_URL": redis_url,
                "TOUCHPOINT_REDIS_PREFIX": prefix, "TOUCHPOINT_WEBHOOK_URL": proxy.url + "/telegram/webhook",
                "TOUCHPOINT_WEBHOOK_HOST": "127.0.0.1", "TOUCHPOINT_WEBHOOK_PORT": str(port),
                "TOUCHPOINT_LOG_FORMAT": "json", "TOUCHPOINT_SHUTDOWN_GRACE_S": "5",
                "TOUCHPOINT_LOCALES_DIR": str(ROOT / "locales"),
                # Every process serves the store events API and the console, each on its own port here.
                "TOUCHPOINT_EVENTS_SECRET": EVENTS_SECRET,
                "TOUCHPOINT_EVENTS_API_PORT": str(free_port()), "TOUCHPOINT_CONSOLE_PORT": str(free_port()),
            }
            with (tmp_path / f"bot{index}.log").open("wb") as log:
                processes.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-c", LAUNCH, "run", "--webhook",
                    env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                ))
        for port in ports:
            async def up(url: str = f"http://127.0.0.1:{port}") -> bool:
                return await ready(url)

            await eventually(up, timeout=90)  # interpreter start-up and imports dominate

        # Every customer opens the menu, then asks for help: answers in their own language.
        for user_id in users:
            sandbox.send_text(user_id, "/start")
        for user_id in users:
            sandbox.send_text(user_id, "/help")

        def expected(n: int) -> list[str]:
            locale = LOCALES[n % 3]
            return [t(locale, "start.welcome", name=f"C{n}", brand="Brewhaus"), help_text(locale)]

        def answers(user_id: int) -> list[str]:
            return [m["text"] for m in sandbox.bot_messages(user_id) if not m["text"].startswith("note for")]

        await until(lambda: all(len(answers(u)) >= 2 for u in users), timeout=60, interval=0.5)
        for n, user_id in enumerate(users):
            assert sorted(answers(user_id)) == sorted(expected(n)), user_id
        assert all(hits > 0 for hits in proxy.hits.values())  # both processes took updates

        # The outbox was drained by both processes together, each row exactly once.
        def notes(user_id: int) -> list[str]:
            return [m["text"] for m in sandbox.bot_messages(user_id) if m["text"].startswith("note for")]

        await until(lambda: all(notes(u) for u in users), timeout=60, interval=0.5)
        await asyncio.sleep(0.5)
        assert all(notes(u) == [f"note for {n}"] for n, u in enumerate(users))
        await until(lambda: len(notes(SEQUENCE_CHAT)) >= SEQUENCE, timeout=60, interval=0.5)
        assert notes(SEQUENCE_CHAT) == [f"note for seq {n:02d}" for n in range(SEQUENCE)]
        sent_at = [record.at for record in sandbox.send_log
                   if record.chat_id == SEQUENCE_CHAT and record.outcome == "ok"]
        # One a second per private chat, whichever process sent the previous one (a little slack
        # for the moment a request is logged).
        assert min(b - a for a, b in itertools.pairwise(sent_at)) >= 0.9
        async def settled() -> bool:  # the last outcomes are written by the next group commit
            async with db.session() as session:
                leases = set((await session.exec(select(OutboxMessage.lease_until))).all())
            return leases == {None}

        await eventually(settled, timeout=10)
        async with db.session() as session:
            delivered = (await session.exec(select(func.count()).select_from(Delivery))).one()
        assert delivered == CUSTOMERS + SEQUENCE  # each row sent once

        # SIGTERM: both stop cleanly within the grace period.
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(process.wait(), 20) for process in processes]
        assert codes == [0, 0]
        logs = "".join((tmp_path / f"bot{i}.log").read_text() for i in range(2))
        entries = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
        assert any(entry.get("event") == "shutdown: done" for entry in entries)
        assert "C17" not in logs  # customer names never reach the logs
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await proxy.stop()
        await sandbox.stop()
        await db.dispose()
