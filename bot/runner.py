"""Running the bot: polling against Telegram (or any Bot API server), and the all-in-one demo."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiogram import Bot
from pydantic import SecretStr
from sqlalchemy import func
from sqlmodel import select

from bot.app import create_bot, create_dispatcher, publish_commands
from bot.services import BotServices
from touchpoint.channels.models import ProcessedUpdate
from touchpoint.config import SANDBOX_TOKEN, ConfigError, Settings
from touchpoint.db import Database, upgrade_database
from touchpoint.seed.activity import seeded_people
from touchpoint.seed.home import (
    DEMO_STAFF_CHAT_ID,
    DEMO_STAFF_CHAT_TITLE,
    DEMO_STAFF_USER_ID,
    DEMO_STAFF_USER_NAME,
    EVENTS_SECRET_FILE,
    demo_events_secret,
    demo_home,
)

if TYPE_CHECKING:  # the sandbox is a development extra: never imported by `touchpoint run`
    from touchpoint.sandbox import Sandbox

log = logging.getLogger(__name__)


async def prepare_database(settings: Settings) -> Database:
    """SQLite is migrated on start; PostgreSQL is migrated explicitly (`touchpoint db upgrade`)."""
    if settings.is_sqlite:
        await upgrade_database(settings.database_url)
    return Database(settings.database_url, **settings.database_engine_options())


async def run_bot(
    settings: Settings, bot: Bot | None = None, *, events_secret: str | None = None, demo_mode: bool = False,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Polling mode: ``events_secret`` overrides TOUCHPOINT_EVENTS_SECRET (the demo's generated one);
    ``demo_mode`` (the demo only) lets the demo's own console account log in; ``on_ready`` runs once
    the events API and the console listen, just before polling starts."""
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
            if on_ready is not None:
                on_ready()
            await dp.start_polling(bot, handle_signals=True, close_bot_session=True)
        finally:
            await services.stop(settings.shutdown_grace_s)
    finally:
        await db.dispose()


# The demo's staff desk is always open: a handoff at any hour reaches the staff group at once.
DEMO_ALWAYS_OPEN = {"handoff_hours_start": 0, "handoff_hours_end": 24, "handoff_work_days": list(range(7))}


