"""`touchpoint events send FILE` against a real server, and the runner's start-up check."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.runner import run_bot
from touchpoint.config import SANDBOX_TOKEN, ConfigError, load_settings
from touchpoint.db import Database
from touchpoint.events_api.app import create_events_app


async def touchpoint(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from bot.cli import main; main()", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def test_send_signs_and_posts_a_file(sqlite_db: Database, tmp_path: Path) -> None:
    settings = load_settings(_env_file=None, database_url=sqlite_db.url)
    runner = web.AppRunner(create_events_app(settings, sqlite_db, secret="cli-secret"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/api/v1/events"
    events = tmp_path / "events.json"
    events.write_text(json.dumps([{"id": "cli-1", "type": "product.viewed",
                                   "data": {"customer_id": "C-1", "sku": "ESP-001"}}]))
    try:
        code, output = await touchpoint("events", "send", str(events), "--url", url, "--secret", "cli-secret")
        assert code == 0 and '"applied": 1' in output
        code, output = await touchpoint("events", "send", str(events), "--url", url, "--secret", "cli-secret")
        assert code == 0 and '"duplicates": 1' in output
        code, output = await touchpoint("events", "send", str(events), "--url", url, "--secret", "wrong")
        assert code == 1 and "bad_signature" in output
    finally:
        await runner.cleanup()


async def test_run_refuses_to_start_without_a_secret(sqlite_url: str) -> None:
    settings = load_settings(_env_file=None, database_url=sqlite_url, bot_token=SecretStr(SANDBOX_TOKEN))
    with pytest.raises(ConfigError, match="TOUCHPOINT_EVENTS_SECRET"):
        await run_bot(settings)
