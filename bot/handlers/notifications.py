"""Notifications: the customer's own switch for offers and reminders (marketing consent).

Reached from the main menu ("🔔 Notifications") and /settings. Order and service updates are not
marketing and are not switched here; /stop still pauses every proactive message.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.handlers.common import _edit_or_send
from bot.keyboards import Keyboard, MenuCallback
from touchpoint.customers.models import Customer
from touchpoint.customers.service import has_decided_marketing, set_marketing_consent, set_nudges_paused


class NotifyCallback(CallbackData, prefix="nt"):
    action: str  # on | off | resume | no (the opt-in question's "no thanks")


async def ask_opt_in(message: Message, session: AsyncSession, customer: Customer) -> None:
    """Asked once, when the customer has just linked their shop account (a natural moment): only if
    they never decided, here or in the shop."""
    if customer.marketing_consent or await has_decided_marketing(session, customer):
        return
    builder = Keyboard()
    builder.button(text=_("notifications.ask.yes"), callback_data=NotifyCallback(action="on"))
    builder.button(text=_("notifications.ask.no"), callback_data=NotifyCallback(action="no"))
    builder.adjust(2)
    await message.answer(_("notifications.ask"), reply_markup=builder.as_markup())


def screen(customer: Customer) -> tuple[str, InlineKeyboardMarkup]:
    offers = _("notifications.offers.on") if customer.marketing_consent else _("notifications.offers.off")
    lines = [_("notifications.title"), "", offers, _("notifications.service")]
    builder = Keyboard()
    if customer.nudges_paused:
        lines += ["", _("notifications.paused")]
        builder.button(text=_("notifications.button.resume"), callback_data=NotifyCallback(action="resume"))
    if customer.marketing_consent:
        builder.button(text=_("notifications.button.off"), callback_data=NotifyCallback(action="off"))
    else:
        builder.button(text=_("notifications.button.on"), callback_data=NotifyCallback(action="on"))
    builder.button(text=_("button.menu"), callback_data=MenuCallback(action="root"))
    builder.adjust(1)
    return "\n".join(lines), builder.as_markup()


async def settings_command(message: Message, customer: Customer) -> None:
    text, markup = screen(customer)
    await message.answer(text, reply_markup=markup)


async def open_menu(query: CallbackQuery, customer: Customer) -> None:
    await query.answer()
    await _edit_or_send(query, *screen(customer))


async def change(query: CallbackQuery, callback_data: NotifyCallback, customer: Customer,
                 session: AsyncSession) -> None:
    if callback_data.action == "resume":
        set_nudges_paused(session, customer, False)
    elif callback_data.action == "no" or (callback_data.action == "on") != customer.marketing_consent:
        set_marketing_consent(session, customer, callback_data.action == "on", via="chat")
    await query.answer(_("notifications.saved"))
    await _edit_or_send(query, *screen(customer))


def create_router() -> Router:
    router = Router(name="notifications")
    router.callback_query.filter(F.message.chat.type == "private")
    router.message.register(settings_command, Command("settings"), F.chat.type == "private")
    router.callback_query.register(open_menu, MenuCallback.filter(F.action == "notifications"))
    router.callback_query.register(change, NotifyCallback.filter())
    return router
