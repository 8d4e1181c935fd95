"""Webhook mode: Telegram posts updates to an aiohttp server; any number of such processes may
run behind one load balancer (with TOUCHPOINT_REDIS_URL, see docs/production.md).

Routes: the webhook path (secret token checked), ``/healthz`` (alive), ``/readyz`` (database,
Redis and scheduler reachable; 503 while shutting down) and ``/metrics`` (Prometheus). Beside them,
as in polling mode, ``bot.services``: journeys, outbox sender, store events API, staff console.

Shutdown on SIGTERM, within ``shutdown_grace_s``: answer new updates 503 (Telegram retries them,
the load balancer sends them to another process), finish the handlers in flight, let the outbox
sender finish its batch and hand back rows it claimed but did not send, close sessions.
The webhook stays registered: the other processes carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiogram.types.update import UpdateTypeLookupError
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy import text

from bot.app import create_bot, create_dispatcher, publish_commands
from bot.runner import prepare_database
from bot.services import BotServices
from touchpoint import untrusted_json
from touchpoint.config import ConfigError, Settings
from touchpoint.db import Database
from touchpoint.observability import DB_UP, refresh_database_gauges, render_metrics

log = logging.getLogger(__name__)
CHECK_TIMEOUT_S = 2.0


class WebhookHandler(SimpleRequestHandler):
    """aiogram's handler, plus: bad bodies get 400, and nothing new is taken while draining."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, secret_token: str, **data: Any) -> None:
        super().__init__(dispatcher, bot, handle_in_background=True, secret_token=secret_token, **data)
        self.draining = False

    async def handle(self, request: web.Request) -> web.Response:
        if self.draining:
            return web.Response(status=503, text="shutting down")
        if not self.verify_secret(request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""), self.bot):
            log.warning("webhook: request with a wrong secret token refused")
            return web.Response(status=401, text="Unauthorized")
        try:
            # Nesting is limited: "[" × 1000 would raise RecursionError inside json.loads.
            body = untrusted_json.loads(await request.read())
            parsed = Update.model_validate(body, context={"bot": self.bot})
        except (ValueError, ValidationError):
            log.warning("webhook: malformed update body refused")
            return web.Response(status=400, text="malformed update")
        try:
            parsed.event_type  # noqa: B018 - raises for an update with nothing this bot knows
        except UpdateTypeLookupError:
            log.info("webhook: update %s of an unknown kind ignored", parsed.update_id)
            return web.json_response({})
        task = asyncio.create_task(self._feed(parsed))
        self._background_feed_update_tasks.add(task)
        task.add_done_callback(self._background_feed_update_tasks.discard)
        return web.json_response({})

    async def _feed(self, parsed: Update) -> None:
        try:
            result = await self.dispatcher.feed_update(self.bot, parsed, **self.data)
            if isinstance(result, TelegramMethod):
                await self.dispatcher.silent_call_request(bot=self.bot, result=result)
        except Exception:  # the errors router answers the customer; this is the last resort
            log.exception("update_id=%s failed outside the handlers", parsed.update_id)

    @property
    def in_flight(self) -> int:
        return len(self._background_feed_update_tasks)

    async def drain(self, timeout: float) -> None:
        """Stop taking updates; wait for those in flight, cancelling what is left at the deadline."""
        self.draining = True
        pending = set(self._background_feed_update_tasks)
        if pending:
            _done, late = await asyncio.wait(pending, timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                log.warning("shutdown: %d update(s) still running at the deadline, cancelled", len(late))
                await asyncio.gather(*late, return_exceptions=True)

    async def close(self) -> None:
        """The bot session is closed by WebhookServer.shutdown, after the drain."""


class WebhookServer:
    """One process of the bot in webhook mode."""

    def __init__(
        self, settings: Settings, db: Database, bot: Bot, dp: Dispatcher, services: BotServices
    ) -> None:
        self.settings = settings
        self.db = db
        self.bot = bot
        self.dp = dp
        self.services = services
        self.handler = WebhookHandler(dp, bot, settings.webhook_secret_token())
        self.redis: Redis | None = getattr(dp.storage, "redis", None)
        self._runner: web.AppRunner | None = None

    def create_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(self.settings.webhook_path, self.handler.handle)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        return app

    async def start(self, *, register_webhook: bool = True) -> str:
        """Serve, then tell Telegram where to post; returns the local base URL."""
        self._runner = web.AppRunner(self.create_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.webhook_host, self.settings.webhook_port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        await self.dp.emit_startup(bot=self.bot, **self.dp.workflow_data)
        if register_webhook:
            await self.register_webhook()
        await self.services.start()
        log.info("webhook mode: listening on %s:%s%s", host, port, self.settings.webhook_path)
        return f"http://{host}:{port}"

    async def register_webhook(self) -> None:
        if not self.settings.webhook_url:
            raise ConfigError("TOUCHPOINT_WEBHOOK_URL is not set: the public HTTPS URL Telegram posts to")
        await self.bot.set_webhook(
            self.settings.webhook_url,
            secret_token=self.settings.webhook_secret_token(),
            allowed_updates=self.dp.resolve_used_update_types(),
            drop_pending_updates=False,
        )
        await publish_commands(self.bot, self.dp["i18n"])

    async def shutdown(self) -> None:
        grace = self.settings.shutdown_grace_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        log.info("shutdown: draining (%d update(s) in flight, grace %.0fs)", self.handler.in_flight, grace)
        await self.handler.drain(grace)
        await self.services.stop(deadline - loop.time())
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.dp.emit_shutdown(bot=self.bot, **self.dp.workflow_data)
        await self.bot.session.close()
        log.info("shutdown: done")

    # ------------------------------------------------------------ health and metrics

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, _request: web.Request) -> web.Response:
        checks = {"database": await self._check(self._ping_database())}
        if self.redis is not None:
            checks["redis"] = await self._check(self.redis.ping())
        checks["scheduler"] = "ok" if self.services.scheduler.running else "stopped"
        if self.handler.draining:
            checks["webhook"] = "draining"
        ready = all(value == "ok" for value in checks.values())
        return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)

    async def _ping_database(self) -> None:
        async with self.db.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    @staticmethod
    async def _check(probe: Any) -> str:
        try:
            await asyncio.wait_for(probe, CHECK_TIMEOUT_S)
        except Exception as exc:
            return f"error: {type(exc).__name__}"
        return "ok"

    async def metrics(self, _request: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(refresh_database_gauges(self.db), CHECK_TIMEOUT_S)
        except TimeoutError:
            DB_UP.set(0)
        return web.Response(body=render_metrics(), content_type="text/plain", charset="utf-8")


def build_server(settings: Settings, db: Database, bot: Bot | None = None) -> WebhookServer:
    bot = bot or create_bot(settings)
    services = BotServices(settings, db, bot)  # fails here on a missing secret or a bad journeys file
    dp = create_dispatcher(settings, db)
    services.attach_desk(dp["handoff_desk"])
    return WebhookServer(settings, db, bot, dp, services)


async def run_webhook(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop``), then shut down gracefully."""
    if not settings.webhook_url:
        raise ConfigError("TOUCHPOINT_WEBHOOK_URL is not set: the public HTTPS URL Telegram posts to")
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    db = await prepare_database(settings)
    server = build_server(settings, db)
    try:
        await server.start()
        await stop.wait()
    finally:
        await server.shutdown()
        await db.dispose()
