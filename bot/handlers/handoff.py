"""Handoff: escalation ("Talk to a person", /human, distress), the relay both ways, staff commands.

Included FIRST among the feature routers: while a conversation is with staff, every customer
message goes to the staff topic and the bot does not answer by itself. Distress escalates from
anywhere except an after-sales step that waits for the customer's own words: those go into the
request, which hands over itself once they are stored.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramForbiddenError
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, User
from aiogram.utils.i18n import gettext as _
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.assistant_desk import for_customer, for_staff, offer_draft
from bot.business import BusinessChatClosed, copy_to_customer
from bot.handlers.common import _edit_or_send, send_to
from bot.handoff_desk import HandoffCallback, StaffDesk
from bot.keyboards import Keyboard, MenuCallback
from bot.middlewares import CustomerState
from bot.transcript import TranscriptRecorder, attachment
from touchpoint.aftersales.policy import KINDS
from touchpoint.aftersales.service import awaits_words, create_ticket_from_conversation
from touchpoint.assistant.service import Assistant, keep_original
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.handoff import service
from touchpoint.handoff.card import money
from touchpoint.handoff.models import Conversation, TranscriptMessage
from touchpoint.handoff.rules import is_distress
from touchpoint.i18n import get_translator
from touchpoint.markup import esc
from touchpoint.messaging.staff import StaffPost
from touchpoint.orders.models import Order, OrderItem

log = logging.getLogger(__name__)
NOTE_PREFIXES = ("#", "/note")


# ------------------------------------------------------------------ filters


async def in_handoff(
    _event: Any, customer: Customer | None, session: AsyncSession, customer_state: CustomerState | None = None
) -> bool | dict[str, Any]:
    """The customer's open conversation, handed to the handler as ``conversation``."""
    if customer is None or customer.id is None:
        return False
    if customer_state is None:
        conversation = await service.active_conversation(session, customer.id)
    elif customer_state.open_conversation_id is None:
        return False  # the common case: no query at all
    else:
        conversation = await session.get(Conversation, customer_state.open_conversation_id)
        if conversation is not None and conversation.status != "open":
            conversation = None
    return {"conversation": conversation} if conversation is not None else False


async def distressed(
    message: Message, settings: Settings, session: AsyncSession, customer: Customer | None
) -> bool:
    text = message.text or ""
    if text.startswith("/") or not is_distress(text, settings.handoff_distress_words):
        return False
    # Words typed into an after-sales request belong to it (a complaint's details are often
    # angry); the request hands the customer over once they are stored.
    return customer is None or customer.id is None or not await awaits_words(session, customer.id)


async def from_staff(
    event: Message | CallbackQuery, event_from_user: User | None, handoff_desk: StaffDesk
) -> bool:
    """Only members of the staff group act; anyone else is ignored (and logged, without names)."""
    chat = event.chat if isinstance(event, Message) else (event.message.chat if event.message else None)
    if chat is None or chat.id not in service.staff_chat_ids(handoff_desk.settings):
        return False
    if event_from_user is not None and await handoff_desk.is_staff(chat.id, event_from_user.id):
        return True
    log.warning("ignored a non-staff %s in staff group %s", type(event).__name__, chat.id)
    return False


# ------------------------------------------------------------------ customer side


async def _escalate(
    session: AsyncSession, customer: Customer, settings: Settings, desk: StaffDesk, reason: str
) -> str:
    result = await service.escalate(session, customer, reason, settings=settings)
    if result.created and result.conversation is not None:
        await session.commit()
        await desk.ensure_topic(session, result.conversation)
    return result.text


async def hand_over(message: Message, session: AsyncSession, customer: Customer, settings: Settings,
                    handoff_desk: StaffDesk, reason: str) -> None:
    """Hand the chat to staff from a message that asks for a person in so many words."""
    await message.answer(await _escalate(session, customer, settings, handoff_desk, reason))


