"""The assistant in the staff topics: a suggested reply under each customer message (Send / Edit
buttons; nothing reaches the customer without a person's tap) and translation of what customers
write. Drafts are written in the background: the model's seconds never hold up the relay."""

from __future__ import annotations

import asyncio
import logging

from aiogram.filters.callback_data import CallbackData
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.handoff_desk import StaffDesk
from touchpoint.assistant import service as assistant_service
from touchpoint.assistant.models import AssistantAnswer
from touchpoint.assistant.service import Answer, Assistant
from touchpoint.customers.models import Customer
from touchpoint.handoff.models import Conversation
from touchpoint.handoff.service import customer_locale
from touchpoint.markup import esc
from touchpoint.messaging.staff import StaffPost

log = logging.getLogger(__name__)
_drafting: set[asyncio.Task[None]] = set()  # held until done (the loop keeps weak references only)


class DraftCb(CallbackData, prefix="ad"):
    action: str  # send | edit
    draft_id: int


def group_scope(chat_id: int) -> str:
    return f"group:{chat_id}"


async def staff_language(session: AsyncSession, desk: StaffDesk, chat_id: int) -> str | None:
    """The language a staff group reads and writes in (None: translation off there)."""
    return await assistant_service.translation_locale(session, group_scope(chat_id), desk.staff_locale)


async def for_staff(assistant: Assistant, session: AsyncSession, desk: StaffDesk, conversation: Conversation,
                    customer: Customer, text: str) -> str | None:
    """A customer's words in the staff group's language, when it differs from the customer's."""
    if conversation.staff_chat_id is None:
        return None
    staff = await staff_language(session, desk, conversation.staff_chat_id)
    if staff is None or staff == customer_locale(customer, desk.settings):
        return None
    translated = await assistant_service.translate(assistant, session, text, staff)
    return translated if translated and translated.strip() != text.strip() else None  # nothing new


async def for_customer(assistant: Assistant, session: AsyncSession, desk: StaffDesk, chat_id: int,
                       customer: Customer, text: str) -> tuple[str, bool] | None:
    """A staff reply in the customer's language: (text, translated). None: no translation wanted
    (same language, or off for the group); (text, False): wanted but the model failed."""
    staff = await staff_language(session, desk, chat_id)
    target = customer_locale(customer, desk.settings)
    if staff is None or staff == target:
        return None
    translated = await assistant_service.translate(assistant, session, text, target)
    return (translated, True) if translated else (text, False)


def offer_draft(assistant: Assistant, desk: StaffDesk, conversation_id: int, words: str) -> None:
    """Write a suggested reply to ``words`` in the background and post it in the topic."""
    if assistant.provider is None or not words.strip():
        return
    task = asyncio.create_task(_offer(assistant, desk, conversation_id, words))
    _drafting.add(task)
    task.add_done_callback(_drafting.discard)


async def drafts_written() -> None:
    """Tests and shut-down: wait for the drafts being written."""
    while _drafting:
        await asyncio.gather(*list(_drafting), return_exceptions=True)


async def _offer(assistant: Assistant, desk: StaffDesk, conversation_id: int, words: str) -> None:
    try:
        async with desk.db.session() as session:
            conversation = await session.get(Conversation, conversation_id)
            if conversation is None or conversation.status != "open":
                return
            answer = await assistant_service.draft_for_staff(assistant, session, conversation, words)
            customer = await session.get(Customer, conversation.customer_id)
            if answer is None or not answer.sent or customer is None:
                return
            # The draft is in the customer's language; staff who read another see it in theirs too.
            draft = answer.record.answer
            translated = await for_staff(assistant, session, desk, conversation, customer, draft)
            post_draft(desk, session, conversation, answer, translated)
    except Exception:  # a draft is a convenience: its failure must not reach anyone
        log.exception("writing a reply draft failed (conversation %s)", conversation_id)


def post_draft(desk: StaffDesk, session: AsyncSession, conversation: Conversation, answer: Answer,
               translated: str | None) -> None:
    record = answer.record
    if conversation.staff_chat_id is None or record.id is None:
        return
    sources = ", ".join(source.title for source in answer.sources) or "—"
    text = desk.t("assistant.staff.draft", sources=esc(sources), text=esc(record.answer))
    if translated:
        text += "\n\n" + desk.t("assistant.staff.translation", text=esc(translated))
    buttons = [[(desk.t("assistant.staff.send"), DraftCb(action="send", draft_id=record.id).pack()),
                (desk.t("assistant.staff.edit"), DraftCb(action="edit", draft_id=record.id).pack())]]
    desk.put(session, StaffPost(conversation.staff_chat_id, conversation.topic_id, [text], buttons=buttons,
                                conversation_id=conversation.id))


def edit_hint(desk: StaffDesk, draft: AssistantAnswer) -> str:
    return desk.t("assistant.staff.edit_hint", text=esc(draft.answer))
