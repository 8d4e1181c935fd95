"""Free text no feature took: understood once (``touchpoint.understanding``), then answered by
what it asks for — an FAQ answer, a product or store card, an order, the returns flow, a person,
or an honest "I don't know" with a way on. When the matcher is not sure and the optional assistant
is on, a grounded answer from the model comes first (``bot.handlers.assistant``)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.handlers import aftersales, handoff, orders
from bot.handlers.assistant import answer_with_assistant
from bot.handlers.presale import (
    CategoryCb,
    FaqCb,
    FeedbackCb,
    ProductCb,
    StoresCb,
    esc,
    product_card_markup,
    product_card_text,
    short,
    store_line,
    text_of,
)
from bot.handoff_desk import StaffDesk
from bot.keyboards import Keyboard, MenuCallback, fixed, main_menu
from touchpoint.assistant.service import Assistant
from touchpoint.catalog import service as catalog
from touchpoint.catalog.models import Category, Store
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.understanding.matcher import Match
from touchpoint.understanding.service import Understanding, understand_message

# An FAQ answer with one of these tags offers the flow that acts on it.
FLOW_BUTTONS = (("orders", "orders", "menu.orders"), ("returns", "returns", "menu.returns"),
                ("repair", "returns", "menu.returns"))


async def question(
    message: Message, session: AsyncSession, customer: Customer, settings: Settings, locale: str,
    state: FSMContext, handoff_desk: StaffDesk, assistant: Assistant,
) -> None:
    text = (message.text or "").strip()
    understood, misses = await understand_message(session, customer.id or 0, text,
                                                  settings.orders_number_pattern)
    intent = understood.intent
    if intent in ("greeting", "thanks"):
        key = "presale.intent.greeting" if intent == "greeting" else "presale.intent.thanks"
        await message.answer(_(key), reply_markup=main_menu() if intent == "greeting" else menu_button())
    elif intent == "order" and understood.order_number:
        await orders.show_by_number(message, understood.order_number, customer, session, settings, locale,
                                    state)
    elif intent == "return":
        await aftersales.open_hub(message)
    elif intent == "human":
        await handoff.hand_over(message, session, customer, settings, handoff_desk, "command")
    elif intent == "store" and understood.store_id:
        await send_store(message, session, understood.store_id, locale)
    elif intent == "category" and understood.category_id:
        await send_category(message, session, understood.category_id, locale)
    elif intent == "not_sold":
        await message.answer(_("presale.intent.not_sold").format(item=esc(short(understood.item or "", 60))),
                             reply_markup=not_sold_keyboard())
    elif intent in ("answer", "product"):
        await send_answer(message, session, understood, locale, settings)
    elif intent in ("suggest", "none") and await answer_with_assistant(message, session, customer, locale,
                                                                         assistant):
        return  # the matcher was not sure; the model answered from the shop's own sources
    elif intent == "suggest":
        await send_suggestions(message, session, understood.match, locale)
    else:
        # After the second miss the person is escalated as "faq_miss", so staff see why.
        human = "human_faq" if misses >= 2 else "human"
        key = "presale.answer.two_misses" if misses >= 2 else "presale.answer.none"
        await message.answer(_(key), reply_markup=no_answer_keyboard(human))


def menu_button() -> InlineKeyboardMarkup:
    def build() -> InlineKeyboardMarkup:
        builder = Keyboard()
        builder.button(text=_("button.menu"), callback_data=MenuCallback(action="root"))
        return builder.as_markup()

    return fixed("questions.menu", build)


def no_answer_keyboard(human: str) -> InlineKeyboardMarkup:
    def build() -> InlineKeyboardMarkup:
        builder = Keyboard()
        builder.button(text=_("presale.button.human"), callback_data=MenuCallback(action=human))
        builder.button(text=_("button.menu"), callback_data=MenuCallback(action="root"))
        builder.adjust(1)
        return builder.as_markup()

    return fixed(f"presale.no_answer.{human}", build)


def not_sold_keyboard() -> InlineKeyboardMarkup:
    def build() -> InlineKeyboardMarkup:
        builder = Keyboard()
        builder.button(text=_("menu.products"), callback_data=MenuCallback(action="products"))
        builder.button(text=_("presale.button.human"), callback_data=MenuCallback(action="human"))
        builder.adjust(1)
        return builder.as_markup()

    return fixed("questions.not_sold", build)


async def send_answer(message: Message, session: AsyncSession, understood: Understanding,
                      locale: str, settings: Settings) -> None:
    best = understood.match.best
    if best is not None and best.target.kind == "product":
        product = await catalog.get_product(session, best.target.id)
        if product is not None:
            stock = await catalog.stock_by_store(session, product.sku)
            in_stock = any(s.available > 0 for s in stock)
            await message.answer(product_card_text(product, locale, stock),
                                 reply_markup=product_card_markup(product, in_stock))
            return
    entry = await catalog.get_faq(session, best.target.id) if best is not None else None
    if entry is None:  # deleted since the index was built
        await message.answer(_("presale.answer.none"), reply_markup=no_answer_keyboard("human"))
        return
    builder = Keyboard()
    flows = [(action, label) for tag, action, label in FLOW_BUTTONS if tag in entry.tags]
    for action, label in dict(flows).items():
        builder.button(text=_(label), callback_data=MenuCallback(action=action))
    builder.button(text="👍", callback_data=FeedbackCb(kind="f", id=entry.id, helpful=1))
    builder.button(text="👎", callback_data=FeedbackCb(kind="f", id=entry.id, helpful=0))
    builder.adjust(*([1] * len(dict(flows))), 2)
    text = esc(catalog.faq_answer(entry, locale, settings))
    await message.answer(f"{text}\n\n{_('presale.answer.helpful')}", reply_markup=builder.as_markup())


async def send_suggestions(message: Message, session: AsyncSession, match: Match, locale: str) -> None:
    builder = Keyboard()
    for hit in match.hits[:3]:
        if hit.target.kind == "faq":
            entry = await catalog.get_faq(session, hit.target.id)
            if entry is not None:
                questions = entry.questions.get(locale) or entry.questions.get("en") or [entry.id]
                builder.button(text=short(questions[0], 60), callback_data=FaqCb(id=entry.id))
        elif hit.target.kind == "product":
            found = await catalog.get_product(session, hit.target.id)
            if found is not None:
                builder.button(text=short(catalog.localized(found.name, locale), 60),
                               callback_data=ProductCb(sku=found.sku))
    builder.button(text=_("presale.button.human"), callback_data=MenuCallback(action="human"))
    builder.adjust(1)
    await message.answer(_("presale.answer.suggest"), reply_markup=builder.as_markup())


async def send_store(message: Message, session: AsyncSession, store_id: str, locale: str) -> None:
    store = await session.get(Store, store_id)
    if store is None:
        await message.answer(_("presale.not_found"), reply_markup=menu_button())
        return
    builder = Keyboard()
    builder.button(text=_("presale.button.stores"), callback_data=StoresCb())
    builder.button(text=_("button.menu"), callback_data=MenuCallback(action="root"))
    await message.answer(store_line(store, locale), reply_markup=builder.adjust(1).as_markup())


async def send_category(message: Message, session: AsyncSession, category_id: str, locale: str) -> None:
    category = await session.get(Category, category_id)
    if category is None:
        await message.answer(_("presale.not_found"), reply_markup=menu_button())
        return
    builder = Keyboard()
    builder.button(text=short(text_of(category.name, locale), 60), callback_data=CategoryCb(id=category.id))
    builder.button(text=_("menu.products"), callback_data=MenuCallback(action="products"))
    await message.answer(_("presale.intent.category").format(category=esc(text_of(category.name, locale))),
                         reply_markup=builder.adjust(1).as_markup())


def create_router() -> Router:
    router = Router(name="questions")
    router.message.filter(F.chat.type == "private")
    # Free text no earlier router took (commands excluded); never in the middle of another
    # feature's conversation (an FSM state is set then).
    router.message.register(question, StateFilter(None), F.text, ~F.text.startswith("/"),
                            F.from_user.is_bot.is_(False))  # other bots are not customers
    return router
