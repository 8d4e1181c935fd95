"""Tickets in the core: policy facts from the DB, numbering, SLA, lifecycle, notifications, CSAT."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.aftersales_factories import make_catalogue, make_linked_customer, make_order
from tests.factories import quiet_hours_elsewhere
from touchpoint.aftersales import service
from touchpoint.aftersales.models import Ticket, TicketEvent
from touchpoint.clock import utcnow
from touchpoint.config import load_settings
from touchpoint.customers.models import BehaviourEvent
from touchpoint.db import Database
from touchpoint.handoff.models import Conversation
from touchpoint.i18n import get_translator
from touchpoint.messaging import render
from touchpoint.messaging.models import OutboxMessage
from touchpoint.wiring import load_all_templates

settings = load_settings(_env_file=None, **quiet_hours_elsewhere())


async def items_of(session: AsyncSession, order_id: int) -> list[int]:
    return [i.id or 0 for i in await service.order_items(session, order_id)]


async def test_policy_uses_catalogue_claims_and_stock(db: Database) -> None:
    async with db.session() as session:
        await make_catalogue(session)
        customer = await make_linked_customer(session, 1)
        order = await make_order(session, customer, "A-1", skus=("ESP-1", "PC-1", "GRD-1"))
        esp, pc, grd = await items_of(session, order.id or 0)
        assert (await service.check_policy(session, settings, order, [esp], "return")).allowed
        refused = await service.check_policy(session, settings, order, [pc], "return")
        assert refused.reason == "non_returnable"
        no_stock = await service.check_policy(session, settings, order, [grd], "exchange")
        assert no_stock.reason == "out_of_stock"
        await service.create_ticket(session, settings, customer, service.NewTicket(
            kind="return", order_id=order.id, items=({"order_item_id": esp, "sku": "ESP-1", "quantity": 1},),
        ))
        again = await service.check_policy(session, settings, order, [esp], "return")
        assert again.reason == "already_returned"
        assert await service.customer_orders(session, customer) == [order]


async def test_numbering_sla_and_overdue(db: Database) -> None:
    async with db.session() as session:
        customer = await make_linked_customer(session, 2)
        first = await service.create_ticket(session, settings, customer, service.NewTicket(kind="complaint"))
        second = await service.create_ticket(session, settings, customer, service.NewTicket(kind="other"))
        assert first.number == f"R-{first.id:06d}" and second.number == f"R-{second.id:06d}"
        assert first.first_response_due_at == first.created_at + timedelta(hours=24)
        assert not service.is_overdue(first)
        assert service.is_overdue(first, utcnow() + timedelta(hours=25))
        assert await service.has_open_service_case(session, customer.id or 0)
    with time_machine.travel(utcnow() + timedelta(hours=25)):
        async with db.session() as session:
            overdue = await service.list_tickets(session, overdue=True)
            assert {t.number for t in overdue} == {first.number, second.number}


async def test_lifecycle_notifies_customer_and_closes_with_csat(db: Database) -> None:
    load_all_templates()
    async with db.session() as session:
        customer = await make_linked_customer(session, 3, locale="ru")
        ticket = await service.create_ticket(session, settings, customer, service.NewTicket(kind="return"))
        with pytest.raises(service.TicketError, match="bad_transition"):
            await service.set_status(session, settings, ticket, "refunded", staff="7")
        with pytest.raises(service.TicketError, match="reason_required"):
            await service.set_status(session, settings, ticket, "rejected", staff="7")
        for status in ("in_review", "approved", "item_received", "refunded", "closed"):
            await service.set_status(session, settings, ticket, status, staff="7")
        assert ticket.first_response_at is not None and ticket.closed_at is not None
        assert not await service.has_open_service_case(session, customer.id or 0)
        rows = (await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all()  # type: ignore[arg-type]
    assert [r.template for r in rows] == ["aftersales.status"] * 5 + ["aftersales.csat"]
    assert {r.lane for r in rows} == {"transactional"} and {r.status for r in rows} == {"pending"}
    t = get_translator()
    approved = render(t, "ru", rows[1].template, rows[1].params)
    assert t("ru", "aftersales.status.approved") in approved.text
    assert t("ru", "aftersales.notify.instructions", number=ticket.number) in approved.text
    csat = render(t, "ru", rows[-1].template, rows[-1].params)
    assert [b.callback_data for b in csat.buttons[0]] == [f"as:rate:{ticket.id}:{n}" for n in range(1, 6)]


async def test_low_rating_reopens_a_conversation(db: Database) -> None:
    async with db.session() as session:
        customer = await make_linked_customer(session, 4)
        ticket = await service.create_ticket(session, settings, customer, service.NewTicket(kind="complaint"))
        with pytest.raises(service.TicketError):
            await service.rate_ticket(session, customer, ticket.id or 0, 5)  # not closed yet
        await service.set_status(session, settings, ticket, "closed", staff="7")
        # Without a staff group nobody can take the chat: nothing is opened.
        _, reopened = await service.rate_ticket(session, customer, ticket.id or 0, 2, settings=settings)
        assert not reopened and (await session.exec(select(Conversation))).first() is None
        staffed = settings.model_copy(update={"staff_chat_id": -100555})
        _, reopened = await service.rate_ticket(session, customer, ticket.id or 0, 2, settings=staffed)
        await service.comment_rating(session, customer, ticket.id or 0, "slow")
        assert reopened
        # A real handoff: in the staff group (the desk opens its topic and card), escalation recorded.
        conversation = (await session.exec(select(Conversation))).one()
        assert conversation.reason == "low_csat" and conversation.status == "open"
        assert conversation.staff_chat_id == -100555 and conversation.topic_id is None
        report = await service.csat_report(session)
        assert report.rated == 1 and report.by_score == {2: 1} and report.closed == 1
        stored = await session.get(Ticket, ticket.id)
        assert stored is not None and stored.csat == 2 and stored.csat_comment == "slow"
        events = (await session.exec(select(BehaviourEvent.type))).all()
        assert "aftersales.rated" in events and "aftersales.status_changed" in events
        assert "handoff.escalated" in events


async def test_ticket_from_conversation_and_messages(db: Database) -> None:
    async with db.session() as session:
        customer = await make_linked_customer(session, 5)
        ticket = await service.create_ticket_from_conversation(
            session, settings, customer.id or 0, "complaint", "late courier", staff="42"
        )
        assert ticket.first_response_at is not None
        await service.add_message(session, ticket, author="customer", text="photo", photos=["f1"])
        await service.add_message(session, ticket, author="staff:42", text="On it", settings=settings)
        history = await service.ticket_history(session, ticket.id or 0)
        assert [(e.kind, e.author) for e in history] == [
            ("status", "staff:42"), ("message", "customer"), ("message", "staff:42")
        ]
        assert ticket.photos == ["f1"]
        templates = (await session.exec(select(OutboxMessage.template))).all()
        assert templates == ["aftersales.status", "aftersales.staff_message"]
        assert (await session.exec(select(TicketEvent))).all()
