"""The context card: the first post of a conversation, so staff never ask what the bot knows."""

from __future__ import annotations

from collections import defaultdict

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.aftersales.models import Ticket
from touchpoint.aftersales.service import CLOSED_STATUSES
from touchpoint.checks import present, saved_id
from touchpoint.config import Settings
from touchpoint.customers.models import Customer, StoreCustomer
from touchpoint.formatting import format_money
from touchpoint.handoff.models import Conversation, TranscriptMessage
from touchpoint.handoff.service import customer_locale, recent_transcript
from touchpoint.i18n import get_translator
from touchpoint.journeys.models import Enrolment
from touchpoint.markup import esc
from touchpoint.orders.models import Order, OrderStatus

LINE_LIMIT = 160  # characters of each transcript line on the card
_NOT_SPENT = (OrderStatus.CANCELLED, OrderStatus.REFUNDED, OrderStatus.RETURNED)
_ARROWS = {"in": "👤", "out": "🤖", "staff": "🧑‍💼", "note": "📝"}


def money(minor: int, currency: str, locale: str = "en") -> str:
    return format_money(minor, currency, locale)


async def build_card(session: AsyncSession, conversation: Conversation, settings: Settings) -> str:
    """HTML in the staff language; every customer-supplied value escaped."""
    t = get_translator(settings.locales_dir, settings.default_locale)
    staff = settings.default_locale
    customer = present(await session.get(Customer, conversation.customer_id), "the conversation's customer")
    saved_id(customer)
    orders = await _orders(session, customer)
    lines = [
        t(staff, "handoff.card.title", reason=t(staff, f"handoff.reason.{conversation.reason}")),
        t(
            staff,
            "handoff.card.who",
            name=esc(customer.first_name or "—"),
            username=esc(f"@{customer.username}" if customer.username else "—"),
            id=customer.id,
        ),
        t(
            staff,
            "handoff.card.language",
            locale=customer_locale(customer, settings),
            timezone=esc(customer.timezone),
        ),
        t(staff, "handoff.card.linked",
          linked=await _linked(session, customer, t(staff, "handoff.card.not_linked"))),
        t(
            staff,
            "handoff.card.stage",
            stage=t(staff, f"handoff.stage.{_stage(orders)}"),
            journeys=esc(", ".join(await _journeys(session, customer.id)) or "—"),
        ),
        t(
            staff,
            "handoff.card.orders",
            count=len(orders),
            spend=_spend(orders, staff),
            recent=esc(", ".join(f"{o.number} ({t(staff, f'orders.status.{o.status}')})" for o in orders[:3])
                       or "—"),
        ),
        t(
            staff,
            "handoff.card.tickets",
            tickets=esc(", ".join(await _tickets(session, customer.id)) or "—"),
        ),
        t(
            staff,
            "handoff.card.consent",
            marketing=t(staff, "handoff.yes" if customer.marketing_consent else "handoff.no"),
            paused=t(staff, "handoff.yes" if customer.nudges_paused else "handoff.no"),
        ),
        "",
        t(staff, "handoff.card.transcript"),
    ]
    transcript = await recent_transcript(session, customer.id, settings.handoff_transcript_keep)
    lines += [_line(entry) for entry in transcript] or [t(staff, "handoff.card.no_transcript")]
    lines += ["", t(staff, "handoff.card.help")]
    return "\n".join(lines)


def _line(entry: TranscriptMessage) -> str:
    body = entry.text if entry.kind == "text" else f"[{entry.kind}] {entry.text}".strip()
    if len(body) > LINE_LIMIT:
        body = body[: LINE_LIMIT - 1] + "…"
    return f"{_ARROWS.get(entry.direction, '·')} {esc(body)}"


async def _orders(session: AsyncSession, customer: Customer) -> list[Order]:
    if not customer.store_customer_id:
        return []
    query = (
        select(Order)
        .where(Order.store_customer_id == customer.store_customer_id)
        .order_by(col(Order.created_at).desc())
    )
    return list((await session.exec(query)).all())


def _spend(orders: list[Order], locale: str) -> str:
    totals: dict[str, int] = defaultdict(int)
    for order in orders:
        if order.status not in _NOT_SPENT:
            totals[order.currency] += order.total_minor
    return ", ".join(money(minor, currency, locale) for currency, minor in sorted(totals.items())) or "0"


def _stage(orders: list[Order]) -> str:
    spent = [o for o in orders if o.status not in _NOT_SPENT]
    if not spent:
        return "prospect"
    if len(spent) > 1:
        return "repeat"
    done = (OrderStatus.DELIVERED, OrderStatus.PICKED_UP)
    return "post_purchase" if spent[0].status in done else "first_order"


async def _linked(session: AsyncSession, customer: Customer, not_linked: str) -> str:
    if not customer.store_customer_id:
        return not_linked
    record = await session.get(StoreCustomer, customer.store_customer_id)
    name = record.name if record and record.name else ""
    return esc(f"{customer.store_customer_id} {name}".strip())


async def _journeys(session: AsyncSession, customer_id: int) -> list[str]:
    query = select(Enrolment.journey_key).where(
        Enrolment.customer_id == customer_id, Enrolment.status == "active"
    )
    return sorted(set((await session.exec(query)).all()))


async def _tickets(session: AsyncSession, customer_id: int) -> list[str]:
    query = select(Ticket).where(
        Ticket.customer_id == customer_id, col(Ticket.status).not_in(CLOSED_STATUSES)
    )
    return [f"{ticket.number} {ticket.kind}/{ticket.status}" for ticket in (await session.exec(query)).all()]
