"""`touchpoint demo` as a user runs it: a subprocess on spare ports in a temp directory, driven only
over HTTP (the sandbox's control API, the console, the events API), then stopped and started again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.console_helpers import csrf_from
from touchpoint.console.auth import DEMO_STAFF
from touchpoint.i18n import get_translator
from touchpoint.seed.home import DEMO_STAFF_CHAT_ID, DEMO_STAFF_USER_ID

t = get_translator()
REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Demo:
    """One `touchpoint demo` process; ``start`` returns once the banner (everything listening) is out."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        sandbox, events, console = free_ports(3)
        self.sandbox_url = f"http://127.0.0.1:{sandbox}"
        self.events_port = events
        self.console_url = f"http://127.0.0.1:{console}"
        self.env = {
            **os.environ,
            "TOUCHPOINT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'touchpoint.db'}",
            "TOUCHPOINT_SANDBOX_PORT": str(sandbox),
            "TOUCHPOINT_EVENTS_API_PORT": str(events),
            "TOUCHPOINT_CONSOLE_PORT": str(console),
            "TOUCHPOINT_LOG_FORMAT": "text",
        }
        for name in ("TOUCHPOINT_STAFF_CHAT_ID", "TOUCHPOINT_EVENTS_SECRET", "TOUCHPOINT_REDIS_URL"):
            self.env.pop(name, None)
        self.process: asyncio.subprocess.Process | None = None
        self.output: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> str:
        self.output.clear()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from bot.cli import main; main()", "demo",
            cwd=self.workdir, env=self.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Touchpoint demo is up." not in self.text:
            if self.process.returncode is not None or time.monotonic() > deadline:
                pytest.fail(f"the demo did not come up:\n{self.text[-3000:]}")
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.3)  # the rest of the banner
        return self.text

    @property
    def text(self) -> str:
        return "".join(self.output)

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            self.output.append(line.decode(errors="replace"))

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            await self._reader


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    running = Demo(tmp_path)
    try:
        yield running
    finally:
        await running.stop()


