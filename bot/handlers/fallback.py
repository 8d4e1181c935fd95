"""Anything no other router took: show the menu rather than leave the customer hanging, and answer
every button press — a forged, stale or malformed button gets a short "out of date" alert instead
of a spinner that never stops."""

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.keyboards import main_menu


async def not_understood(message: Message) -> None:
    await message.answer(_("menu.not_understood"), reply_markup=main_menu())


async def stale_button(query: CallbackQuery) -> None:
    await query.answer(_("button.stale"), show_alert=True)


def create_router() -> Router:
    router = Router(name="fallback")
    router.message.register(not_understood, F.chat.type == "private", flags={"event": "chat.unrecognised"})
    router.callback_query.register(stale_button)
    return router