# "Talk to a person" buttons and the reason each gives staff: the menu's, and the FAQ's offer
# after two questions it could not answer.
HUMAN_BUTTONS = {"human": "button", "human_faq": "faq_miss"}


async def human_button(
    query: CallbackQuery,
    callback_data: MenuCallback,
    session: AsyncSession,
    customer: Customer,
    settings: Settings,
    handoff_desk: StaffDesk,
) -> None:
    await query.answer()
    reason = HUMAN_BUTTONS[callback_data.action]
    text = await _escalate(session, customer, settings, handoff_desk, reason)
    await send_to(query, text)


async def human_command(
    message: Message,
    session: AsyncSession,
    customer: Customer,
    settings: Settings,
    handoff_desk: StaffDesk,
) -> None:
    await message.answer(await _escalate(session, customer, settings, handoff_desk, "command"))


async def distress(
    message: Message,
    session: AsyncSession,
    customer: Customer,
    settings: Settings,
    handoff_desk: StaffDesk,
) -> None:
    await message.answer(await _escalate(session, customer, settings, handoff_desk, "distress"))


async def relay_to_staff(
    message: Message,
    session: AsyncSession,
    customer: Customer,
    conversation: Conversation,
    handoff_desk: StaffDesk,
    transcript: TranscriptRecorder,
    assistant: Assistant,
) -> None:
    """The customer's message goes to their topic (translated too, when staff read another
    language; a suggested reply follows when drafts are on); the bot itself stays quiet."""
    if conversation.id is None:
        return
    transcript.attach(conversation.id)
    topic_id = await handoff_desk.ensure_topic(session, conversation)
    if topic_id is None or conversation.staff_chat_id is None:
        return  # kept in the transcript: the card shows it once the topic exists
    if message.text:
        parts = [message.html_text]
        translated = await for_staff(assistant, session, handoff_desk, conversation, customer, message.text)
        if translated:
            parts.append(handoff_desk.t("assistant.staff.translation", text=esc(translated)))
        post = StaffPost(conversation.staff_chat_id, topic_id, parts, coalesce_key=f"c{customer.id}",
                         conversation_id=conversation.id)
        offer_draft(assistant, handoff_desk, conversation.id, message.text)
    else:
        post = StaffPost(conversation.staff_chat_id, topic_id,
                         copy_from=(message.chat.id, message.message_id), conversation_id=conversation.id)
    handoff_desk.put(session, post)


async def busy_button(query: CallbackQuery) -> None:
    await query.answer(_("handoff.busy"), show_alert=True)


async def csat_rated(
    query: CallbackQuery,
    callback_data: HandoffCallback,
    session: AsyncSession,
    customer: Customer,
    settings: Settings,
    handoff_desk: StaffDesk,
) -> None:
    conversation = await service.record_csat(
        session, customer, callback_data.conversation_id, callback_data.score
    )
    if conversation is None:
        # Only a rating of the customer's own closed conversation that was given already is
        # "counted"; anything else (a forged or unknown id) is an out-of-date button.
        counted = await service.rated_already(session, customer, callback_data.conversation_id)
        await query.answer(_("handoff.csat.invalid" if counted else "button.stale"), show_alert=not counted)
        return
    await query.answer()
    line = handoff_desk.t("handoff.staff.csat", score=callback_data.score)
    # The topic was closed with the conversation: staff see the rating in it all the same, and
    # the console's transcript keeps it.
    handoff_desk.say_closed(session, conversation, line)
    service.add_transcript(session, customer.id or 0, "note", line, author="⭐",
                           conversation_id=conversation.id)
    await _edit_or_send(query, _("handoff.csat.thanks"))
    if callback_data.score <= service.LOW_CSAT:
        await send_to(query, await _escalate(session, customer, settings, handoff_desk, "low_csat"))


def csat_keyboard(conversation_id: int) -> InlineKeyboardMarkup:
    builder = Keyboard()
    for score in range(1, 6):
        builder.button(
            text="⭐" * score,
            callback_data=HandoffCallback(action="csat", conversation_id=conversation_id, score=score),
        )
    builder.adjust(1)
    return builder.as_markup()


