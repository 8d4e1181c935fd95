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

from bot.commands import BOT_COMMANDS
from bot.handlers.referrals import attribution_text
from bot.keyboards import (
    MENU_ITEMS,
    LanguageCallback,
    MenuCallback,
    back_to_menu,
    language_menu,
    main_menu,
)
from touchpoint.channels.deeplink import parse_start_payload
from touchpoint.config import SUPPORTED_LOCALES, Settings
from touchpoint.customers.models import Customer
from touchpoint.customers.service import record_event, set_locale, set_nudges_paused
from touchpoint.handoff.service import working_hours
from touchpoint.markup import esc
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
        _("start.welcome").format(name=esc(customer.first_name, "👋"), brand=esc(settings.brand_name)),
        reply_markup=main_menu(),
    )


def help_text(settings: Settings, locale: str) -> str:
    """Every command of the command menu, and when people (not just the bot) answer."""
    commands = "\n".join(f"/{name} — {_(f'command.{name}')}" for name in BOT_COMMANDS)
    days, hours = working_hours(settings).describe(locale)
    return _("help.text").format(
        commands=commands, days=days, hours=hours, timezone=esc(settings.handoff_timezone)
    )


async def help_(message: Message, settings: Settings, locale: str) -> None:
    await message.answer(help_text(settings, locale), reply_markup=main_menu())


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
        await send_to(query, _("menu.title"), main_menu())


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
    router.callback_query.register(
        menu_coming_soon, MenuCallback.filter(F.action.in_(MENU_ITEMS)), flags={"event": "chat.menu"}
    )
    return router


# Telegram's words for a message that cannot be edited into this one: then it is sent anew.
CANNOT_EDIT = ("can't be edited", "not found", "no text in the message")


async def _edit_or_send(query: CallbackQuery, text: str, markup: Any = None) -> None:
    """Edit the message the button was on; send anew if it can no longer be edited. An edit that
    changes nothing is a success (bot.replies.EditsNotModified)."""
    message = query.message
    if isinstance(message, Message):
        try:
            await message.edit_text(text, reply_markup=markup)
            return
        except TelegramBadRequest as exc:
            if not any(mark in exc.message for mark in CANNOT_EDIT):
                raise
    await send_to(query, text, markup)


async def send_to(query: CallbackQuery, text: str, markup: Any = None) -> None:
    """A new message in the chat the button was pressed in (the presser's private chat)."""
    bot = query.bot
    if bot is None:
        return
    chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    await bot.send_message(chat_id, text, reply_markup=markup)