async def call(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> Any:
    async with http.request(method, url, **kwargs) as response:
        body = await response.json()
        assert response.status == 200, body
        return body


async def wait_for(probe: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def bot_messages(http: aiohttp.ClientSession, demo: Demo, chat_id: int) -> list[dict[str, Any]]:
    data = await call(http, "GET", f"{demo.sandbox_url}/sandbox/api/chats/{chat_id}/messages?since=0")
    return [m for m in data["messages"] if m["_from_bot"] and not m.get("_deleted") and not m["_service"]]


async def say(http: aiohttp.ClientSession, demo: Demo, user_id: int, text: str) -> dict[str, Any]:
    """The customer writes; returns the bot's first answer after it."""
    before = max((m["message_id"] for m in await bot_messages(http, demo, user_id)), default=0)
    await call(http, "POST", f"{demo.sandbox_url}/sandbox/api/users/{user_id}/text", json={"text": text})

    async def answer() -> dict[str, Any] | None:
        fresh = [m for m in await bot_messages(http, demo, user_id) if m["message_id"] > before]
        return fresh[0] if fresh else None

    return await wait_for(answer, f"an answer to {text!r}")  # type: ignore[no-any-return]


async def console_login(http: aiohttp.ClientSession, demo: Demo) -> None:
    async with http.get(f"{demo.console_url}/login") as page:
        token = csrf_from(await page.text())
    async with http.post(f"{demo.console_url}/login", data={
        "username": DEMO_STAFF[0], "password": DEMO_STAFF[1], "csrf_token": token, "next": "/",
    }, allow_redirects=False) as response:
        assert response.status == 303, await response.text()


async def test_demo_hands_over_to_staff_and_survives_a_restart(demo: Demo) -> None:
    banner = await demo.start()
    assert demo.sandbox_url in banner and demo.console_url in banner and "a fresh start" in banner
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        # The staff forum group exists, the bot is an admin that manages topics, Sam is a member.
        groups = (await call(http, "GET", f"{demo.sandbox_url}/sandbox/api/groups"))["groups"]
        group = next(g for g in groups if g["chat"]["id"] == DEMO_STAFF_CHAT_ID)
        assert group["chat"]["is_forum"] and group["bot_can_manage_topics"]
        assert DEMO_STAFF_USER_ID in [m["user"]["id"] for m in group["members"]]

        user = (await call(http, "POST", f"{demo.sandbox_url}/sandbox/api/users",
                           json={"first_name": "Lina", "language_code": "en"}))["user"]
        uid = user["id"]
        menu = await say(http, demo, uid, "/start")
        # "Talk to a person" works from the first tap.
        buttons = [b for row in menu["reply_markup"]["inline_keyboard"] for b in row]
        human = next(b["callback_data"] for b in buttons if b["text"] == t("en", "menu.human"))
        before = menu["message_id"]
        await call(http, "POST", f"{demo.sandbox_url}/sandbox/api/users/{uid}/press",
                   json={"message_id": menu["message_id"], "data": human})

        async def handoff_answer() -> dict[str, Any] | None:
            fresh = [m for m in await bot_messages(http, demo, uid) if m["message_id"] > before]
            return fresh[0] if fresh else None

        answer = await wait_for(handoff_answer, "the answer to Talk to a person")
        assert t("en", "handoff.unavailable") not in answer["text"]

        async def lina_topic() -> int | None:
            groups = (await call(http, "GET", f"{demo.sandbox_url}/sandbox/api/groups"))["groups"]
            topics = next(g for g in groups if g["chat"]["id"] == DEMO_STAFF_CHAT_ID)["topics"]
            return next((tp["message_thread_id"] for tp in topics if "Lina" in tp["name"]), None)

        thread = await wait_for(lina_topic, "Lina's topic in the staff group")

        await console_login(http, demo)

        async def inbox_lists_lina() -> bool:
            async with http.get(f"{demo.console_url}/inbox") as page:
                return "Lina" in await page.text()

        await wait_for(inbox_lists_lina, "Lina in the console's inbox")

        # The seeded activity: every console page shows what it is for; the seeded customer Sophie
        # asked for a person on this fresh start, so she waits in the inbox too.
        async def inbox_lists_sophie() -> bool:
            async with http.get(f"{demo.console_url}/inbox") as page:
                return "Sophie" in await page.text()

        await wait_for(inbox_lists_sophie, "the seeded customer in the console's inbox")
        for path in ("/", "/inbox", "/tickets", "/customers", "/journeys", "/campaigns", "/staff"):
            async with http.get(f"{demo.console_url}{path}") as page:
                html = await page.text()
                assert page.status == 200 and 'class="empty"' not in html, path

        # Staff answer in the topic as Sam; the customer gets it.
        post = {"user_id": DEMO_STAFF_USER_ID, "text": "Hi Lina, Sam here", "message_thread_id": thread}
        group_url = f"{demo.sandbox_url}/sandbox/api/groups/{DEMO_STAFF_CHAT_ID}"
        await call(http, "POST", f"{group_url}/post", json=post)

        async def relayed() -> bool:
            return any("Sam here" in (m.get("text") or "") for m in await bot_messages(http, demo, uid))

        await wait_for(relayed, "the staff reply in Lina's chat")

        # The README's `touchpoint events send` works as written: the demo's secret is found.
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from bot.cli import main; main()", "events", "send",
            str(REPO / "docs" / "events_example.json"), cwd=demo.workdir, env=demo.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode == 0, output.decode()
        assert output.decode().startswith("200 ")

    await demo.stop()
    state = json.loads((demo.workdir / "touchpoint.db.demo" / "sandbox" / "sandbox.json").read_text())
    last_update_id = state["last_update_id"]
    assert last_update_id > 0

    banner = await demo.start()
    assert "restored from the last run" in banner
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        users = (await call(http, "GET", f"{demo.sandbox_url}/sandbox/api/users"))["users"]
        assert uid in [u["id"] for u in users]  # Lina and her chat are still there
        # Lina is still with staff: her next message lands in the same topic, not skipped as a duplicate.
        await call(http, "POST", f"{demo.sandbox_url}/sandbox/api/users/{uid}/text",
                   json={"text": "still there after the restart?"})

        async def in_topic() -> bool:
            url = f"{demo.sandbox_url}/sandbox/api/chats/{DEMO_STAFF_CHAT_ID}/messages"
            data = await call(http, "GET", url, params={"since": 0, "thread_id": thread})
            texts = [m.get("text") or "" for m in data["messages"] if m["_from_bot"]]
            return any("after the restart" in text for text in texts)

        await wait_for(in_topic, "Lina's message relayed to her topic after the restart")
        # A new customer is answered too.
        max_id = (await call(http, "POST", f"{demo.sandbox_url}/sandbox/api/users",
                             json={"first_name": "Max", "language_code": "de"}))["user"]["id"]
        assert (await say(http, demo, max_id, "/start"))["text"]
    assert "already handled" not in demo.text
