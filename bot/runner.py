"""Running the bot: polling against Telegram (or any Bot API server), and the all-in-one demo."""

from __future__ import annotations

import logging

from aiogram import Bot
from pydantic import SecretStr

from bot.app import create_bot, create_dispatcher, publish_commands
from bot.services import BotServices
from touchpoint.config import SANDBOX_TOKEN, Settings
from touchpoint.db import Database, upgrade_database
from touchpoint.events_api.signing import DEMO_SECRET

log = logging.getLogger(__name__)


async def prepare_database(settings: Settings) -> Database:
    """SQLite is migrated on start; PostgreSQL is migrated explicitly (`touchpoint db upgrade`)."""
    if settings.is_sqlite:
        await upgrade_database(settings.database_url)
    return Database(settings.database_url)


async def run_bot(
    settings: Settings, bot: Bot | None = None, *, events_secret: str | None = None, demo_mode: bool = False
) -> None:
    """Polling mode: ``events_secret`` overrides TOUCHPOINT_EVENTS_SECRET (the demo's fixed secret);
    ``demo_mode`` (the demo only) lets the demo's own console account log in."""
    db = await prepare_database(settings)
    bot = bot or create_bot(settings)
    try:
        services = BotServices(settings, db, bot, events_secret=events_secret, demo_mode=demo_mode)
        dp = create_dispatcher(settings, db)
        services.attach_desk(dp["handoff_desk"])
        await services.start()
        try:
            me = await bot.get_me()
            log.info("bot @%s polling %s", me.username, settings.telegram_api_base)
            await publish_commands(bot, dp["i18n"])
            await dp.start_polling(bot, handle_signals=True, close_bot_session=True)
        finally:
            await services.stop(settings.shutdown_grace_s)
    finally:
        await db.dispose()


async def run_demo(settings: Settings) -> None:
    """Sandbox + SQLite + bot + scheduler in one process; no token, no internet."""
    from touchpoint.console.auth import DEMO_STAFF, seed_demo_staff
    from touchpoint.sandbox import Sandbox
    from touchpoint.seed.demo import seed_demo

    settings.require_demo_database()  # before anything is written
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
        await run_bot(settings, events_secret=DEMO_SECRET, demo_mode=True)
    finally:
        await sandbox.stop()
