"""Running the bot: polling against Telegram (or any Bot API server), and the all-in-one demo."""

from __future__ import annotations

import logging

from aiogram import Bot
from pydantic import SecretStr

from bot.app import create_bot, create_dispatcher, publish_commands
from touchpoint.config import SANDBOX_TOKEN, Settings
from touchpoint.console import start_console
from touchpoint.db import Database, upgrade_database
from touchpoint.journeys.scheduler import create_scheduler

log = logging.getLogger(__name__)


async def prepare_database(settings: Settings) -> Database:
    """SQLite is migrated on start; PostgreSQL is migrated explicitly (`touchpoint db upgrade`)."""
    if settings.is_sqlite:
        await upgrade_database(settings.database_url)
    return Database(settings.database_url)


async def run_bot(settings: Settings, bot: Bot | None = None) -> None:
    db = await prepare_database(settings)
    bot = bot or create_bot(settings)
    dp = create_dispatcher(settings, db)
    scheduler = create_scheduler(db)
    console = await start_console(settings, db)
    try:
        me = await bot.get_me()
        log.info("bot @%s polling %s", me.username, settings.telegram_api_base)
        await publish_commands(bot, dp["i18n"])
        scheduler.start()
        await dp.start_polling(bot, handle_signals=True, close_bot_session=True)
    finally:
        if console is not None:
            await console.cleanup()
        if scheduler.running:
            scheduler.shutdown(wait=False)
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
    print(f"\n  Touchpoint demo is up.\n  Customer chat: {base_url}/\n  Staff view:    {base_url}/staff\n",
          flush=True)
    print(f"  Console:       http://{settings.console_host}:{settings.console_port}/ (log in as "
          f"{DEMO_STAFF[0]} / {DEMO_STAFF[1]})\n", flush=True)
    try:
        await run_bot(settings)
    finally:
        await sandbox.stop()
