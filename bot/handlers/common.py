"""/start, /help, /language, /stop and the main menu."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.handlers.referrals import attribution_text
from bot.keyboards import LanguageCallback, MenuCallback, back_to_menu, language_menu, main_menu
from touchpoint.channels.deeplink import parse_start_payload
from touchpoint.config import SUPPORTED_LOCALES, Settings
from touchpoint.customers.models import Customer
from touchpoint.customers.service import record_event, set_locale, set_nudges_paused
from touchpoint.referrals.service import attribute_start


async def start(
    message: Message,
    command: CommandObject,
    customer: Customer,
    session: AsyncSession,
    settings: Settings,
) -> None:
    payload = parse_start_payload(command.args)
    record_event(
        session,
        "chat.start",
        customer_id=customer.id,
        payload={"payload_kind": payload.kind} if payload else {},
    )
    if payload is not None and payload.kind == "ref":
        result = await attribute_start(session, settings, customer, payload.value)
        await message.answer(attribution_text(result, settings))
    if customer.nudges_paused:
        set_nudges_paused(session, customer, False)
        await message.answer(_("start.resumed"))
    await message.answer(
        _("start.welcome").format(name=customer.first_name or "👋", brand=settings.brand_name),
        reply_markup=main_menu(),
    )


async def help_(message: Message) -> None:
    await message.answer(_("help.text"), reply_markup=main_menu())


async def language(message: Message) -> None:
    await message.answer(_("language.choose"), reply_markup=language_menu())


async def stop(message: Message, customer: Customer, session: AsyncSession) -> None:
    set_nudges_paused(session, customer, True)
    await message.answer(_("stop.done"))


async def language_chosen(
    query: CallbackQuery,
    callback_data: LanguageCallback,
    customer: Customer,
    session: AsyncSession,
    i18n: I18n,
) -> None:
    set_locale(session, customer, callback_data.locale)
    with i18n.use_locale(callback_data.locale):
        await query.answer()
        await _edit_or_send(query, _("language.changed"))
        assert query.message is not None
        await query.message.answer(_("menu.title"), reply_markup=main_menu())


async def menu_root(query: CallbackQuery) -> None:
    await query.answer()
    await _edit_or_send(query, _("menu.title"), main_menu())


async def menu_language(query: CallbackQuery) -> None:
    await query.answer()
    await _edit_or_send(query, _("language.choose"), language_menu())


async def menu_coming_soon(query: CallbackQuery) -> None:
    await query.answer()
    await _edit_or_send(query, _("menu.coming_soon"), back_to_menu())


def create_router() -> Router:
    router = Router(name="common")
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")
    router.message.register(start, CommandStart())
    router.message.register(help_, Command("help"), flags={"event": "chat.help"})
    router.message.register(language, Command("language"), flags={"event": "chat.language_menu"})
    router.message.register(stop, Command("stop"), flags={"event": "chat.stop"})
    router.callback_query.register(
        language_chosen,
        LanguageCallback.filter(F.locale.in_(SUPPORTED_LOCALES)),
        flags={"event": "chat.language_changed"},
    )
    router.callback_query.register(
        menu_root, MenuCallback.filter(F.action == "root"), flags={"event": "chat.menu"}
    )
    router.callback_query.register(menu_language, MenuCallback.filter(F.action == "language"))
    # Menu items whose feature has not answered them yet.
    router.callback_query.register(menu_coming_soon, MenuCallback.filter(), flags={"event": "chat.menu"})
    return router


async def _edit_or_send(query: CallbackQuery, text: str, markup: Any = None) -> None:
    """Edit the message the button was on; send anew if it can no longer be edited."""
    message = query.message
    if isinstance(message, Message):
        try:
            await message.edit_text(text, reply_markup=markup)
        except TelegramBadRequest as exc:
            if "not modified" not in exc.message:
                raise
    elif query.from_user:
        assert query.bot is not None
        await query.bot.send_message(query.from_user.id, text, reply_markup=markup)
