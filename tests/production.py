"""Helpers for the production tests: free ports, an in-process webhook bot, a cuttable TCP link,
and Redis settings for tests (TOUCHPOINT_TEST_REDIS_URL, skipped locally, required in CI)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr
from redis.asyncio import Redis

from bot.webhook import WebhookServer, build_server
from tests.databases import IN_CI, unavailable
from touchpoint.config import SANDBOX_TOKEN, Settings, load_settings
from touchpoint.db import Database
from touchpoint.i18n import Translator
from touchpoint.messaging import Rendered, template

REDIS_URL = os.environ.get("TOUCHPOINT_TEST_REDIS_URL") or ("redis://127.0.0.1:6379/0" if IN_CI else None)
SECRET = "test-secret-token"
EVENTS_SECRET = "9c41d7e2b8a05f3c6e1d4a9b7f2c8e05d3a6b1f94c7e2d8a0b5f3c6e9d1a4b72"


async def until(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> None:
    """Wait until ``condition()`` holds (a slow check gets a longer ``interval``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition did not hold within {timeout}s")
        await asyncio.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def webhook_settings(base_url: str, database_url: str, port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url, "telegram_api_base": base_url, "bot_token": SecretStr(SANDBOX_TOKEN),
        "webhook_url": f"http://127.0.0.1:{port}/telegram/webhook", "webhook_host": "127.0.0.1",
        "webhook_port": port, "webhook_secret": SecretStr(SECRET), "shutdown_grace_s": 5.0,
        # Its own ports: tests run several bots, and the defaults (8082, 8083) may be taken.
        "events_secret": SecretStr(EVENTS_SECRET), "events_api_port": free_port(),
        "console_port": free_port(),
    }
    return load_settings(_env_file=None, **(values | overrides))


class WebhookBot:
    """The real webhook server in this process, against the sandbox."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url, **settings.database_engine_options())
        self.server: WebhookServer | None = None
        self.url = f"http://127.0.0.1:{settings.webhook_port}"

    async def start(self) -> WebhookServer:
        self.server = build_server(self.settings, self.db)
        await self.server.start()
        return self.server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
            self.server = None

    async def close(self) -> None:
        await self.stop()
        await self.db.dispose()


@contextlib.asynccontextmanager
async def redis_prefix() -> AsyncIterator[tuple[str, str]]:
    """A reachable Redis and a key prefix of this test's own, deleted afterwards."""
    if not REDIS_URL:
        unavailable("Redis", "TOUCHPOINT_TEST_REDIS_URL is not set")
    assert REDIS_URL is not None
    client = Redis.from_url(REDIS_URL)
    try:
        await asyncio.wait_for(client.ping(), 3)
    except Exception as exc:
        await client.aclose()
        unavailable("Redis", str(exc))
    prefix = f"tp_test_{uuid.uuid4().hex[:10]}"
    try:
        yield REDIS_URL, prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


class CuttableLink:
    """A TCP forwarder to a service that a test can cut (the service "goes down") and restore."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()  # cleared: the service "stalls" (hangs instead of failing)
        self._flowing.set()

    def stall(self) -> None:
        """Keep every connection open but pass nothing either way, and open none upstream."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        await self._flowing.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update({writer, up_writer})

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    await self._flowing.wait()
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
        self._writers.difference_update({writer, up_writer})


class RoundRobinProxy:
    """A tiny load balancer: each request goes to the next backend in turn; a refused or
    unreachable backend gets the request retried on the next one, as a real balancer would."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.hits: dict[str, int] = {backend: 0 for backend in backends}
        self._next = 0
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._http = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._http is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        status, payload, content_type = 502, b"no backend", "text/plain"
        for _attempt in range(len(self.backends)):
            backend = self.backends[self._next % len(self.backends)]
            self._next += 1
            try:
                async with self._http.request(
                    request.method, backend + request.path_qs, data=body, headers=headers
                ) as response:
                    status, payload = response.status, await response.read()
                    content_type = response.headers.get("Content-Type", "application/json")
            except aiohttp.ClientError:
                continue
            if status != 503:
                self.hits[backend] += 1
                break
        return web.Response(status=status, body=payload, headers={"Content-Type": content_type})


@template("test.process_note")
def _process_note(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    """A proactive message for the multi-process test (its bot processes import this module)."""
    return Rendered(f"note for {params['n']}", ())
