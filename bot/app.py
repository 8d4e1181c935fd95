"""Factories for the Bot and the Dispatcher, shared by polling, the demo and the tests."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from functools import cache, partial
from typing import Any

from aiogram import Bot, Dispatcher, methods
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisStorage
from aiogram.methods.base import Response, TelegramMethod
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats
from aiogram.utils.i18n import I18n

from bot.business import BusinessGate, attach_routing
from bot.commands import BOT_COMMANDS
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
from bot.replies import EditsNotModified, InteractiveReplies, PatientReplies
from bot.transcript import CaptureReplies, RecordTranscript
from touchpoint.assistant.service import Assistant
from touchpoint.channels.flood import FloodGate, MemoryFloodGate
from touchpoint.channels.redis_flood import RedisFloodGate
from touchpoint.config import SUPPORTED_LOCALES, TELEGRAM_API_BASE, Settings
from touchpoint.db import Database
from touchpoint.i18n import DOMAIN, compile_catalogs, find_locales_dir


@cache
def keep_response_models() -> tuple[Any, ...]:
    """aiogram parses every Bot API answer as ``Response[<result type>]``, and pydantic keeps such
    parametrised models only weakly: after a garbage collection the next call built the model
    again (milliseconds of schema work, the worst latency spikes). Held here, they are built once."""
    returning = {
        method.__returning__ for method in vars(methods).values()
        if isinstance(method, type) and issubclass(method, TelegramMethod) and method is not TelegramMethod
    }
    return tuple(Response[result] for result in returning)


def freeze_startup_heap() -> None:
    """Once everything is built: modules, models and templates live as long as the process, yet a
    full garbage collection would walk all of them (~300k objects, a few hundred ms with every chat
    waiting). Frozen, they are left out of collections."""
    gc.collect()
    gc.freeze()


def create_bot(settings: Settings, token: str | None = None) -> Bot:
    keep_response_models()
    token = token or settings.require_bot_token()
    session = AiohttpSession()
    if settings.telegram_api_base.rstrip("/") != TELEGRAM_API_BASE:
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    bot = Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    bot.session.middleware(CaptureReplies())
    bot.session.middleware(EditsNotModified())
    bot.session.middleware(PatientReplies())
    bot.session.middleware(TelegramRequestMetrics())
    return bot


def create_i18n(settings: Settings) -> I18n:
    locales_dir = find_locales_dir(settings.locales_dir)
    compile_catalogs(locales_dir)
    return I18n(path=locales_dir, default_locale=settings.default_locale, domain=DOMAIN)


def create_dispatcher(
    settings: Settings, db: Database, *, flood_gate: FloodGate | None = None
) -> Dispatcher:
    keep_response_models()
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
        button_gate: FloodGate = RedisFloodGate(
            storage.redis, settings.flood_max_callbacks, settings.flood_window_s,
            settings.flood_mute_s, prefix=f"{settings.redis_prefix}:buttons",
        )
    else:
        gate = flood_gate or MemoryFloodGate(
            settings.flood_max_messages, settings.flood_window_s, settings.flood_mute_s
        )
        button_gate = MemoryFloodGate(
            settings.flood_max_callbacks, settings.flood_window_s, settings.flood_mute_s
        )
    desk = StaffDesk(settings, db)
    assistant = Assistant(settings)
    dp = Dispatcher(
        storage=storage, events_isolation=isolation, settings=settings, db=db, i18n=i18n,
        handoff_desk=desk, assistant=assistant,
    )
    dp.startup.register(desk.start)
    dp.startup.register(partial(attach_routing, db=db))
    dp.shutdown.register(desk.stop)
    dp.shutdown.register(assistant.close)
    outage.register(dp)
    # Outer middlewares run in registration order for every update.
    dp.update.outer_middleware(ObserveUpdates())
    dp.update.outer_middleware(SerializePerChat())
    dp.update.outer_middleware(UpdateTransaction(db, settings))
    dp.update.outer_middleware(BusinessGate(settings))
    dp.update.outer_middleware(KnownCustomer(settings))
    dp.update.outer_middleware(FloodControl(gate, i18n, button_gate))
    dp.update.outer_middleware(CustomerI18n(i18n))
    dp.update.outer_middleware(InteractiveReplies())
    dp.update.outer_middleware(RecordTranscript(desk.touched))
    dp.update.middleware(BindCustomer())
    behaviour = BehaviourEvents()
    dp.message.middleware(behaviour)
    dp.callback_query.middleware(behaviour)
    dp.callback_query.outer_middleware(TrackClicks())
    dp.include_routers(*all_routers())
    run_sync_filters_inline(dp)
    return dp


def run_sync_filters_inline(dp: Dispatcher) -> None:
    """aiogram runs every synchronous filter (magic filters such as ``F.chat.type == "private"``,
    FSM states, plain functions) in a worker thread: about twenty thread hops per update, most of
    the routing cost. Ours only look at the update in memory, so they run on the event loop."""
    for router in dp.chain_tail:
        for observer in router.observers.values():
            # _handler holds the router-level filters (observer.filter(...)).
            for handler in (observer._handler, *observer.handlers):
                for event_filter in handler.filters or ():
                    if not event_filter.awaitable:
                        event_filter.callback = _on_the_loop(event_filter.callback)
                        event_filter.awaitable = True


def _on_the_loop(check: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    async def run(*args: Any, **kwargs: Any) -> Any:
        return check(*args, **kwargs)

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
