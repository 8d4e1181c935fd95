"""Presale: browse the catalogue, stores and stock, reserve for pickup, compare, free-text FAQ."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.handoff_desk import StaffDesk
from bot.keyboards import Keyboard, MenuCallback
from touchpoint import formatting
from touchpoint.catalog import service
from touchpoint.catalog.codes import reservation_code
from touchpoint.catalog.hours import store_status
from touchpoint.catalog.models import Product, Store
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.customers.service import record_event
from touchpoint.markup import esc
from touchpoint.messaging.staff import StaffPost

log = logging.getLogger(__name__)
COMPARE_MAX = 3
NAME_IN_BUTTON = 40
DESCRIPTION_IN_CARD = 300


class CategoryCb(CallbackData, prefix="pc"):
    id: str
    page: int = 0


class ProductCb(CallbackData, prefix="pp"):
    sku: str


class StockCb(CallbackData, prefix="ps"):
    sku: str


class ReserveCb(CallbackData, prefix="pr"):
    store: str
    sku: str


class CompareCb(CallbackData, prefix="pk"):
    action: str  # add | show | clear
    sku: str = ""


class StoresCb(CallbackData, prefix="pt"):
    pass


class AskCb(CallbackData, prefix="pq"):
    sku: str


class WatchCb(CallbackData, prefix="pw"):
    sku: str


class FaqCb(CallbackData, prefix="pf"):
    id: str


class FeedbackCb(CallbackData, prefix="pb"):
    kind: str  # f (FAQ) | p (product)
    id: str
    helpful: int


def short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def text_of(texts: dict[str, Any], locale: str, limit: int = 200) -> str:
    """Catalogue text for a message: localised, kept short, HTML-escaped."""
    return esc(short(service.localized(texts, locale), limit))


# --- browse ---

async def categories(query: CallbackQuery, session: AsyncSession, locale: str) -> None:
    await query.answer()
    builder = Keyboard()
    for category in await service.list_categories(session):
        builder.button(text=short(service.localized(category.name, locale), NAME_IN_BUTTON),
                       callback_data=CategoryCb(id=category.id))
    builder.button(text=_("presale.button.stores"), callback_data=StoresCb())
    builder.button(text=_("button.menu"), callback_data=MenuCallback(action="root"))
    builder.adjust(1)
    await show(query, _("presale.categories.title"), builder.as_markup())


async def category(
    query: CallbackQuery, callback_data: CategoryCb, session: AsyncSession, locale: str,
    customer: Customer,
) -> None:
    await query.answer()
    found = await service.get_category(session, callback_data.id)
    if found is None:
        await show(query, _("presale.not_found"), back_to_categories())
        return
    products, pages = await service.list_products(session, found.id, callback_data.page)
    page = min(max(callback_data.page, 0), pages - 1)
    track(session, customer, "presale.category_viewed", {"category": found.id, "page": page})
    builder = Keyboard()
    for product in products:
        label = f"{service.localized(product.name, locale)} · " \
                f"{service.format_price(product.price_minor, product.currency, locale)}"
        builder.button(text=short(label, 60), callback_data=ProductCb(sku=product.sku))
    nav = []
    if page > 0:
        nav.append(("◀️", CategoryCb(id=found.id, page=page - 1)))
    if page < pages - 1:
        nav.append(("▶️", CategoryCb(id=found.id, page=page + 1)))
    for text, data_ in nav:
        builder.button(text=text, callback_data=data_)
    builder.button(text=_("button.back"), callback_data=MenuCallback(action="products"))
    builder.adjust(*([1] * len(products)), *([len(nav)] if nav else []), 1)
    title = _("presale.category.title").format(
        name=text_of(found.name, locale), page=page + 1, pages=pages
    )
    await show(query, title, builder.as_markup())


def product_card_text(product: Product, locale: str, stock: list[service.StoreStock]) -> str:
    lines = [
        f"<b>{text_of(product.name, locale)}</b>",
        service.format_price(product.price_minor, product.currency, locale),
        "",
        esc(short(service.localized(product.description, locale), DESCRIPTION_IN_CARD)),
    ]
    specs = product.specs.get(locale) or product.specs.get("en") or {}
    if specs:
        lines.append("")
        lines += [f"• {esc(short(str(key), 60))}: {esc(short(str(value), 100))}"
                  for key, value in list(specs.items())[:6]]
    in_stores = sum(1 for s in stock if s.available > 0)
    where = _("presale.card.in_stores", "presale.card.in_stores.plural", in_stores).format(count=in_stores)
    lines += ["", where if in_stores else _("presale.card.no_stores")]
    return "\n".join(lines)


def product_card_markup(product: Product, in_stock: bool = True) -> InlineKeyboardMarkup:
    builder = Keyboard()
    if in_stock:
        builder.button(text=_("presale.button.stock"), callback_data=StockCb(sku=product.sku))
    else:  # the back-in-stock journey messages everyone who tapped this
        builder.button(text=_("presale.button.watch"), callback_data=WatchCb(sku=product.sku))
    builder.button(text=_("presale.button.compare_add"),
                   callback_data=CompareCb(action="add", sku=product.sku))
    builder.button(text=_("presale.button.ask"), callback_data=AskCb(sku=product.sku))
    builder.button(text=_("button.back"), callback_data=CategoryCb(id=product.category_id))
    builder.adjust(1, 1, 1, 1)
    return builder.as_markup()


async def product(
    query: CallbackQuery, callback_data: ProductCb, session: AsyncSession, locale: str,
    customer: Customer,
) -> None:
    await query.answer()
    found = await service.get_product(session, callback_data.sku)
    if found is None:
        await show(query, _("presale.not_found"), back_to_categories())
        return
    # The store's own product views have the same type: journeys (browse abandonment) count both.
    track(session, customer, "product.viewed", {"sku": found.sku})
    stock_ = await service.stock_by_store(session, found.sku)
    text = product_card_text(found, locale, stock_)
    in_stock = any(s.available > 0 for s in stock_)
    await show(query, text, product_card_markup(found, in_stock), photo=found.photo_url)


async def watch(
    query: CallbackQuery, callback_data: WatchCb, session: AsyncSession, customer: Customer
) -> None:
    """"Tell me when it is back": the back_in_stock journey reads these events on `stock.changed`."""
    await query.answer()
    track(session, customer, "product.watch", {"sku": callback_data.sku})
    builder = Keyboard()
    builder.button(text=_("button.back"), callback_data=ProductCb(sku=callback_data.sku))
    assert query.message is not None
    await query.message.answer(_("presale.watch.done"), reply_markup=builder.as_markup())


# --- stores and stock ---

def store_line(store: Store, locale: str) -> str:
    status = store_status(store.hours, store.timezone, utcnow())
    if status.is_open:
        assert status.closes_at is not None
        closes = formatting.format_time(status.closes_at, locale)
        state = _("presale.store.open_until").format(time=closes)
    elif status.opens_at is None:
        state = _("presale.store.closed")
    else:
        when = formatting.format_time(status.opens_at, locale)
        if status.opens_in_days == 0:
            state = _("presale.store.opens_today").format(time=when)
        elif status.opens_in_days == 1:
            state = _("presale.store.opens_tomorrow").format(time=when)
        else:
            day = formatting.format_weekday(status.opens_at.date(), locale)
            state = _("presale.store.opens_on").format(day=day, time=when)
    today = _("presale.store.today").format(hours=status.today) if status.today \
        else _("presale.store.today_closed")
    return "\n".join([
        f"<b>{text_of(store.name, locale)}</b>",
        text_of(store.address, locale),
        f"{today} · {state}",
    ])


async def stores(query: CallbackQuery, session: AsyncSession, locale: str) -> None:
    await query.answer()
    lines = [_("presale.stores.title"), ""]
    for store in await service.list_stores(session):
        lines += [store_line(store, locale), ""]
    builder = Keyboard()
    builder.button(text=_("button.back"), callback_data=MenuCallback(action="products"))
    await show(query, "\n".join(lines).strip(), builder.as_markup())


async def stock(
    query: CallbackQuery, callback_data: StockCb, session: AsyncSession, locale: str,
    customer: Customer,
) -> None:
    await query.answer()
    found = await service.get_product(session, callback_data.sku)
    if found is None:
        await show(query, _("presale.not_found"), back_to_categories())
        return
    track(session, customer, "presale.stock_checked", {"sku": found.sku})
    lines = [_("presale.stock.title").format(name=text_of(found.name, locale)), ""]
    builder = Keyboard()
    for row in await service.stock_by_store(session, found.sku):
        count = _("presale.stock.available").format(count=row.available) if row.available \
            else _("presale.stock.none")
        lines += [store_line(row.store, locale), count, ""]
        if row.available:
            name = short(service.localized(row.store.name, locale), NAME_IN_BUTTON)
            builder.button(text=_("presale.button.reserve").format(store=name),
                           callback_data=ReserveCb(store=row.store.id, sku=found.sku))
    builder.button(text=_("button.back"), callback_data=ProductCb(sku=found.sku))
    builder.adjust(1)
    await show(query, "\n".join(lines).strip(), builder.as_markup())


async def reserve(
    query: CallbackQuery, callback_data: ReserveCb, session: AsyncSession, customer: Customer,
    settings: Settings, locale: str, handoff_desk: StaffDesk,
) -> None:
    await query.answer()
    outcome = await service.reserve(session, customer.id or 0, callback_data.store, callback_data.sku,
                                    timedelta(hours=settings.reservation_hold_hours),
                                    service.ReserveLimits.from_settings(settings))
    builder = Keyboard()
    builder.button(text=_("button.back"), callback_data=ProductCb(sku=callback_data.sku))
    if outcome.reservation is None:
        await show(query, reserve_refusal(outcome), builder.as_markup())
        return
    reservation = outcome.reservation
    product_ = await service.get_product(session, reservation.sku)
    store = await session.get(Store, reservation.store_id)
    assert product_ is not None and store is not None
    until = reservation.expires_at.astimezone(ZoneInfo(customer.timezone))
    text = _("presale.reserve.done").format(
        name=text_of(product_.name, locale),
        store=text_of(store.name, locale),
        address=text_of(store.address, locale),
        until=formatting.format_datetime(until, locale),
        number=reservation_code(reservation.id or 0),
    )
    if not outcome.already:
        # The reservation_expiring journey reminds the customer 2 h before `expires_at`.
        track(session, customer, "reservation.created",
              {"reservation_id": reservation.id, "store": store.id, "sku": product_.sku,
               "expires_at": reservation.expires_at.isoformat()})
        notify_staff(handoff_desk, session, settings, reservation.id or 0, product_.sku, store.id)
    await show(query, text, builder.as_markup())


def reserve_refusal(outcome: service.ReserveOutcome) -> str:
    """Why no hold was made, in the customer's words."""
    if outcome.reason in ("too_many", "product_held", "too_often"):
        key = f"presale.reserve.{outcome.reason}"
        return _(key, f"{key}.plural", outcome.limit).format(count=outcome.limit)
    return _("presale.reserve.out_of_stock" if outcome.reason == "out_of_stock" else "presale.not_found")


