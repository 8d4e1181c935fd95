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
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from touchpoint.db.faults import cause_chain, means_database_unavailable
from touchpoint.i18n import resolve_locale

log = logging.getLogger("touchpoint.outage")

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)


def is_outage(exc: BaseException) -> bool:
    """A storage service is down or too slow (as opposed to a bug): the database, by the same rule
    as the events API's 503 (a server statement_timeout included), or Redis."""
    for seen in cause_chain(exc):
        if isinstance(seen, TelegramAPIError):  # Telegram's trouble, not ours: the apology handles it
            return False
        if isinstance(seen, REDIS_ERRORS) or means_database_unavailable(seen):
            return True
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