# ------------------------------------------------------------------ staff side


async def _topic_conversation(message: Message, session: AsyncSession) -> Conversation | None:
    if message.message_thread_id is None or not message.is_topic_message:
        return None
    return await service.conversation_by_topic(session, message.chat.id, message.message_thread_id)


async def _customer(session: AsyncSession, conversation: Conversation) -> Customer | None:
    return await session.get(Customer, conversation.customer_id)


async def staff_message(message: Message, session: AsyncSession, bot: Bot, handoff_desk: StaffDesk,
                        assistant: Assistant) -> None:
    """Staff write in the topic: relayed to the customer (in the customer's language when the
    group has translation on; the transcript keeps the words as written), unless it is an
    internal note."""
    conversation = await _topic_conversation(message, session)
    if conversation is None or conversation.id is None or message.from_user is None:
        return
    body = message.text or message.caption or ""
    if body.startswith(NOTE_PREFIXES):
        service.add_transcript(
            session,
            conversation.customer_id,
            "note",
            body,
            author=message.from_user.first_name,
            conversation_id=conversation.id,
        )
        return
    customer = await _customer(session, conversation)
    if conversation.status != "open" or customer is None:
        handoff_desk.say_closed(session, conversation, handoff_desk.t("handoff.staff.closed_topic"))
        return
    translation = await for_customer(assistant, session, handoff_desk, message.chat.id, customer,
                                     message.text) if message.text else None
    try:
        if translation is None:
            await copy_to_customer(bot, session, customer.telegram_id, message)
        else:
            await bot.send_message(customer.telegram_id, esc(translation[0]))
    except TelegramForbiddenError:
        handoff_desk.say(session, conversation, handoff_desk.t("handoff.staff.blocked"))
        return
    except BusinessChatClosed as closed:
        handoff_desk.say(session, conversation, handoff_desk.t(f"business.staff.{closed.reason.value}"))
        return
    if translation is not None:
        key = "assistant.staff.sent_as" if translation[1] else "assistant.staff.untranslated"
        handoff_desk.say(session, conversation, handoff_desk.t(key, text=esc(translation[0])))
        if translation[1]:
            keep_original(session, conversation, message.from_user.first_name, body)
            body = translation[0]  # the transcript shows what the customer got
    kind = "text" if message.text else (message.content_type or "media")
    file_id, file_name = attachment(message)
    service.add_transcript(
        session,
        customer.id or 0,
        "staff",
        body,
        kind=kind,
        author=message.from_user.first_name,
        conversation_id=conversation.id,
        telegram_message_id=message.message_id,
        file_id=file_id,
        file_name=file_name,
    )
    service.record_staff_reply(session, conversation)


async def _close(
    session: AsyncSession,
    bot: Bot,
    desk: StaffDesk,
    settings: Settings,
    conversation: Conversation,
    staff: User,
) -> None:
    if conversation.id is None or not service.close(session, conversation):
        desk.say_closed(session, conversation, desk.t("handoff.staff.not_open"))
        return
    closed_line = desk.t("handoff.staff.closed", name=esc(staff.first_name))
    # The transcript keeps plain text (the console escapes what it shows).
    service.add_transcript(session, conversation.customer_id, "note",
                           desk.t("handoff.staff.closed", name=staff.first_name), author="✅",
                           conversation_id=conversation.id)
    await session.commit()
    customer = await _customer(session, conversation)
    if customer is not None:
        locale = service.customer_locale(customer, settings)
        try:
            await bot.send_message(
                customer.telegram_id,
                get_translator(settings.locales_dir, settings.default_locale)(locale, "handoff.csat.ask"),
                reply_markup=csat_keyboard(conversation.id),
            )
        except TelegramForbiddenError:
            desk.say(session, conversation, desk.t("handoff.staff.blocked"))
        except BusinessChatClosed as closed:
            desk.say(session, conversation, desk.t(f"business.staff.{closed.reason.value}"))
    # Said first, closed after: the staff lane posts these lines before it closes the topic.
    desk.say(session, conversation, closed_line)
    desk.close_topic(session, conversation)


