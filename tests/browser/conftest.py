"""Browser tests: Playwright driving Debian's chromium (no browser download) against the real stack:
sandbox Bot API + the bot polling it + the outbox sender + the staff console, all in this process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.channel import TelegramChannel
from tests.console_helpers import make_staff
from tests.e2e.harness import BotHarness
from tests.factories import quiet_hours_elsewhere
from touchpoint.console import create_console_app
from touchpoint.console.auth import POKE_SENDER
from touchpoint.i18n import get_translator
from touchpoint.messaging.sender import OutboxSender, Pacing
from touchpoint.sandbox import Sandbox

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def chromium_path() -> str | None:
    for candidate in (os.environ.get("TOUCHPOINT_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless chromium; skipped without it locally, a failure under CI (which installs it)."""
    path = chromium_path()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed: .ci/run installs it with apt-get")
        pytest.skip("chromium not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=path, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Stack:
    sandbox: Sandbox
    sandbox_url: str
    harness: BotHarness
    console_url: str
    sender: OutboxSender
    _stop: asyncio.Event
    _task: asyncio.Task[None] | None = None

    def start_sender(self) -> None:
        self._task = asyncio.create_task(self.sender.run(self._stop, idle_poll_s=0.1))

    async def stop_sender(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, timeout=10)


@pytest.fixture
async def stack(sqlite_url: str) -> AsyncIterator[Stack]:
    sandbox = Sandbox()
    sandbox_url = await sandbox.start("127.0.0.1", 0)
    harness = BotHarness(sandbox, sandbox_url, sqlite_url, **quiet_hours_elsewhere())
    await harness.start()
    assert harness.bot is not None
    sender = OutboxSender(
        harness.db,
        harness.settings,
        TelegramChannel(harness.bot),
        get_translator(),
        pacing=Pacing().scaled(100),
    )
    app = create_console_app(harness.settings, harness.db)
    app[POKE_SENDER] = sender.poke
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await make_staff(harness.db, "alice", "manager")
    result = Stack(sandbox, sandbox_url, harness, f"http://127.0.0.1:{port}", sender, asyncio.Event())
    try:
        yield result
    finally:
        await result.stop_sender()
        await runner.cleanup()
        await harness.close()
        await sandbox.stop()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(10_000)
    try:
        yield await context.new_page()
    finally:
        with contextlib.suppress(Exception):
            await context.close()


async def screenshot(page: Any, name: str) -> None:
    """Saved for a person to look at (artifacts/ is not committed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
