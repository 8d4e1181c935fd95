"""The database or Redis is unreachable: the customer hears "try again in a minute", not an error code.

Nothing is committed for such an update, and nothing needs repairing: the engine's pool checks
connections before use, so the bot recovers by itself as soon as the service is back.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent, User
from aiogram.utils.i18n import I18n
from asyncpg.exceptions import CannotConnectNowError, ConnectionDoesNotExistError, PostgresConnectionError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from touchpoint.i18n import resolve_locale

log = logging.getLogger("touchpoint.outage")

OUTAGE_ERRORS = (
    OperationalError, InterfaceError, PoolTimeoutError, ConnectionError, TimeoutError,
    RedisConnectionError, RedisTimeoutError,
    ConnectionDoesNotExistError, PostgresConnectionError, CannotConnectNowError,
)


def is_outage(exc: BaseException) -> bool:
    """A storage service is down (as opposed to a bug): walks the cause chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TelegramAPIError):  # Telegram's trouble, not ours: the apology handles it
            return False
        if isinstance(seen, OUTAGE_ERRORS):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def answer_outage(event: ErrorEvent, bot: Bot, i18n: I18n, **data: Any) -> None:
    log.warning("storage unavailable update_id=%s error=%s",
                event.update.update_id, type(event.exception).__name__)
    user: User | None = data.get("event_from_user")
    chat = data.get("event_chat")
    if user is None or chat is None or chat.type != "private":
        return
    locale = data.get("locale") or resolve_locale(None, user.language_code, i18n.default_locale)
    try:
        await bot.send_message(chat.id, i18n.gettext("outage.having_trouble", locale=locale))
        if event.update.callback_query is not None:
            await event.update.callback_query.answer()
    except Exception:  # Telegram may be unreachable too; the log line above is enough
        log.warning("could not tell update_id=%s about the outage", event.update.update_id)


def register(dp: Dispatcher) -> None:
    """On the dispatcher itself, so it is asked before the routers' catch-all apology."""
    dp.errors.register(answer_outage, lambda event: is_outage(event.exception))
