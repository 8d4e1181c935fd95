"""The optional assistant in chats: a grounded answer streamed to a customer the matcher was not
sure of (``sendMessageDraft`` while it is written, a normal message once checked) and their
rating of it; in the staff group, the Send / Edit buttons of reply drafts and ``/translate``."""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.methods import SendMessageDraft
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.assistant_desk import DraftCb, edit_hint, group_scope, staff_language
from bot.handlers.common import send_to
from bot.handlers.handoff import from_staff
from bot.handoff_desk import StaffDesk
from bot.keyboards import Keyboard, MenuCallback
from touchpoint.assistant import service
from touchpoint.assistant.service import Answer, Assistant
from touchpoint.config import SUPPORTED_LOCALES
from touchpoint.customers.models import Customer
from touchpoint.handoff import service as handoff
from touchpoint.handoff.models import Conversation
from touchpoint.markup import esc

log = logging.getLogger(__name__)
DRAFT_EVERY_S = 0.3  # Telegram animates drafts; more often than this is wasted calls


class RateCb(CallbackData, prefix="ar"):
    answer_id: int
    helpful: int


async def answer_with_assistant(message: Message, session: AsyncSession, customer: Customer,
                                locale: str, assistant: Assistant) -> bool:
    """Answer with the model when it is on and its answer passes the checker; False: the caller
    answers offline (the model is off, failed, refused or was rejected)."""
    if assistant.provider is None or message.bot is None or not message.text:
        return False
    stream = Streamer(message.bot, message.chat.id, message.message_id)
    answer = await service.answer_customer(assistant, session, customer, message.text, locale, stream.show)
    if answer is None or not answer.sent or answer.record.id is None:
        return False
    await message.answer(answer_text(answer), reply_markup=rating_keyboard(answer.record.id))
    return True


class Streamer:
    """The checked answer so far as a message draft, at most every ``DRAFT_EVERY_S``; a client or
    chat that refuses drafts just gets the final message."""

    def __init__(self, bot: Bot, chat_id: int, draft_id: int) -> None:
        self.bot, self.chat_id, self.draft_id = bot, chat_id, draft_id or 1
        self.shown_at = float("-inf")
        self.working = True

    async def show(self, text: str) -> None:
        now = asyncio.get_running_loop().time()
        if not self.working or now - self.shown_at < DRAFT_EVERY_S:
            return
        if text:  # the "Thinking…" placeholder does not hold back the first words
            self.shown_at = now
        try:
            await self.bot(SendMessageDraft(chat_id=self.chat_id, draft_id=self.draft_id, text=esc(text)))
        except TelegramAPIError as exc:
            self.working = False
            log.info("message drafts refused (%s): the answer comes in one message", type(exc).__name__)


def answer_text(answer: Answer) -> str:
    sources = ", ".join(source.title for source in answer.sources)
    return "\n\n".join([esc(answer.record.answer), _("assistant.answer.sources").format(sources=esc(sources)),
                        _("assistant.answer.helpful")])


def rating_keyboard(answer_id: int) -> InlineKeyboardMarkup:
    builder = Keyboard()
    builder.button(text="👍", callback_data=RateCb(answer_id=answer_id, helpful=1))
    builder.button(text="👎", callback_data=RateCb(answer_id=answer_id, helpful=0))
    builder.button(text=_("presale.button.human"), callback_data=MenuCallback(action="human"))
    return builder.adjust(2, 1).as_markup()


async def rated(query: CallbackQuery, callback_data: RateCb, session: AsyncSession,
                customer: Customer) -> None:
    if not await service.rate(session, customer, callback_data.answer_id, bool(callback_data.helpful)):
        await query.answer(_("button.stale"), show_alert=True)
        return
    await query.answer(_("assistant.answer.thanks"))
    if not callback_data.helpful:  # not helped: a person is one tap away
        builder = Keyboard()
        builder.button(text=_("presale.button.human"), callback_data=MenuCallback(action="human"))
        await send_to(query, _("presale.feedback.sorry"), builder.as_markup())


# ------------------------------------------------------------------ staff side


async def draft_button(query: CallbackQuery, callback_data: DraftCb, session: AsyncSession, bot: Bot,
                       handoff_desk: StaffDesk) -> None:
    """Send: the draft goes to the customer as this person's reply. Edit: the draft is posted for
    them to copy, change and send as their own message."""
    draft = await service.take_draft(session, callback_data.draft_id,
                                     "sent" if callback_data.action == "send" else "edited")
    conversation = (await session.get(Conversation, draft.conversation_id)
                    if draft is not None and draft.conversation_id is not None else None)
    chat_id = query.message.chat.id if query.message is not None else None
    if draft is None or conversation is None or conversation.staff_chat_id != chat_id:
        await query.answer(handoff_desk.t("assistant.staff.taken"), show_alert=True)
        return
    customer = await session.get(Customer, conversation.customer_id)
    if conversation.status != "open" or customer is None:
        draft.outcome = "offered"
        await query.answer(handoff_desk.t("handoff.staff.not_open"), show_alert=True)
        return
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(reply_markup=None)  # one tap per draft
    if callback_data.action == "edit":
        handoff_desk.say(session, conversation, edit_hint(handoff_desk, draft))
        return
    try:
        await bot.send_message(customer.telegram_id, esc(draft.answer))
    except TelegramForbiddenError:
        draft.outcome = "offered"
        handoff_desk.say(session, conversation, handoff_desk.t("handoff.staff.blocked"))
        return
    name = query.from_user.first_name
    handoff.add_transcript(session, customer.id or 0, "staff", draft.answer, author=name,
                           conversation_id=conversation.id)
    handoff.record_staff_reply(session, conversation)
    handoff_desk.say(session, conversation, handoff_desk.t("assistant.staff.sent", name=esc(name)))


async def translate_command(message: Message, command: CommandObject, session: AsyncSession,
                            handoff_desk: StaffDesk) -> None:
    """`/translate en|ru|zh|off` in a staff group: the language its staff read and write in."""
    choice = (command.args or "").strip().lower()
    scope = group_scope(message.chat.id)
    if choice and (choice == "off" or choice in SUPPORTED_LOCALES):
        await service.set_translation(session, scope, None if choice == "off" else choice)
    elif choice:
        await message.reply(handoff_desk.t("assistant.staff.translate_usage", state=esc(choice)))
        return
    current = await staff_language(session, handoff_desk, message.chat.id)
    state = current or handoff_desk.t("assistant.staff.translate_off")
    await message.reply(handoff_desk.t("assistant.staff.translate_state", state=esc(state)))


def create_router() -> Router:
    router = Router(name="assistant")
    customers, staff = Router(name="assistant.customers"), Router(name="assistant.staff")
    customers.callback_query.filter(F.message.chat.type == "private")
    staff.message.filter(F.chat.type == "supergroup")
    staff.callback_query.filter(F.message.chat.type == "supergroup")
    customers.callback_query.register(rated, RateCb.filter())
    staff.callback_query.register(draft_button, DraftCb.filter(), from_staff)
    staff.callback_query.register(staff_only, DraftCb.filter())
    staff.message.register(translate_command, Command("translate"), from_staff)
    router.include_routers(customers, staff)
    return router


async def staff_only(query: CallbackQuery) -> None:
    await query.answer(_("handoff.staff_only"), show_alert=True)
