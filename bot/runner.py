"""Running the bot: polling against Telegram (or any Bot API server), and the all-in-one demo."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiogram import Bot
from pydantic import SecretStr

from bot.app import create_bot, create_dispatcher, publish_commands
from bot.channel import TelegramChannel
from touchpoint.config import SANDBOX_TOKEN, Settings
from touchpoint.console import start_console
from touchpoint.db import Database, upgrade_database
from touchpoint.events_api.app import start_events_api
from touchpoint.events_api.signing import DEMO_SECRET
from touchpoint.i18n import get_translator
from touchpoint.journeys import engine as journeys
from touchpoint.journeys.scheduler import create_scheduler
from touchpoint.journeys.sender import OutboxSender, Pacing

log = logging.getLogger(__name__)


async def prepare_database(settings: Settings) -> Database:
    """SQLite is migrated on start; PostgreSQL is migrated explicitly (`touchpoint db upgrade`)."""
    if settings.is_sqlite:
        await upgrade_database(settings.database_url)
    return Database(settings.database_url)


async def run_bot(settings: Settings, bot: Bot | None = None, *, events_secret: str | None = None) -> None:
    """``events_secret`` overrides TOUCHPOINT_EVENTS_SECRET (the demo's fixed secret)."""
    if settings.events_api_enabled and events_secret is None:
        settings.require_events_secret()  # fail before anything starts
    # A bad journeys file stops start-up here, naming file, line and field.
    engine = journeys.get_engine(settings)
    db = await prepare_database(settings)
    bot = bot or create_bot(settings)
    dp = create_dispatcher(settings, db)
    sender = OutboxSender(
        db, settings, TelegramChannel(bot), get_translator(settings.locales_dir, settings.default_locale),
        pacing=Pacing(global_per_second=settings.send_rate_per_s),
        enrolment_guard=journeys.enrolment_allows_send,
    )
    scheduler = create_scheduler(db, engine, sender, tick_s=settings.journey_tick_s)
    stop = asyncio.Event()
    sending = asyncio.create_task(sender.run(stop))
    events_api = None
    console = await start_console(settings, db, poke_sender=sender.poke)
    try:
        if settings.events_api_enabled:
            events_api = await start_events_api(settings, db, secret=events_secret)
            log.info("events API on http://%s:%s/api/v1/events", settings.events_api_host,
                     settings.events_api_port)
        me = await bot.get_me()
        log.info("bot @%s polling %s; %d journeys", me.username, settings.telegram_api_base,
                 len(engine.journeys))
        await publish_commands(bot, dp["i18n"])
        scheduler.start()
        await dp.start_polling(bot, handle_signals=True, close_bot_session=True)
    finally:
        if console is not None:
            await console.cleanup()
        if scheduler.running:
            scheduler.shutdown(wait=False)
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(sending, timeout=10)
        if events_api is not None:
            await events_api.cleanup()
        await db.dispose()


async def run_demo(settings: Settings) -> None:
    """Sandbox + SQLite + bot + scheduler in one process; no token, no internet."""
    from touchpoint.console.auth import DEMO_STAFF, seed_demo_staff
    from touchpoint.sandbox import Sandbox
    from touchpoint.seed.demo import seed_demo

    sandbox = Sandbox()
    base_url = await sandbox.start(settings.sandbox_host, settings.sandbox_port)
    settings = settings.model_copy(
        update={"telegram_api_base": base_url, "bot_token": SecretStr(SANDBOX_TOKEN)}
    )
    db = await prepare_database(settings)
    counts = await seed_demo(db)
    await seed_demo_staff(db)
    await db.dispose()
    log.info("demo data: %s", counts)
    events_url = f"http://{settings.events_api_host}:{settings.events_api_port}/api/v1/events"
    print(f"\n  Touchpoint demo is up.\n  Customer chat: {base_url}/\n  Staff view:    {base_url}/staff\n"
          f"  Store events:  {events_url} (demo secret: {DEMO_SECRET})", flush=True)
    print(f"  Console:       http://{settings.console_host}:{settings.console_port}/ (log in as "
          f"{DEMO_STAFF[0]} / {DEMO_STAFF[1]})\n", flush=True)
    try:
        await run_bot(settings, events_secret=DEMO_SECRET)
    finally:
        await sandbox.stop()
