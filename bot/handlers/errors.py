"""The last line of defence: the customer gets an apology with a reference code; the log gets
the traceback and that code, never the message text or who sent it."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from aiogram import Bot, Router
from aiogram.types import ErrorEvent, User
from aiogram.utils.i18n import I18n

log = logging.getLogger("touchpoint.errors")

_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def reference_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(6))


async def apologise(event: ErrorEvent, bot: Bot, i18n: I18n, **data: Any) -> None:
    code = reference_code()
    log.error(
        "handler failed ref=%s update_id=%s",
        code,
        event.update.update_id,
        exc_info=(type(event.exception), event.exception, event.exception.__traceback__),
    )
    user: User | None = data.get("event_from_user")
    chat = data.get("event_chat")
    if user is None or chat is None or chat.type != "private":
        return
    locale = data.get("locale") or i18n.default_locale
    try:
        await bot.send_message(chat.id, i18n.gettext("error.apology", locale=locale).format(code=code))
    except Exception:  # the apology must never raise a second error
        log.exception("could not send the apology ref=%s", code)


def create_router() -> Router:
    router = Router(name="errors")
    router.errors.register(apologise)
    return router