def notify_staff(desk: StaffDesk, session: AsyncSession, settings: Settings, number: int, sku: str,
                 store: str) -> None:
    """A short note in the staff chat, through the staff lane (the one handoff cards use), in the
    reservation's transaction: a burst of notes waiting there is merged into one post, never a 429
    storm."""
    if settings.staff_chat_id is None:
        return
    text = desk.t("presale.staff.reservation", number=reservation_code(number), sku=esc(sku),
                  store=esc(store), hours=settings.reservation_hold_hours)
    desk.put(session, StaffPost(settings.staff_chat_id, None, [text], coalesce_key="reservations"))


# --- compare ---

async def compare_add(
    query: CallbackQuery, callback_data: CompareCb, state: FSMContext, session: AsyncSession,
    locale: str, customer: Customer,
) -> None:
    await query.answer()
    skus = [s for s in (await state.get_data()).get("compare", []) if s != callback_data.sku]
    skus = [*skus, callback_data.sku][-COMPARE_MAX:]
    await state.update_data(compare=skus)
    track(session, customer, "presale.compare_added", {"sku": callback_data.sku})
    products = await service.get_products(session, skus)
    names = ", ".join(text_of(p.name, locale) for p in products)
    builder = Keyboard()
    if len(products) >= 2:
        builder.button(text=_("presale.button.compare_show"), callback_data=CompareCb(action="show"))
    builder.button(text=_("presale.button.compare_clear"), callback_data=CompareCb(action="clear"))
    builder.button(text=_("presale.button.more_products"), callback_data=MenuCallback(action="products"))
    builder.adjust(1)
    text = _("presale.compare.added").format(count=len(products), names=names)
    if len(products) < 2:
        text += "\n" + _("presale.compare.need_two")
    assert query.message is not None
    await query.message.answer(text, reply_markup=builder.as_markup())


