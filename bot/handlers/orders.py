"""My orders, account linking (contact or one-time link), order detail and guest look-up."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import CommandObject, CommandStart
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.handlers.aftersales import AftersalesCallback
from bot.handlers.common import _edit_or_send, send_to
from bot.handlers.notifications import ask_opt_in
from bot.keyboards import Keyboard, MenuCallback, main_menu
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.i18n import get_translator
from touchpoint.messaging.base import Button
from touchpoint.orders import render
from touchpoint.orders import service as orders
from touchpoint.orders.service import FINAL_STATUSES


class OrderCallback(CallbackData, prefix="ord"):
    action: str  # l list · v view (edit) · d detail (new message, from the live card) · k link ·
    #              f find by number · u unlink · x cancel
    number: str = ""


class Lookup(StatesGroup):
    number = State()
    proof = State()


def _markup(rows: tuple[tuple[Button, ...], ...]) -> list[list[InlineKeyboardButton]]:
    return [[InlineKeyboardButton(text=b.text, callback_data=b.callback_data, url=b.url) for b in row]
            for row in rows]


def _with_back(
    rows: tuple[tuple[Button, ...], ...], back: OrderCallback | MenuCallback
) -> InlineKeyboardMarkup:
    label = _("orders.button.list") if isinstance(back, OrderCallback) else _("button.menu")
    return InlineKeyboardMarkup(inline_keyboard=[
        *_markup(rows), [InlineKeyboardButton(text=label, callback_data=back.pack())]])


async def _overview(customer: Customer, session: AsyncSession, settings: Settings,
                    locale: str) -> tuple[str, InlineKeyboardMarkup]:
    builder = Keyboard()
    if customer.store_customer_id is None:
        builder.button(text=_("orders.button.link"), callback_data=OrderCallback(action="k"))
        builder.button(text=_("orders.button.find"), callback_data=OrderCallback(action="f"))
        builder.button(text=_("button.menu"), callback_data=MenuCallback(action="root"))
        return _("orders.link.prompt"), builder.adjust(1).as_markup()
    t = get_translator(settings.locales_dir, settings.default_locale)
    found = await orders.list_orders(session, customer.store_customer_id)
    for order in found:
        total = render.money(order.total_minor, order.currency, locale)
        builder.button(text=render.list_button_text(t, locale, order.number, order.status, total),
                       callback_data=OrderCallback(action="v", number=order.number))
    builder.button(text=_("orders.button.find"), callback_data=OrderCallback(action="f"))
    builder.button(text=_("orders.button.unlink"), callback_data=OrderCallback(action="u"))
    builder.button(text=_("button.menu"), callback_data=MenuCallback(action="root"))
    return _("orders.list.title") if found else _("orders.list.empty"), builder.adjust(1).as_markup()


async def _send_overview(message: Message, customer: Customer, session: AsyncSession, settings: Settings,
                         locale: str) -> None:
    text, markup = await _overview(customer, session, settings, locale)
    await message.answer(text, reply_markup=markup)


async def show_orders(query: CallbackQuery, customer: Customer, session: AsyncSession, settings: Settings,
                      locale: str, state: FSMContext) -> None:
    await state.clear()
    await query.answer()
    await _edit_or_send(query, *await _overview(customer, session, settings, locale))


async def order_detail(query: CallbackQuery, callback_data: OrderCallback, customer: Customer,
                       session: AsyncSession, settings: Settings, locale: str) -> None:
    await query.answer()
    view = await orders.customer_order(session, customer, callback_data.number)
    back = OrderCallback(action="l")
    if view is None:
        await _reply(query, _("orders.detail.not_found"), _with_back((), back), callback_data.action)
        return
    t = get_translator(settings.locales_dir, settings.default_locale)
    text = render.detail_text(t, locale, customer.timezone, view)
    buttons = render.order_buttons(t, locale, view.order.number, view.order.tracking_url, details=False)
    if view.order.status in FINAL_STATUSES:  # received: a return, exchange or repair starts from here
        entry = AftersalesCallback(action="order", id=view.order.id or 0).pack()
        buttons = ((Button(_("orders.button.aftersales"), callback_data=entry),), *buttons)
    await _reply(query, text, _with_back(buttons, back), callback_data.action)


async def _reply(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup, action: str) -> None:
    """From the list, the detail replaces it; from the live order card, it comes as a new message
    (the card must stay the card)."""
    if action == "v":
        await _edit_or_send(query, text, markup)
    elif isinstance(query.message, Message):
        await query.message.answer(text, reply_markup=markup)


async def ask_contact(query: CallbackQuery) -> None:
    await query.answer()
    keyboard = ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=_("orders.button.share_contact"), request_contact=True)]],
        resize_keyboard=True, one_time_keyboard=True,
    )
    await send_to(query, _("orders.link.share"), keyboard)


async def contact_shared(message: Message, customer: Customer, session: AsyncSession, settings: Settings,
                         locale: str) -> None:
    contact = message.contact
    if contact is None or message.from_user is None:
        return
    if contact.user_id != message.from_user.id:  # a forwarded or picked contact is someone else's
        await message.answer(_("orders.link.not_own"))
        return
    result = await orders.link_by_contact(session, settings, customer, contact.phone_number)
    text = {"linked": "orders.link.done", "no_match": "orders.link.no_match",
            "invalid_phone": "orders.link.bad_phone"}[result.outcome]
    await message.answer(_(text), reply_markup=ReplyKeyboardRemove())
    if result.outcome == "linked":
        await ask_opt_in(message, session, customer)
    await _send_overview(message, customer, session, settings, locale)


async def start_link(message: Message, command: CommandObject, customer: Customer, session: AsyncSession,
                     settings: Settings, locale: str) -> None:
    token = (command.args or "").removeprefix("link_")
    result = await orders.link_by_token(session, customer, token)
    if result.outcome != "linked":
        await message.answer(_("orders.link.token_invalid"))
    else:
        await message.answer(_("orders.link.done"))
        await ask_opt_in(message, session, customer)
    await _send_overview(message, customer, session, settings, locale)


async def unlink(query: CallbackQuery, customer: Customer, session: AsyncSession, settings: Settings,
                 locale: str) -> None:
    await query.answer()
    orders.unlink(session, customer)
    await _edit_or_send(query, _("orders.unlink.done"))
    await send_to(query, *await _overview(customer, session, settings, locale))


def _cancel_markup() -> InlineKeyboardMarkup:
    builder = Keyboard()
    builder.button(text=_("orders.button.cancel"), callback_data=OrderCallback(action="x"))
    return builder.as_markup()


async def find_start(query: CallbackQuery, customer: Customer, session: AsyncSession, settings: Settings,
                     state: FSMContext) -> None:
    await query.answer()
    if await orders.lookup_locked(session, settings, customer):
        await _edit_or_send(query, _("orders.find.locked"), _with_back((), MenuCallback(action="root")))
        return
    await state.set_state(Lookup.number)
    await _edit_or_send(query, _("orders.find.ask_number"), _cancel_markup())


async def find_number(message: Message, settings: Settings, state: FSMContext) -> None:
    number = orders.clean_order_number(settings, message.text or "")
    if number is None:
        await message.answer(_("orders.find.bad_number"), reply_markup=_cancel_markup())
        return
    await state.update_data(number=number)
    await state.set_state(Lookup.proof)
    await message.answer(_("orders.find.ask_proof"), reply_markup=_cancel_markup())


async def find_proof(message: Message, customer: Customer, session: AsyncSession, settings: Settings,
                     locale: str, state: FSMContext) -> None:
    number = (await state.get_data()).get("number", "")
    await state.clear()
    if await orders.lookup_locked(session, settings, customer):
        menu = _with_back((), MenuCallback(action="root"))
        await message.answer(_("orders.find.locked"), reply_markup=menu)
        return
    view = await orders.guest_lookup(session, settings, customer, number, (message.text or "")[:256])
    if view is None:
        locked = await orders.lookup_locked(session, settings, customer)
        builder = Keyboard()
        if not locked:
            builder.button(text=_("orders.button.find"), callback_data=OrderCallback(action="f"))
        builder.button(text=_("button.menu"), callback_data=MenuCallback(action="root"))
        text = _("orders.find.locked") if locked else _("orders.find.failed")
        await message.answer(text, reply_markup=builder.adjust(1).as_markup())
        return
    t = get_translator(settings.locales_dir, settings.default_locale)
    buttons = render.order_buttons(t, locale, view.order.number, view.order.tracking_url, details=False)
    await message.answer(render.detail_text(t, locale, customer.timezone, view),
                         reply_markup=_with_back(buttons, MenuCallback(action="root")))


async def find_cancel(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await query.answer()
    await _edit_or_send(query, _("menu.title"), main_menu())


async def show_by_number(message: Message, number: str, customer: Customer, session: AsyncSession,
                         settings: Settings, locale: str, state: FSMContext) -> None:
    """An order number typed in a message: the customer's own order at once, anyone else's only
    after the usual identity check (the look-up continues at its proof step)."""
    view = await orders.customer_order(session, customer, number)
    if view is not None:
        t = get_translator(settings.locales_dir, settings.default_locale)
        buttons = render.order_buttons(t, locale, view.order.number, view.order.tracking_url, details=False)
        await message.answer(render.detail_text(t, locale, customer.timezone, view),
                             reply_markup=_with_back(buttons, OrderCallback(action="l")))
        return
    if await orders.lookup_locked(session, settings, customer):
        menu = _with_back((), MenuCallback(action="root"))
        await message.answer(_("orders.find.locked"), reply_markup=menu)
        return
    await state.update_data(number=number)
    await state.set_state(Lookup.proof)
    await message.answer(_("orders.find.ask_proof"), reply_markup=_cancel_markup())


def create_router() -> Router:
    router = Router(name="orders")
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")
    router.callback_query.register(show_orders, MenuCallback.filter(F.action == "orders"),
                                   flags={"event": "orders.list_viewed"})
    router.callback_query.register(show_orders, OrderCallback.filter(F.action == "l"),
                                   flags={"event": "orders.list_viewed"})
    router.callback_query.register(order_detail, OrderCallback.filter(F.action.in_({"v", "d"})))
    router.callback_query.register(ask_contact, OrderCallback.filter(F.action == "k"))
    router.callback_query.register(unlink, OrderCallback.filter(F.action == "u"))
    router.callback_query.register(find_start, OrderCallback.filter(F.action == "f"))
    router.callback_query.register(find_cancel, OrderCallback.filter(F.action == "x"))
    router.message.register(contact_shared, F.contact)
    router.message.register(
        start_link, CommandStart(deep_link=True, magic=F.args.regexp(r"^link_[A-Za-z0-9_-]{1,59}$")),
        flags={"event": "chat.start"},
    )
    router.message.register(find_number, Lookup.number, F.text)
    router.message.register(find_proof, Lookup.proof, F.text)
    return router
