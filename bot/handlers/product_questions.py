"""“💬 Ask a question” on a product: the question is taken in that product's context.

The customer is asked what they want to know about *this* product; their question gets the
product's card back (what the bot knows about it) with a button to ask a person, who is told
which product it is about. Included before the presale router, which owns the product card.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.handlers.common import send_to
from bot.handlers.handoff import _escalate
from bot.handlers.presale import AskCb, ProductCb, product_card_text, text_of
from bot.handoff_desk import StaffDesk
from bot.keyboards import Keyboard, MenuCallback, back_to_menu
from touchpoint.catalog import service as catalog
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.handoff import service as handoff


class ProductQuestion(StatesGroup):
    waiting = State()


class AskPersonCb(CallbackData, prefix="pqh"):
    sku: str


def _buttons(sku: str, *, open_product: bool) -> InlineKeyboardMarkup:
    builder = Keyboard()
    builder.button(text=_("presale.button.ask_person"), callback_data=AskPersonCb(sku=sku))
    label = _("presale.button.open_product") if open_product else _("button.back")
    builder.button(text=label, callback_data=ProductCb(sku=sku))
    builder.button(text=_("button.menu"), callback_data=MenuCallback(action="root"))
    return builder.adjust(1).as_markup()


async def ask_about(
    query: CallbackQuery, callback_data: AskCb, session: AsyncSession, state: FSMContext, locale: str
) -> None:
    found = await catalog.get_product(session, callback_data.sku)
    if found is None:
        await query.answer(_("button.stale"), show_alert=True)
        return
    await query.answer()
    await state.set_state(ProductQuestion.waiting)
    await state.update_data(ask_sku=found.sku)
    text = _("presale.ask.product_prompt").format(name=text_of(found.name, locale))
    await send_to(query, text, _buttons(found.sku, open_product=False))


async def question(message: Message, session: AsyncSession, state: FSMContext, locale: str) -> None:
    sku = str((await state.get_data()).get("ask_sku", ""))
    await state.set_state(None)
    found = await catalog.get_product(session, sku)
    if found is None:
        await message.answer(_("state.reset"), reply_markup=back_to_menu())
        return
    card = product_card_text(found, locale, await catalog.stock_by_store(session, found.sku))
    await message.answer(f"{_('presale.ask.product_answer')}\n\n{card}",
                         reply_markup=_buttons(found.sku, open_product=True))


async def ask_person(
    query: CallbackQuery, callback_data: AskPersonCb, session: AsyncSession, customer: Customer,
    settings: Settings, handoff_desk: StaffDesk, state: FSMContext,
) -> None:
    found = await catalog.get_product(session, callback_data.sku)
    if found is None:
        await query.answer(_("button.stale"), show_alert=True)
        return
    await query.answer()
    await state.set_state(None)
    # Staff see which product it is about: a line in the transcript the card shows.
    staff = settings.default_locale
    # Plain text: the card escapes transcript lines when it shows them.
    note = handoff_desk.t("handoff.staff.product_question",
                          name=catalog.localized(found.name, staff), sku=found.sku)
    conversation = await handoff.active_conversation(session, customer.id or 0)
    handoff.add_transcript(session, customer.id or 0, "note", note, author="❓",
                           conversation_id=conversation.id if conversation else None)
    await session.flush()
    text = await _escalate(session, customer, settings, handoff_desk, "product")
    await send_to(query, text)


def create_router() -> Router:
    router = Router(name="product_questions")
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")
    router.callback_query.register(ask_about, AskCb.filter(), flags={"event": "presale.ask_opened"})
    router.callback_query.register(ask_person, AskPersonCb.filter())
    router.message.register(question, StateFilter(ProductQuestion.waiting), F.text,
                            ~F.text.startswith("/"), flags={"event": "presale.product_question"})
    return router