async def compare_show(
    query: CallbackQuery, state: FSMContext, session: AsyncSession, locale: str, customer: Customer,
) -> None:
    await query.answer()
    products = await service.get_products(session, (await state.get_data()).get("compare", []))
    builder = Keyboard()
    for index, item in enumerate(products):
        builder.button(text=f"{index + 1}. {short(service.localized(item.name, locale), NAME_IN_BUTTON)}",
                       callback_data=ProductCb(sku=item.sku))
    builder.button(text=_("presale.button.compare_clear"), callback_data=CompareCb(action="clear"))
    builder.button(text=_("button.back"), callback_data=MenuCallback(action="products"))
    builder.button(text=_("button.menu"), callback_data=MenuCallback(action="root"))
    builder.adjust(1)
    if len(products) < 2:
        await show(query, _("presale.compare.need_two"), builder.as_markup())
        return
    track(session, customer, "presale.compared", {"skus": [p.sku for p in products]})
    await show(query, compare_text(products, locale), builder.as_markup())


def compare_text(products: list[Product], locale: str) -> str:
    """One block per attribute, one short line per product: reads well on a narrow phone screen."""
    marks = ("1️⃣", "2️⃣", "3️⃣")
    lines = [_("presale.compare.title"), ""]
    lines += [f"{marks[i]} <b>{text_of(p.name, locale)}</b>" for i, p in enumerate(products)]
    rows: list[tuple[str, list[str]]] = [
        (_("presale.compare.price"),
         [service.format_price(p.price_minor, p.currency, locale) for p in products]),
        (_("presale.compare.warranty"),
         [_("presale.compare.months").format(count=p.warranty_months) if p.warranty_months else "—"
          for p in products]),
    ]
    specs = [p.specs.get(locale) or p.specs.get("en") or {} for p in products]
    keys: list[str] = []
    for spec in specs:
        keys += [k for k in spec if k not in keys]
    rows += [(key, [str(spec.get(key, "—")) for spec in specs]) for key in keys[:8]]
    for label, values in rows:
        lines += ["", f"<b>{esc(short(label, 60))}</b>"]
        lines += [f"{marks[i]} {esc(short(value, 60))}" for i, value in enumerate(values)]
    return "\n".join(lines)