async def run_demo(settings: Settings) -> None:
    """Sandbox + SQLite + bot + scheduler in one process; no token, no internet.

    The sandbox keeps its world (people, chats, the staff group, files, the update counter) in
    ``<database>.demo/sandbox/`` and the demo's generated events secret in
    ``<database>.demo/events_secret``, so a restarted demo carries on where it stopped; delete the
    database and that folder (`make clean`) to start clean."""
    try:
        from touchpoint.sandbox import Sandbox
    except ImportError:  # a production install: the sandbox is a development extra
        raise ConfigError("touchpoint demo needs the sandbox, which production installs leave out: "
                          "install with `pip install -e '.[dev]'` (what `make demo` does)") from None
    from touchpoint.console.auth import DEMO_STAFF, seed_demo_staff
    from touchpoint.seed.activity import seed_demo_activity
    from touchpoint.seed.demo import seed_demo

    settings.require_demo_database()  # before anything is written
    home = demo_home(settings)
    sandbox = Sandbox(state_dir=home / "sandbox" if home is not None else None)
    staff_chat_id = settings.staff_chat_id or DEMO_STAFF_CHAT_ID
    _ensure_staff_group(sandbox, staff_chat_id)
    if not sandbox.business_connections:  # the brand's own Telegram account, lent to the bot
        sandbox.connect_business(DEMO_BUSINESS_OWNER_ID, DEMO_BUSINESS_NAME)
    overrides: dict[str, object] = {"bot_token": SecretStr(SANDBOX_TOKEN), "staff_chat_id": staff_chat_id}
    overrides.update({k: v for k, v in DEMO_ALWAYS_OPEN.items() if k not in settings.model_fields_set})
    settings = settings.model_copy(update=overrides)
    db = await prepare_database(settings)
    try:
        counts = await seed_demo(db)
        counts.update(await seed_demo_activity(db, settings))
        await seed_demo_staff(db)
        # A sandbox started without its saved state must still number updates past the ones the
        # database recorded as handled, or every message would be skipped as a duplicate.
        sandbox.advance_update_id(await _last_processed_update(db, _bot_id(SANDBOX_TOKEN)))
    finally:
        await db.dispose()
    log.info("demo data: %s", counts)
    for telegram_id, first_name, language in seeded_people():  # staff replies to them reach the sandbox
        if telegram_id not in sandbox.users:
            sandbox.user(telegram_id, first_name, language_code=language)
    # TOUCHPOINT_EVENTS_SECRET when set (`touchpoint events send` uses it too), else the demo's own.
    configured = settings.events_secret.get_secret_value().strip() if settings.events_secret else ""
    events_secret = configured or demo_events_secret(settings, create=True)
    base_url = await sandbox.start(settings.sandbox_host, settings.sandbox_port)
    settings = settings.model_copy(update={"telegram_api_base": base_url})

    fresh = "chat_customers" in counts and not sandbox.restored
    background: set[asyncio.Task[None]] = set()

    def banner() -> None:
        events_url = f"http://{settings.events_api_host}:{settings.events_api_port}/api/v1/events"
        secret_at = ("TOUCHPOINT_EVENTS_SECRET" if configured
                     else home / EVENTS_SECRET_FILE if home is not None else "memory, this run only")
        state = f"kept in {home}" if home is not None else "in memory only (an in-memory database)"
        lines = [
            "", "  Touchpoint demo is up.",
            f"  Customer chat: {base_url}/",
            f"  Staff group:   {base_url}/staff (post as {DEMO_STAFF_USER_NAME}, user {DEMO_STAFF_USER_ID})",
            f"  Business:      on the chat page, write to \"{DEMO_BUSINESS_NAME}\" (\"Writing to\")",
        ]
        if settings.events_api_enabled:
            lines.append(f"  Store events:  {events_url} (secret in {secret_at})")
        if settings.console_enabled:
            lines.append(f"  Console:       http://{settings.console_host}:{settings.console_port}/ "
                         f"(log in as {DEMO_STAFF[0]} / {DEMO_STAFF[1]})")
        lines += [f"  Demo state:    {state}; "
                  + ("chats restored from the last run" if sandbox.restored else "a fresh start"), ""]
        print("\n".join(lines), flush=True)
        if fresh:  # one customer waiting for a person: the inbox and the staff group show a handoff
            task = asyncio.create_task(_customer_asks_for_a_person(sandbox))
            background.add(task)
            task.add_done_callback(background.discard)

    try:
        await run_bot(settings, events_secret=events_secret, demo_mode=True, on_ready=banner)
    finally:
        await sandbox.stop()


DEMO_BUSINESS_OWNER_ID = 4242
DEMO_BUSINESS_NAME = "Brewhaus (business account)"

# What the seeded customer Sophie says on a fresh demo, through the sandbox like any customer.
DEMO_HANDOFF_CHAT = ("/start", "Do you have the Brazil Santos beans in a 1 kg bag?", "/human")


async def _customer_asks_for_a_person(sandbox: Sandbox) -> None:
    customer = seeded_people()[-1][0]
    for text in DEMO_HANDOFF_CHAT:
        last = max((m["message_id"] for m in sandbox.messages(customer)), default=0)
        sandbox.send_text(customer, text)
        try:
            await sandbox.wait_for_bot_message(customer, after_message_id=last, timeout=15)
        except TimeoutError:
            log.warning("demo: the seeded handoff did not get an answer to %r", text)
            return


def _ensure_staff_group(sandbox: Sandbox, chat_id: int) -> None:
    """The demo's staff forum group with the bot as an admin and one staff member (kept if saved)."""
    if chat_id in sandbox.chats:
        return
    sandbox.user(DEMO_STAFF_USER_ID, DEMO_STAFF_USER_NAME, language_code="en", username="sam_staff")
    sandbox.create_group(chat_id, DEMO_STAFF_CHAT_TITLE, is_forum=True, admins=[DEMO_STAFF_USER_ID],
                         bot_is_admin=True, bot_can_manage_topics=True)


def _bot_id(token: str) -> int:
    return int(token.split(":", 1)[0])


async def _last_processed_update(db: Database, bot_id: int) -> int:
    async with db.session() as session:
        found = (await session.exec(
            select(func.max(ProcessedUpdate.update_id)).where(ProcessedUpdate.bot_id == bot_id)
        )).one()
    return int(found or 0)
