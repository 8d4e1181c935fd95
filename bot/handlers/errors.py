"""The last line of defence: the customer gets an apology with a reference code; the log gets
the traceback and that code, never the message text or who sent it.

Before it: ``StaleState``, raised by a handler when what the customer was in the middle of no
longer holds (the order of a return was unlinked, a product was removed): their state is reset
and they get a short localised explanation with the menu — not an apology.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from aiogram import Bot, Router
from aiogram.filters import ExceptionTypeFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import ErrorEvent, User
from aiogram.utils.i18n import I18n

from bot.keyboards import main_menu
from touchpoint.aftersales.service import drop_draft
from touchpoint.customers.service import get_customer_by_telegram_id
from touchpoint.db import Database

log = logging.getLogger("touchpoint.errors")

_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


class StaleState(Exception):
    """What the customer was in the middle of no longer holds; ``key`` says why, to them."""

    def __init__(self, key: str = "state.reset") -> None:
        super().__init__(key)
        self.key = key


def reference_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(6))


async def start_over(event: ErrorEvent, bot: Bot, i18n: I18n, db: Database, **data: Any) -> None:
    """Reset the customer's state (after-sales draft, conversation state) and say so, with the menu.
    The handler's own work was rolled back with its transaction."""
    exception = event.exception
    key = exception.key if isinstance(exception, StaleState) else "state.reset"
    user: User | None = data.get("event_from_user")
    chat = data.get("event_chat")
    log.info("stale state reset (%s) update_id=%s", key, event.update.update_id)
    if user is None:
        return
    try:
        async with db.session() as session:
            customer = await get_customer_by_telegram_id(session, user.id)
            if customer is not None and customer.id is not None:
                await drop_draft(session, customer.id)
                await session.commit()
        state: FSMContext | None = data.get("state")
        if state is not None:
            await state.clear()
    except Exception:
        log.exception("could not reset a stale state update_id=%s", event.update.update_id)
    locale = data.get("locale") or i18n.default_locale
    token = I18n.set_current(i18n)  # outside the i18n middleware: the menu's labels need it
    try:
        with i18n.use_locale(locale):
            text, markup = i18n.gettext(key, locale=locale), main_menu()
    finally:
        I18n.reset_current(token)
    if event.update.callback_query is not None:
        try:
            await event.update.callback_query.answer()
        except Exception:  # answered already by the handler before it found out
            log.info("button of update_id=%s answered already", event.update.update_id)
    try:
        if chat is not None and chat.type == "private":
            await bot.send_message(chat.id, text, reply_markup=markup)
    except Exception:
        log.exception("could not tell the customer about a reset update_id=%s", event.update.update_id)


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
    query = event.update.callback_query
    if query is not None:
        try:
            await query.answer()  # the button stops spinning whatever happened
        except Exception:
            log.info("could not answer the button of update_id=%s", event.update.update_id)
    if user is None or chat is None or chat.type != "private":
        return
    locale = data.get("locale") or i18n.default_locale
    try:
        await bot.send_message(chat.id, i18n.gettext("error.apology", locale=locale).format(code=code))
    except Exception:  # the apology must never raise a second error
        log.exception("could not send the apology ref=%s", code)


def create_router() -> Router:
    router = Router(name="errors")
    router.errors.register(start_over, ExceptionTypeFilter(StaleState))
    router.errors.register(apologise)
    return router