async def compare_clear(query: CallbackQuery, state: FSMContext) -> None:
    await query.answer()
    await state.update_data(compare=[])
    builder = Keyboard()
    builder.button(text=_("presale.button.more_products"), callback_data=MenuCallback(action="products"))
    builder.button(text=_("button.menu"), callback_data=MenuCallback(action="root"))
    await show(query, _("presale.compare.cleared"), builder.as_markup())




async def faq_chosen(
    query: CallbackQuery, callback_data: FaqCb, session: AsyncSession, locale: str, customer: Customer,
    settings: Settings,
) -> None:
    await query.answer()
    entry = await service.get_faq(session, callback_data.id)
    if entry is None:
        await show(query, _("presale.not_found"), back_to_categories())
        return
    track(session, customer, "presale.suggestion_chosen", {"kind": "faq", "id": entry.id})
    builder = Keyboard()
    builder.button(text="👍", callback_data=FeedbackCb(kind="f", id=entry.id, helpful=1))
    builder.button(text="👎", callback_data=FeedbackCb(kind="f", id=entry.id, helpful=0))
    await show(query, f"{esc(service.faq_answer(entry, locale, settings))}\n\n{_('presale.answer.helpful')}",
               builder.as_markup())


async def feedback(
    query: CallbackQuery, callback_data: FeedbackCb, session: AsyncSession, customer: Customer
) -> None:
    kind = "faq" if callback_data.kind == "f" else "product"
    track(session, customer, "presale.feedback",
          {"kind": kind, "id": callback_data.id, "helpful": bool(callback_data.helpful)})
    await query.answer(_("presale.feedback.thanks"))
    builder = Keyboard()
    if not callback_data.helpful:
        builder.button(text=_("presale.button.human"), callback_data=MenuCallback(action="human"))
    builder.button(text=_("button.menu"), callback_data=MenuCallback(action="root"))
    builder.adjust(1)
    assert query.message is not None
    key = "presale.feedback.thanks" if callback_data.helpful else "presale.feedback.sorry"
    await query.message.answer(_(key), reply_markup=builder.as_markup())


