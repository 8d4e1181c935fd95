"""What runs beside update handling, the same in polling and webhook mode: the outbox sender, the
scheduler (journey ticks and scans, holds, leases, pruning), the store events API and the staff
console. One start-up and one shutdown path, so no mode runs without journeys or the events API."""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot
from aiohttp import web
from redis.asyncio import Redis

from bot.app import freeze_startup_heap
from bot.channel import TelegramChannel
from bot.handoff_desk import TICK_S as DESK_TICK_S
from bot.handoff_desk import StaffDesk
from bot.scheduler import add_desk_job, create_scheduler
from touchpoint.config import Settings
from touchpoint.console import start_console
from touchpoint.db import Database
from touchpoint.events_api.app import start_events_api
from touchpoint.i18n import get_translator
from touchpoint.journeys import engine as journeys
from touchpoint.messaging.sender import OutboxSender, Pacing
from touchpoint.messaging.shared_pacing import SharedSlots, bot_rate_key
from touchpoint.understanding.embeddings import warm_up
from touchpoint.understanding.service import get_index
from touchpoint.wiring import load_all_templates

log = logging.getLogger(__name__)


class BotServices:
    def __init__(
        self, settings: Settings, db: Database, bot: Bot, *, events_secret: str | None = None,
        demo_mode: bool = False,
    ) -> None:
        """Fails before anything starts: a missing events secret, a bad journeys file (named with
        its line and field). ``events_secret`` overrides TOUCHPOINT_EVENTS_SECRET (the demo's)."""
        if settings.events_api_enabled and events_secret is None:
            settings.require_events_secret()
        if settings.events_api_enabled:  # a weak Shopify / WooCommerce webhook secret stops here
            for platform in ("shopify", "woocommerce"):
                settings.webhook_secrets(platform, demo=events_secret is not None)
        self.settings = settings
        self.db = db
        self.events_secret = events_secret
        self.demo_mode = demo_mode  # `touchpoint demo`: its console account may log in
        self.engine = journeys.get_engine(settings)
        load_all_templates()
        # Several processes of one bot share its send rate through Redis (one grid per bot token).
        self._redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        self._rate_key = bot_rate_key(settings.redis_prefix, bot.token)
        shared = SharedSlots(self._redis, self._rate_key) if self._redis is not None else None
        self.sender = OutboxSender(
            db, settings, TelegramChannel(bot), get_translator(settings.locales_dir, settings.default_locale),
            pacing=Pacing(global_per_second=settings.send_rate_per_s),
            enrolment_guard=journeys.enrolments_allowing_send, shared=shared,
        )
        self.scheduler = create_scheduler(db, self.engine, self.sender, tick_s=settings.journey_tick_s)
        self._stop_sending = asyncio.Event()
        self._sending: asyncio.Task[None] | None = None
        self._understanding: asyncio.Task[None] | None = None
        self._sites: list[web.AppRunner] = []

    def attach_desk(self, desk: StaffDesk) -> None:
        """The staff desk ticks as one of the scheduler's jobs instead of a loop of its own, and
        counts each staff group's budget with the bot's other processes (Redis)."""
        desk.scheduled = True
        if self._redis is not None:
            desk.share_budget(self._redis, self._rate_key)
        add_desk_job(self.scheduler, desk.scheduled_tick, DESK_TICK_S)

    async def start(self) -> None:
        self._sending = asyncio.create_task(self.sender.run(self._stop_sending))
        self.scheduler.start()
        if self.settings.events_api_enabled:
            self._sites.append(await start_events_api(
                self.settings, self.db, secret=self.events_secret, poke_sender=self.sender.poke))
            log.info("events API on http://%s:%s/api/v1/events", self.settings.events_api_host,
                     self.settings.events_api_port)
        console = await start_console(self.settings, self.db, poke_sender=self.sender.poke,
                                      demo_mode=self.demo_mode)
        if console is not None:
            self._sites.append(console)
        log.info("%d journeys; scheduler and outbox sender running", len(self.engine.journeys))
        # The language model loads and the question index builds off the event loop, now rather
        # than on the first customer's question.
        self._understanding = asyncio.create_task(self._prepare_understanding())
        freeze_startup_heap()

    async def _prepare_understanding(self) -> None:
        try:
            await asyncio.to_thread(warm_up)
            async with self.db.session() as session:
                await get_index(session)
        except Exception:  # the first question retries; the bot runs on meanwhile
            log.exception("could not prepare the question index at start")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop taking work, let the sender finish its batch within ``grace_s``, then hand back the
        rows it claimed but never sent, so another process (or the next start) sends them."""
        if self._understanding is not None:
            self._understanding.cancel()
        for site in self._sites:
            await site.cleanup()
        self._sites.clear()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._sending is not None:
            self._stop_sending.set()
            _done, late = await asyncio.wait({self._sending}, timeout=max(0.0, grace_s))
            for task in late:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            self._sending = None
        released = await self.sender.release()
        if released:
            log.info("shutdown: %d claimed outbox row(s) handed back", released)
        if self._redis is not None:
            await self._redis.aclose()