async def close_command(
    message: Message, session: AsyncSession, bot: Bot, handoff_desk: StaffDesk, settings: Settings
) -> None:
    conversation = await _topic_conversation(message, session)
    if conversation is not None and message.from_user is not None:
        await _close(session, bot, handoff_desk, settings, conversation, message.from_user)


def _claim(session: AsyncSession, desk: StaffDesk, conversation: Conversation, staff: User) -> None:
    service.claim(session, conversation, staff.id)
    # The console shows who took it from the same transcript line its own "Take it" writes.
    service.add_transcript(session, conversation.customer_id, "note", "", kind="claim",
                           author=f"telegram:{staff.first_name}"[:64], conversation_id=conversation.id)
    desk.say(session, conversation, desk.t("handoff.staff.claimed", name=esc(staff.first_name)))


async def claim_command(message: Message, session: AsyncSession, handoff_desk: StaffDesk) -> None:
    conversation = await _topic_conversation(message, session)
    if conversation is not None and message.from_user is not None:
        _claim(session, handoff_desk, conversation, message.from_user)


async def card_button(
    query: CallbackQuery,
    callback_data: HandoffCallback,
    session: AsyncSession,
    bot: Bot,
    handoff_desk: StaffDesk,
    settings: Settings,
) -> None:
    conversation = await session.get(Conversation, callback_data.conversation_id)
    chat_id = query.message.chat.id if query.message is not None else None
    if conversation is None or conversation.staff_chat_id != chat_id:
        await query.answer(_("button.stale"), show_alert=True)
        return
    await query.answer()
    if callback_data.action == "claim":
        _claim(session, handoff_desk, conversation, query.from_user)
    else:
        await _close(session, bot, handoff_desk, settings, conversation, query.from_user)


async def staff_only(query: CallbackQuery) -> None:
    """A card button pressed by someone who is not staff (or no longer is)."""
    await query.answer(_("handoff.staff_only"), show_alert=True)


async def canned_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    bot: Bot,
    handoff_desk: StaffDesk,
    settings: Settings,
) -> None:
    conversation = await _topic_conversation(message, session)
    if conversation is None or conversation.id is None:
        return
    name = (command.args or "").strip().lower()
    if name not in settings.handoff_canned:
        names = ", ".join(sorted(settings.handoff_canned))
        handoff_desk.say(
            session, conversation, handoff_desk.t("handoff.staff.canned_unknown", names=esc(names))
        )
        return
    customer = await _customer(session, conversation)
    if conversation.status != "open" or customer is None:
        handoff_desk.say_closed(session, conversation, handoff_desk.t("handoff.staff.not_open"))
        return
    locale = service.customer_locale(customer, settings)
    text = settings.handoff_canned[name].get(locale) or get_translator(
        settings.locales_dir, settings.default_locale)(locale, f"handoff.canned.{name}")
    try:
        await bot.send_message(customer.telegram_id, esc(text))
    except TelegramForbiddenError:
        handoff_desk.say(session, conversation, handoff_desk.t("handoff.staff.blocked"))
        return
    except BusinessChatClosed as closed:
        handoff_desk.say(session, conversation, handoff_desk.t(f"business.staff.{closed.reason.value}"))
        return
    service.add_transcript(
        session,
        customer.id or 0,
        "staff",
        text,
        author=message.from_user.first_name if message.from_user else "",
        conversation_id=conversation.id,
    )
    service.record_staff_reply(session, conversation)