# --- helpers ---

def track(session: AsyncSession, customer: Customer, event: str, payload: dict[str, Any]) -> None:
    record_event(session, event, customer_id=customer.id, payload={"via": "button", **payload})


def back_to_categories() -> InlineKeyboardMarkup:
    builder = Keyboard()
    builder.button(text=_("button.back"), callback_data=MenuCallback(action="products"))
    return builder.as_markup()


async def show(
    query: CallbackQuery, text: str, markup: InlineKeyboardMarkup, photo: str | None = None
) -> None:
    """Edit the message the button was on (send anew when it cannot be edited, or for a photo)."""
    message = query.message
    if photo and isinstance(message, Message):
        # Captions stop at 1024 characters: a long card keeps its first lines (name, price), whole.
        caption = text if len(text) <= 1024 else "\n".join(text.split("\n")[:2])
        await message.answer_photo(photo, caption=caption, reply_markup=markup)
        return
    if isinstance(message, Message) and message.text is not None:
        try:
            await message.edit_text(text, reply_markup=markup)
            return
        except TelegramBadRequest as exc:
            if "not modified" in exc.message:
                return
    if isinstance(message, Message):
        await message.answer(text, reply_markup=markup)


def create_router() -> Router:
    router = Router(name="presale")
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")
    cb = router.callback_query.register
    cb(categories, MenuCallback.filter(F.action == "products"), flags={"event": "presale.catalogue_opened"})
    cb(category, CategoryCb.filter())
    cb(product, ProductCb.filter())
    cb(stores, StoresCb.filter(), flags={"event": "presale.stores_viewed"})
    cb(stock, StockCb.filter())
    cb(watch, WatchCb.filter())
    cb(reserve, ReserveCb.filter())
    cb(compare_add, CompareCb.filter(F.action == "add"))
    cb(compare_show, CompareCb.filter(F.action == "show"))
    cb(compare_clear, CompareCb.filter(F.action == "clear"))
    # AskCb (a question about one product): bot.handlers.product_questions
    cb(faq_chosen, FaqCb.filter())
    cb(feedback, FeedbackCb.filter())
    return router
