"""Returns & help: the request flow (order → items → kind → reason → details → photos → confirm),
"My requests", messages on a ticket and the CSAT rating.

Where the customer is in the flow lives in the ``aftersales_drafts`` table, so a restart or another
bot process picks up the next step. Entry from an order's detail: ``AftersalesCallback(action="order",
id=<order id>)``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.handlers.common import _edit_or_send, send_to
from bot.handlers.errors import StaleState
from bot.keyboards import Keyboard, MenuCallback, main_menu
from bot.middlewares import CustomerState
from touchpoint import formatting
from touchpoint.aftersales import service, warranty
from touchpoint.aftersales.models import AftersalesDraft, Ticket
from touchpoint.aftersales.policy import KINDS, Decision
from touchpoint.catalog.models import Product
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.customers.service import record_event
from touchpoint.markup import esc
from touchpoint.orders.models import Order

Reply = tuple[str, InlineKeyboardMarkup]
OPEN_FOR_MESSAGES = ("ticket_message", "csat_comment")


class AftersalesCallback(CallbackData, prefix="as"):
    action: str
    id: int = 0
    value: str = ""


def _button(builder: Keyboard, text: str, action: str, id: int = 0, value: str = "") -> None:
    builder.button(text=text, callback_data=AftersalesCallback(action=action, id=id, value=value))


def _nav(builder: Keyboard, *, back: bool = True) -> None:
    if back:
        _button(builder, _("button.back"), "back")
    _button(builder, _("aftersales.button.cancel"), "cancel")


def _local_date(moment: datetime, customer: Customer, locale: str) -> str:
    return formatting.format_date(moment, locale, customer.timezone)


def _item_name(name: dict[str, str], locale: str) -> str:
    return esc(name.get(locale) or name.get("en") or next(iter(name.values()), "?"))


# --- rendering each step ---------------------------------------------------------------------

async def _render(session: AsyncSession, customer: Customer, draft: AftersalesDraft, locale: str) -> Reply:
    data, builder = draft.data, Keyboard()
    step = draft.step
    if step == "order":
        for order in await service.customer_orders(session, customer):
            label = _("aftersales.orders.button").format(
                number=order.number, date=_local_date(order.created_at, customer, locale)
            )
            _button(builder, label, "order", order.id or 0)
        _nav(builder, back=False)
        return _("aftersales.orders.choose"), builder.adjust(1).as_markup()
    order = await _draft_order(session, customer, draft)
    if step == "items":
        chosen = set(data.get("items", []))
        for item in await service.order_items(session, order.id or 0):
            mark = "✅ " if item.id in chosen else ""
            _button(builder, f"{mark}{_item_name(item.name, locale)}", "item", item.id or 0)
        _button(builder, _("aftersales.button.next"), "next")
        _nav(builder)
        return _("aftersales.items.choose").format(number=order.number), builder.adjust(1).as_markup()
    if step == "kind":
        for kind in KINDS:
            _button(builder, _(f"aftersales.kind.{kind}"), "kind", value=kind)
        _nav(builder)
        return _("aftersales.kind.choose"), builder.adjust(1).as_markup()
    if step == "reason":
        for reason in service.reasons_for(data.get("kind")):
            _button(builder, _(f"aftersales.reason.{reason}"), "reason", value=reason)
        _nav(builder)
        return _("aftersales.reason.choose"), builder.adjust(1).as_markup()
    if step == "details":
        _nav(builder)
        return _("aftersales.details.ask"), builder.adjust(1).as_markup()
    if step == "photos":
        _button(builder, _("aftersales.button.done"), "done")
        _nav(builder)
        text = _("aftersales.photos.ask").format(limit=_max_photos(draft))
        return text, builder.adjust(1).as_markup()
    # summary
    names = [_item_name(i.name, locale) for i in await service.order_items(session, order.id or 0)
             if i.id in data.get("items", [])]
    text = _("aftersales.summary").format(
        order=order.number, items=", ".join(names), kind=_(f"aftersales.kind.{data['kind']}"),
        reason=_(f"aftersales.reason.{data['reason']}"), details=esc(data.get("details", "")),
        photos=len(data.get("photos", [])),
    )
    _button(builder, _("aftersales.button.confirm"), "confirm")
    _nav(builder)
    return text, builder.adjust(1).as_markup()


async def _draft_order(session: AsyncSession, customer: Customer, draft: AftersalesDraft) -> Order:
    """The order the request is about — gone if the customer unlinked their shop account (or the
    order) meanwhile: then the request stops, with a word and the menu."""
    try:
        order_id = int(draft.data.get("order_id", 0))
    except (TypeError, ValueError):
        order_id = 0
    order = await service.customer_order(session, customer, order_id)
    if order is None:
        raise StaleState("aftersales.order_gone")
    return order


def _max_photos(draft: AftersalesDraft) -> int:
    return int(draft.data.get("max_photos", 5))


async def _refusal(session: AsyncSession, customer: Customer, draft: AftersalesDraft,
                   decision: Decision, locale: str) -> Reply:
    order = await _draft_order(session, customer, draft)
    names = {i.id: i.name for i in await service.order_items(session, order.id or 0)}
    item = _item_name(names.get(decision.order_item_id, {}), locale) if decision.order_item_id else ""
    date = formatting.format_date(decision.key_date, locale) if decision.key_date else ""
    lines = [_(f"aftersales.policy.{decision.reason}").format(item=item, date=date)]
    builder = Keyboard()
    if decision.alternatives:
        lines.append(_("aftersales.policy.alternatives"))
        for kind in decision.alternatives:
            _button(builder, _(f"aftersales.kind.{kind}"), "kind", value=kind)
    _nav(builder)
    return "\n\n".join(lines), builder.adjust(1).as_markup()


def _hub(*, link: bool = False) -> InlineKeyboardMarkup:
    """The returns menu; ``link``: first of all, the way to link the shop account (under My orders)."""
    builder = Keyboard()
    if link:
        builder.button(text=_("orders.button.link"), callback_data=MenuCallback(action="orders"))
    _button(builder, _("aftersales.button.new"), "new")
    _button(builder, _("aftersales.button.mine"), "list")
    _button(builder, _("aftersales.button.warranty"), "warranty")
    builder.button(text=_("button.menu"), callback_data=MenuCallback(action="root"))
    return builder.adjust(1).as_markup()


async def open_hub(message: Message) -> None:
    """Returns, exchanges and repairs, opened from a message ("I want to return the grinder")."""
    await message.answer(_("aftersales.menu.title"), reply_markup=_hub())


async def _goto(session: AsyncSession, customer: Customer, draft: AftersalesDraft, step: str) -> None:
    await service.save_draft(session, customer.id or 0, step, draft.data)
    record_event(session, "aftersales.step", customer_id=customer.id, payload={"step": step})


# --- callbacks -------------------------------------------------------------------------------

async def hub(query: CallbackQuery) -> None:
    await query.answer()
    await _edit_or_send(query, _("aftersales.menu.title"), _hub())


async def on_button(
    query: CallbackQuery, callback_data: AftersalesCallback, session: AsyncSession,
    customer: Customer, settings: Settings, locale: str,
) -> None:
    action, ident, value = callback_data.action, callback_data.id, callback_data.value
    handler = _SIDE_ACTIONS.get(action)
    if handler is not None:
        await handler(query, ident, value, session, customer, settings, locale)
        return
    draft = await service.get_draft(session, customer.id or 0)
    if action == "cancel" and draft is not None:
        await service.drop_draft(session, customer.id or 0)
        record_event(session, "aftersales.abandoned", customer_id=customer.id, payload={"step": draft.step})
        await query.answer()
        await _edit_or_send(query, _("aftersales.cancelled"), main_menu())
        return
    if action == "order":  # also the entry point from an order's detail
        if await service.customer_order(session, customer, ident) is None:
            await query.answer(_("aftersales.expired"), show_alert=True)
            return
        if draft is None or draft.step not in service.FLOW_STEPS:
            record_event(session, "aftersales.started", customer_id=customer.id, payload={"via": "order"})
        draft = await service.save_draft(session, customer.id or 0, "order",
                                         {"order_id": ident, "items": [],
                                          "max_photos": settings.ticket_max_photos})
        await _goto(session, customer, draft, "items")
    elif draft is None or draft.step not in service.FLOW_STEPS:
        await query.answer(_("aftersales.expired"), show_alert=True)
        return
    elif action == "back":
        await _goto(session, customer, draft, service.previous_step(draft.step) or "order")
    elif action == "item" and draft.step == "items":
        chosen = list(draft.data.get("items", []))
        chosen.remove(ident) if ident in chosen else chosen.append(ident)
        draft.data = {**draft.data, "items": chosen}
        await service.save_draft(session, customer.id or 0, "items", draft.data)
    elif action == "next" and draft.step == "items":
        if not draft.data.get("items"):
            await query.answer(_("aftersales.items.none_selected"), show_alert=True)
            return
        await _goto(session, customer, draft, "kind")
    elif action == "kind" and draft.step == "kind" and value in KINDS:
        order = await _draft_order(session, customer, draft)
        decision = await service.check_policy(session, settings, order, draft.data["items"], value)
        if not decision.allowed:
            record_event(session, "aftersales.refused", customer_id=customer.id,
                         payload={"kind": value, "reason": decision.reason})
            await query.answer()
            await _edit_or_send(query, *await _refusal(session, customer, draft, decision, locale))
            return
        draft.data = {**draft.data, "kind": value}
        await _goto(session, customer, draft, "reason")
    elif action == "reason" and draft.step == "reason" \
            and value in service.reasons_for(draft.data.get("kind")):
        draft.data = {**draft.data, "reason": value}
        await _goto(session, customer, draft, "details")
    elif action == "done" and draft.step == "photos":
        await _goto(session, customer, draft, "summary")
    elif action == "confirm" and draft.step == "summary":
        await _submit(query, session, customer, settings, draft, locale)
        return
    # Anything else is a stale button: show the step the customer is really at.
    await query.answer()
    await _edit_or_send(query, *await _render(session, customer, draft, locale))


async def _submit(query: CallbackQuery, session: AsyncSession, customer: Customer, settings: Settings,
                  draft: AftersalesDraft, locale: str) -> None:
    data = draft.data
    order = await _draft_order(session, customer, draft)
    items = tuple(
        {"order_item_id": i.id, "sku": i.sku, "quantity": i.quantity, "name": i.name}
        for i in await service.order_items(session, order.id or 0) if i.id in data["items"]
    )
    ticket = await service.create_ticket(session, settings, customer, service.NewTicket(
        kind=data["kind"], order_id=order.id, items=items, reason=data["reason"],
        details=data.get("details", ""), photos=tuple(data.get("photos", [])),
    ))
    await service.drop_draft(session, customer.id or 0)
    due = formatting.format_datetime(ticket.first_response_due_at or utcnow(), locale, customer.timezone)
    await query.answer()
    await _edit_or_send(query, _("aftersales.submitted").format(number=ticket.number, due=due), _hub())
    # Upset words were kept as the request's details: now that staff have the ticket, a person too.
    wait = await service.hand_over_if_upset(session, settings, customer, ticket.details)
    if wait is not None:
        await send_to(query, wait)


async def _new(query: CallbackQuery, _id: int, _value: str, session: AsyncSession, customer: Customer,
               settings: Settings, locale: str) -> None:
    draft = await service.get_draft(session, customer.id or 0)
    await query.answer()
    if draft is not None and draft.step in service.FLOW_STEPS and draft.step != "order":
        builder = Keyboard()
        _button(builder, _("aftersales.button.resume"), "resume")
        _button(builder, _("aftersales.button.restart"), "restart")
        await _edit_or_send(query, _("aftersales.resume.prompt"), builder.adjust(2).as_markup())
        return
    await _start(query, session, customer, settings, locale)


async def _start(query: CallbackQuery, session: AsyncSession, customer: Customer, settings: Settings,
                 locale: str) -> None:
    if not await service.customer_orders(session, customer):
        await _edit_or_send(query, _("aftersales.orders.none"), _hub(link=customer.store_customer_id is None))
        return
    draft = await service.save_draft(session, customer.id or 0, "order",
                                     {"max_photos": settings.ticket_max_photos})
    record_event(session, "aftersales.started", customer_id=customer.id, payload={"via": "menu"})
    await _edit_or_send(query, *await _render(session, customer, draft, locale))


async def _resume(query: CallbackQuery, _id: int, value: str, session: AsyncSession, customer: Customer,
                  settings: Settings, locale: str) -> None:
    draft = await service.get_draft(session, customer.id or 0)
    await query.answer()
    if value == "restart" or draft is None or draft.step not in service.FLOW_STEPS:
        if draft is not None:
            record_event(session, "aftersales.abandoned", customer_id=customer.id,
                         payload={"step": draft.step})
        await _start(query, session, customer, settings, locale)
        return
    await _edit_or_send(query, *await _render(session, customer, draft, locale))


async def _restart(query: CallbackQuery, ident: int, _value: str, *args: Any) -> None:
    await _resume(query, ident, "restart", *args)


# --- My requests -----------------------------------------------------------------------------

async def _list(query: CallbackQuery, _id: int, _value: str, session: AsyncSession, customer: Customer,
                settings: Settings, locale: str) -> None:
    await query.answer()
    tickets = await service.customer_tickets(session, customer.id or 0)
    builder = Keyboard()
    for ticket in tickets:
        label = _("aftersales.mine.button").format(number=ticket.number,
                                                   status=_(f"aftersales.status.{ticket.status}"))
        _button(builder, label, "ticket", ticket.id or 0)
    builder.button(text=_("button.back"), callback_data=MenuCallback(action="returns"))
    text = _("aftersales.mine.title") if tickets else _("aftersales.mine.empty")
    await _edit_or_send(query, text, builder.adjust(1).as_markup())


def _ticket_card(ticket: Ticket, customer: Customer, locale: str) -> Reply:
    lines = [_("aftersales.ticket.detail").format(
        number=ticket.number, kind=_(f"aftersales.kind.{ticket.kind}"),
        status=_(f"aftersales.status.{ticket.status}"), date=_local_date(ticket.created_at, customer, locale),
    )]
    if ticket.resolution:
        lines.append(_("aftersales.ticket.resolution").format(note=esc(ticket.resolution)))
    builder = Keyboard()
    if ticket.status not in service.CLOSED_STATUSES:
        _button(builder, _("aftersales.button.add_message"), "msg", ticket.id or 0)
    if "cancelled" in service.TRANSITIONS[ticket.status]:
        _button(builder, _("aftersales.button.withdraw"), "withdraw", ticket.id or 0)
    _button(builder, _("button.back"), "list")
    return "\n\n".join(lines), builder.adjust(1).as_markup()


async def _ticket(query: CallbackQuery, ident: int, _value: str, session: AsyncSession, customer: Customer,
                  settings: Settings, locale: str) -> None:
    ticket = await service.customer_ticket(session, customer, ident)
    if ticket is None:
        await query.answer(_("aftersales.expired"), show_alert=True)
        return
    await query.answer()
    await _edit_or_send(query, *_ticket_card(ticket, customer, locale))


async def _ask_message(query: CallbackQuery, ident: int, _value: str, session: AsyncSession,
                       customer: Customer, settings: Settings, locale: str) -> None:
    ticket = await service.customer_ticket(session, customer, ident)
    if ticket is None or ticket.status in service.CLOSED_STATUSES:
        await query.answer(_("aftersales.ticket.closed"), show_alert=True)
        return
    await service.save_draft(session, customer.id or 0, "ticket_message", {"ticket_id": ident})
    builder = Keyboard()
    _button(builder, _("aftersales.button.done"), "ticket", ident)
    await query.answer()
    await _edit_or_send(query, _("aftersales.ticket.ask_message"), builder.as_markup())


async def _withdraw(query: CallbackQuery, ident: int, _value: str, session: AsyncSession,
                    customer: Customer, settings: Settings, locale: str) -> None:
    ticket = await service.customer_ticket(session, customer, ident)
    if ticket is None:
        await query.answer(_("aftersales.expired"), show_alert=True)
        return
    try:
        await service.cancel_ticket(session, settings, customer, ticket)
    except service.TicketError:
        await query.answer(_("aftersales.expired"), show_alert=True)
        return
    await query.answer()
    await _edit_or_send(query, _("aftersales.ticket.withdrawn").format(number=ticket.number), _hub())


# --- CSAT ------------------------------------------------------------------------------------

async def _rate(query: CallbackQuery, ident: int, value: str, session: AsyncSession, customer: Customer,
                settings: Settings, locale: str) -> None:
    ticket = await service.customer_ticket(session, customer, ident)
    if ticket is not None and ticket.csat is not None:
        await query.answer(_("aftersales.csat.already"), show_alert=True)
        return
    try:
        _rated, reopened = await service.rate_ticket(session, customer, ident, int(value or 0),
                                                     settings=settings)
    except (ValueError, service.TicketError):
        await query.answer(_("aftersales.expired"), show_alert=True)
        return
    await query.answer()
    if reopened:
        await _edit_or_send(query, _("aftersales.csat.low"))
        return
    await service.save_draft(session, customer.id or 0, "csat_comment", {"ticket_id": ident})
    builder = Keyboard()
    _button(builder, _("aftersales.button.skip"), "skip")
    await _edit_or_send(query, _("aftersales.csat.thanks").format(score=value), builder.as_markup())


async def _skip(query: CallbackQuery, _id: int, _value: str, session: AsyncSession, customer: Customer,
                settings: Settings, locale: str) -> None:
    draft = await service.get_draft(session, customer.id or 0)
    if draft is not None and draft.step == "csat_comment":
        await service.drop_draft(session, customer.id or 0)
    await query.answer()
    await _edit_or_send(query, _("menu.title"), main_menu())


# --- warranty registration -------------------------------------------------------------------

def _cancel_only() -> InlineKeyboardMarkup:
    builder = Keyboard()
    _nav(builder, back=False)
    return builder.as_markup()


async def _warranty_start(query: CallbackQuery, _id: int, _value: str, session: AsyncSession,
                          customer: Customer, settings: Settings, locale: str) -> None:
    await service.save_draft(session, customer.id or 0, "w_product", {})
    record_event(session, "aftersales.warranty_started", customer_id=customer.id)
    await query.answer()
    await _edit_or_send(query, _("aftersales.warranty.ask_product"), _cancel_only())


async def _warranty_product(query: CallbackQuery, _id: int, value: str, session: AsyncSession,
                            customer: Customer, settings: Settings, locale: str) -> None:
    draft = await service.get_draft(session, customer.id or 0)
    product = await session.get(Product, value)
    await query.answer()
    if draft is None or draft.step != "w_product" or product is None:
        await _edit_or_send(query, _("aftersales.expired"), _hub())
        return
    if product.warranty_months <= 0:
        await service.drop_draft(session, customer.id or 0)
        text = _("aftersales.warranty.no_warranty").format(product=_item_name(product.name, locale))
        await _edit_or_send(query, text, _hub())
        return
    await service.save_draft(session, customer.id or 0, "w_date", {"sku": product.sku})
    await _edit_or_send(query, _("aftersales.warranty.ask_date"), _cancel_only())


async def _warranty_message(message: Message, session: AsyncSession, customer: Customer,
                            draft: AftersalesDraft, locale: str) -> None:
    step, text, data = draft.step, (message.text or "").strip(), dict(draft.data)
    if step == "w_receipt":
        if not message.photo:
            await message.answer(_("aftersales.photos.wrong_type"), reply_markup=_cancel_only())
            return
        product = await session.get(Product, data.get("sku", ""))
        if product is None:
            raise StaleState()
        registration = await warranty.register_warranty(
            session, customer, product, date.fromisoformat(data["purchased_on"]), data["serial"],
            message.photo[-1].file_id,
        )
        await service.drop_draft(session, customer.id or 0)
        ends = formatting.format_date(registration.warranty_ends_at.date(), locale)
        await message.answer(_("aftersales.warranty.registered").format(
            product=_item_name(product.name, locale), date=ends), reply_markup=_hub())
        return
    if message.text is None:
        await message.answer(_("aftersales.use_buttons") if step == "w_product" else
                             _(f"aftersales.warranty.{_PROMPTS[step]}"), reply_markup=_cancel_only())
        return
    if step == "w_product":
        products = await warranty.find_products(session, text)
        if not products:
            await message.answer(_("aftersales.warranty.not_found"), reply_markup=_cancel_only())
            return
        builder = Keyboard()
        for product in products:
            _button(builder, _item_name(product.name, locale), "wprod", value=product.sku)
        _nav(builder, back=False)
        markup = builder.adjust(1).as_markup()
        await message.answer(_("aftersales.warranty.choose_product"), reply_markup=markup)
    elif step == "w_date":
        today = utcnow().astimezone(ZoneInfo(customer.timezone)).date()
        purchased = warranty.parse_purchase_date(text, today)
        if purchased is None:
            await message.answer(_("aftersales.warranty.bad_date"), reply_markup=_cancel_only())
            return
        data["purchased_on"] = purchased.isoformat()
        await service.save_draft(session, customer.id or 0, "w_serial", data)
        await message.answer(_("aftersales.warranty.ask_serial"), reply_markup=_cancel_only())
    elif step == "w_serial":
        serial = warranty.clean_serial(text)
        if serial is None:
            await message.answer(_("aftersales.warranty.bad_serial"), reply_markup=_cancel_only())
            return
        await service.save_draft(session, customer.id or 0, "w_receipt", {**data, "serial": serial})
        await message.answer(_("aftersales.warranty.ask_receipt"), reply_markup=_cancel_only())


# What each warranty step asks for, said again when the customer sends something else.
_PROMPTS = {"w_date": "ask_date", "w_serial": "ask_serial", "w_receipt": "ask_receipt"}


_SIDE_ACTIONS: dict[str, Any] = {
    "new": _new, "resume": _resume, "restart": _restart, "list": _list, "ticket": _ticket,
    "msg": _ask_message, "withdraw": _withdraw, "rate": _rate, "skip": _skip,
    "warranty": _warranty_start, "wprod": _warranty_product,
}


# --- messages while a step waits for the customer's words or photos ----------------------------

async def in_flow(
    _message: Message, customer: Customer | None, session: AsyncSession,
    customer_state: CustomerState | None = None,
) -> bool | dict[str, Any]:
    """The customer's request in progress, handed to the handler as ``draft``; without one the
    other routers answer (the customer's state usually says so without a query)."""
    if customer is None or customer.id is None:
        return False
    if customer_state is not None and customer_state.draft_step is None:
        return False
    draft = await service.get_draft(session, customer.id)
    return {"draft": draft} if draft is not None else False


async def on_message(message: Message, session: AsyncSession, customer: Customer, settings: Settings,
                     locale: str, draft: AftersalesDraft) -> None:
    step, text = draft.step, message.text or message.caption or ""
    if step in warranty.STEPS:
        await _warranty_message(message, session, customer, draft, locale)
        return
    if step == "details":
        if message.text is None:
            await message.answer(_("aftersales.details.ask"))
        elif len(text) > service.MAX_TEXT:
            await message.answer(_("aftersales.details.too_long").format(limit=service.MAX_TEXT))
        else:
            draft.data = {**draft.data, "details": text, "photos": []}
            await _goto(session, customer, draft, "photos")
            text, markup = await _render(session, customer, draft, locale)
            await message.answer(text, reply_markup=markup)
        return
    if step == "photos":
        await _take_photo(message, session, customer, draft)
        return
    if step == "ticket_message":
        ticket = await service.customer_ticket(session, customer, int(draft.data["ticket_id"]))
        if ticket is None or ticket.status in service.CLOSED_STATUSES:
            await service.drop_draft(session, customer.id or 0)
            await message.answer(_("aftersales.ticket.closed"))
            return
        photos = [message.photo[-1].file_id] if message.photo else []
        if not photos and message.text is None:
            await message.answer(_("aftersales.photos.wrong_type"))
            return
        if len(text) > service.MAX_TEXT:
            await message.answer(_("aftersales.details.too_long").format(limit=service.MAX_TEXT))
            return
        await service.add_message(session, ticket, author="customer", text=text, photos=photos)
        builder = Keyboard()
        _button(builder, _("aftersales.button.done"), "ticket", ticket.id or 0)
        await message.answer(_("aftersales.ticket.message_added").format(number=ticket.number),
                             reply_markup=builder.as_markup())
        await _hand_over_if_upset(message, session, customer, settings, text)
        return
    if step == "csat_comment":
        if message.text is None or len(text) > service.MAX_TEXT:
            await message.answer(_("aftersales.details.too_long").format(limit=service.MAX_TEXT))
            return
        await service.comment_rating(session, customer, int(draft.data["ticket_id"]), text)
        await service.drop_draft(session, customer.id or 0)
        await message.answer(_("aftersales.csat.comment_saved"), reply_markup=main_menu())
        await _hand_over_if_upset(message, session, customer, settings, text)
        return
    # A step that waits for a button: say so and show it again, changing nothing.
    await message.answer(_("aftersales.use_buttons"))
    text, markup = await _render(session, customer, draft, locale)
    await message.answer(text, reply_markup=markup)


async def _hand_over_if_upset(message: Message, session: AsyncSession, customer: Customer,
                              settings: Settings, text: str) -> None:
    """Upset words are stored where they were typed first; then the customer gets a person."""
    wait = await service.hand_over_if_upset(session, settings, customer, text)
    if wait is not None:
        await message.answer(wait)


async def _take_photo(message: Message, session: AsyncSession, customer: Customer,
                      draft: AftersalesDraft) -> None:
    limit = _max_photos(draft)
    photos = list(draft.data.get("photos", []))
    builder = Keyboard()
    _button(builder, _("aftersales.button.done"), "done")
    _nav(builder)
    markup = builder.adjust(1).as_markup()
    if not message.photo:
        await message.answer(_("aftersales.photos.wrong_type"), reply_markup=markup)
        return
    if len(photos) >= limit:
        await message.answer(_("aftersales.photos.limit").format(limit=limit), reply_markup=markup)
        return
    photos.append(message.photo[-1].file_id)
    draft.data = {**draft.data, "photos": photos}
    await service.save_draft(session, customer.id or 0, "photos", draft.data)
    await message.answer(_("aftersales.photos.added").format(count=len(photos), limit=limit),
                         reply_markup=markup)


def _not_a_command(message: Message) -> bool:
    return not (message.text or "").startswith("/")


def create_router() -> Router:
    router = Router(name="aftersales")
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")
    router.callback_query.register(hub, MenuCallback.filter(F.action == "returns"),
                                   flags={"event": "aftersales.menu"})
    router.callback_query.register(on_button, AftersalesCallback.filter())
    router.message.register(on_message, _not_a_command, in_flow)
    return router
