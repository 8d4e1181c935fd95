"""Anything no other router took: show the menu rather than leave the customer hanging."""

from aiogram import F, Router
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.keyboards import main_menu


async def not_understood(message: Message) -> None:
    await message.answer(_("menu.not_understood"), reply_markup=main_menu())


def create_router() -> Router:
    router = Router(name="fallback")
    router.message.register(not_understood, F.chat.type == "private", flags={"event": "chat.unrecognised"})
    return router
