"""Buttons on journey messages: unsubscribe, "how is it?" answers, ticket follow-up answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, F, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, TelegramObject
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.keyboards import Keyboard, MenuCallback
from bot.middlewares import CustomerState
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.journeys.service import ANSWERS, record_answer, record_click, unsubscribe_marketing

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class JourneyCallback(CallbackData, prefix="j"):
    action: str  # unsub | happy | sad | solved | unsolved


async def unsubscribe(query: CallbackQuery, customer: Customer, session: AsyncSession) -> None:
    unsubscribe_marketing(session, customer)
    await query.answer()
    await _reply(query, _("journey.unsubscribed"))


async def answered(query: CallbackQuery, callback_data: JourneyCallback, customer: Customer,
                   session: AsyncSession, settings: Settings) -> None:
    answer = await record_answer(session, customer, callback_data.action)
    await query.answer()
    builder = Keyboard()
    if answer == "happy":
        builder.button(text=_("journey.button.review"), url=f"{settings.shop_url.rstrip('/')}/review")
        builder.button(text=_("journey.button.invite"), callback_data=MenuCallback(action="invite"))
        text = _("journey.happy.reply")
    elif answer == "unhappy":
        builder.button(text=_("journey.button.returns"), callback_data=MenuCallback(action="returns"))
        builder.button(text=_("journey.button.human"), callback_data=MenuCallback(action="human"))
        text = _("journey.sad.reply")
    elif answer == "unsolved":
        builder.button(text=_("journey.button.human"), callback_data=MenuCallback(action="human"))
        text = _("journey.unsolved.reply")
    else:
        text = _("journey.solved.reply")
    builder.adjust(1)
    await _reply(query, text, builder.as_markup())


async def _reply(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Answer below the nudge (the nudge itself stays as it was, for the record)."""
    if query.message is not None:
        await query.message.answer(text, reply_markup=markup if markup and markup.inline_keyboard else None)


def create_router() -> Router:
    router = Router(name="journeys")
    router.callback_query.filter(F.message.chat.type == "private")
    router.callback_query.register(unsubscribe, JourneyCallback.filter(F.action == "unsub"))
    router.callback_query.register(answered, JourneyCallback.filter(F.action.in_(ANSWERS)))
    return router


class TrackClicks(BaseMiddleware):
    """Every button press on a proactive message counts as its click (click-through), whichever
    feature answers the button."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, CallbackQuery) and isinstance(event.message, Message) and "session" in data:
            state: CustomerState | None = data.get("customer_state")
            if state is None or state.delivery_id is not None:  # else: not a proactive message
                await record_click(data["session"], event.message.chat.id, event.message.message_id)
        return await handler(event, data)