async def order_command(
    message: Message, command: CommandObject, session: AsyncSession, handoff_desk: StaffDesk
) -> None:
    conversation = await _topic_conversation(message, session)
    if conversation is None:
        return
    number = (command.args or "").strip().lstrip("#")
    if not number:
        handoff_desk.say(session, conversation, handoff_desk.t("handoff.staff.order_usage"))
        return
    order = (await session.exec(select(Order).where(Order.number == number))).first()
    if order is None:
        handoff_desk.say(
            session, conversation, handoff_desk.t("handoff.staff.order_missing", number=esc(number))
        )
        return
    items = (await session.exec(select(OrderItem).where(OrderItem.order_id == order.id))).all()
    staff = handoff_desk.staff_locale
    lines = ", ".join(
        f"{item.quantity}× {item.name.get(staff) or next(iter(item.name.values()), item.sku)}"
        for item in items
    )
    handoff_desk.say(session, conversation,
        handoff_desk.t(
            "handoff.staff.order",
            number=esc(order.number),
            status=esc(handoff_desk.t(f"orders.status.{order.status}")),
            total=money(order.total_minor, order.currency, staff),
            items=esc(lines or "—"),
            tracking=esc(order.tracking_number or "—"),
        ),
    )


async def ticket_command(
    message: Message, command: CommandObject, session: AsyncSession, handoff_desk: StaffDesk,
    settings: Settings,
) -> None:
    """`/ticket [kind] [details]`: the conversation becomes an after-sales ticket; without details
    the customer's own recent words are the ticket's details."""
    conversation = await _topic_conversation(message, session)
    if conversation is None or message.from_user is None:
        return
    words = (command.args or "").split(maxsplit=1)
    kind = words[0].lower() if words and words[0].lower() in KINDS else "complaint"
    details = (words[1] if len(words) > 1 else "") if words and words[0].lower() in KINDS else (
        command.args or "")
    if not details.strip():
        recent = await session.exec(
            select(TranscriptMessage.text)
            .where(TranscriptMessage.conversation_id == conversation.id,
                   TranscriptMessage.direction == "in", TranscriptMessage.text != "")
            .order_by(col(TranscriptMessage.id).desc()).limit(5)
        )
        details = "\n".join(reversed(list(recent.all())))
    ticket = await create_ticket_from_conversation(
        session, settings, conversation.customer_id, kind, details or "—",
        staff=str(message.from_user.id),
    )
    handoff_desk.say(
        session, conversation, handoff_desk.t("handoff.staff.ticket_created", number=esc(ticket.number))
    )


# ------------------------------------------------------------------ router


def create_router() -> Router:
    router = Router(name="handoff")
    # Router-level chat filters: one check skips the other side's handlers.
    customers, staff = Router(name="handoff.customers"), Router(name="handoff.staff")
    customers.message.filter(F.chat.type == "private")
    customers.callback_query.filter(F.message.chat.type == "private")
    staff.message.filter(F.chat.type == "supergroup")
    staff.callback_query.filter(F.message.chat.type == "supergroup")
    # Customer side: the rating first, then everything during a handoff, then the ways in.
    customers.callback_query.register(
        csat_rated, HandoffCallback.filter(F.action == "csat"), flags={"event": "handoff.csat_given"}
    )
    customers.message.register(relay_to_staff, in_handoff)
    customers.callback_query.register(busy_button, in_handoff)
    customers.callback_query.register(human_button, MenuCallback.filter(F.action.in_(HUMAN_BUTTONS)))
    customers.message.register(human_command, Command("human"))
    customers.message.register(distress, F.text, distressed)
    # Staff side: only members of the staff group, only inside a customer's topic.
    staff.callback_query.register(
        card_button, HandoffCallback.filter(F.action.in_({"claim", "close"})), from_staff
    )
    staff.callback_query.register(staff_only, HandoffCallback.filter(F.action.in_({"claim", "close"})))
    staff.message.register(close_command, Command("close"), from_staff)
    staff.message.register(claim_command, Command("claim"), from_staff)
    staff.message.register(canned_command, Command("t"), from_staff)
    staff.message.register(order_command, Command("order"), from_staff)
    staff.message.register(ticket_command, Command("ticket"), from_staff)
    staff.message.register(staff_message, from_staff)
    router.include_routers(customers, staff)
    return router
