"""Factories for the Bot and the Dispatcher, shared by polling, the demo and the tests."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisStorage
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats
from aiogram.utils.i18n import I18n

from bot.handlers import all_routers, outage
from bot.handlers.journeys import TrackClicks
from bot.handoff_desk import StaffDesk
from bot.metrics import BindCustomer, ObserveUpdates, TelegramRequestMetrics
from bot.middlewares import (
    BehaviourEvents,
    CustomerI18n,
    FloodControl,
    KnownCustomer,
    SerializePerChat,
    UpdateTransaction,
)
from bot.transcript import CaptureReplies, RecordTranscript
from touchpoint.channels.flood import FloodGate, MemoryFloodGate
from touchpoint.channels.redis_flood import RedisFloodGate
from touchpoint.config import SUPPORTED_LOCALES, TELEGRAM_API_BASE, Settings
from touchpoint.db import Database
from touchpoint.i18n import DOMAIN, compile_catalogs, find_locales_dir

BOT_COMMANDS = ("start", "help", "invite", "points", "settings", "human", "language", "stop")


class BotSession(AiohttpSession):
    """aiogram parses every answer as ``Response[T]``; pydantic caches such classes only weakly, so
    after a garbage collection the class is built again (~20 ms of CPU that blocks the event loop,
    every few dozen requests under load). Holding each one built keeps it cached."""

    _response_types: ClassVar[dict[Any, type]] = {}

    def check_response(self, bot: Bot, method: TelegramMethod[Any], status_code: int,
                       content: str) -> Response[Any]:
        returning = method.__returning__
        if returning not in self._response_types:
            self._response_types[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)


def freeze_startup_heap() -> None:
    """Once everything is built: modules, models and templates live as long as the process, yet a
    full garbage collection would walk all of them (~300k objects, a few hundred ms with every chat
    waiting). Frozen, they are left out of collections."""
    gc.collect()
    gc.freeze()


def create_bot(settings: Settings, token: str | None = None) -> Bot:
    token = token or settings.require_bot_token()
    session = BotSession()
    if settings.telegram_api_base.rstrip("/") != TELEGRAM_API_BASE:
        session = BotSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    bot = Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    bot.session.middleware(CaptureReplies())
    bot.session.middleware(TelegramRequestMetrics())
    return bot


def create_i18n(settings: Settings) -> I18n:
    locales_dir = find_locales_dir(settings.locales_dir)
    compile_catalogs(locales_dir)
    return I18n(path=locales_dir, default_locale=settings.default_locale, domain=DOMAIN)


def create_dispatcher(
    settings: Settings, db: Database, *, flood_gate: FloodGate | None = None
) -> Dispatcher:
    i18n = create_i18n(settings)
    storage: BaseStorage | None = None
    isolation: BaseEventIsolation | None = None
    if settings.redis_url:
        # Several processes behind one webhook: FSM state, per-chat locks and flood counts in Redis.
        storage = RedisStorage.from_url(
            settings.redis_url, key_builder=DefaultKeyBuilder(prefix=settings.redis_prefix, with_bot_id=True)
        )
        isolation = storage.create_isolation()
        gate: FloodGate = flood_gate or RedisFloodGate(
            storage.redis, settings.flood_max_messages, settings.flood_window_s,
            settings.flood_mute_s, prefix=settings.redis_prefix,
        )
    else:
        gate = flood_gate or MemoryFloodGate(
            settings.flood_max_messages, settings.flood_window_s, settings.flood_mute_s
        )
    desk = StaffDesk(settings, db)
    dp = Dispatcher(
        storage=storage, events_isolation=isolation, settings=settings, db=db, i18n=i18n,
        handoff_desk=desk,
    )
    dp.startup.register(desk.start)
    dp.shutdown.register(desk.stop)
    outage.register(dp)
    # Outer middlewares run in registration order for every update.
    dp.update.outer_middleware(ObserveUpdates())
    dp.update.outer_middleware(SerializePerChat())
    dp.update.outer_middleware(UpdateTransaction(db, settings))
    dp.update.outer_middleware(KnownCustomer(settings))
    dp.update.outer_middleware(FloodControl(gate, i18n))
    dp.update.outer_middleware(CustomerI18n(i18n))
    dp.update.outer_middleware(RecordTranscript(desk.touched))
    dp.update.middleware(BindCustomer())
    behaviour = BehaviourEvents()
    dp.message.middleware(behaviour)
    dp.callback_query.middleware(behaviour)
    dp.callback_query.outer_middleware(TrackClicks())
    dp.include_routers(*all_routers())
    run_filters_inline(dp)
    return dp


def run_filters_inline(dispatcher: Dispatcher) -> None:
    """aiogram runs every filter that is not a coroutine (our magic filters: ``F.text == …``) in a
    worker thread: some twenty thread hops per update, each waiting for the GIL while the event loop
    is busy (tens of milliseconds per reply under load). They are cheap predicates: run inline."""
    for router in dispatcher.chain_tail:
        for observer in router.observers.values():
            # ``_handler`` holds the router-level filters (``router.message.filter(…)``).
            for handler in (getattr(observer, "_handler", None), *observer.handlers):
                for event_filter in (handler.filters if handler else None) or ():
                    if not event_filter.awaitable:
                        event_filter.callback = _inline(event_filter.callback)
                        event_filter.awaitable = True


def _inline(predicate: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    async def run(*args: Any, **kwargs: Any) -> Any:
        return predicate(*args, **kwargs)

    return run


async def publish_commands(bot: Bot, i18n: I18n) -> None:
    """The command menu in each customer language (Telegram picks it by the user's language)."""
    for locale in SUPPORTED_LOCALES:
        commands = [
            BotCommand(command=name, description=i18n.gettext(f"command.{name}", locale=locale))
            for name in BOT_COMMANDS
        ]
        await bot.set_my_commands(
            commands, scope=BotCommandScopeAllPrivateChats(),
            language_code=None if locale == i18n.default_locale else locale,
        )
