"""The console's switches reach the engines that own them: a paused journey enrols, steps and
sends nothing; the dashboard's CSAT counts handoff ratings as well as ticket ratings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlmodel import select

from tests.factories import make_customer
from tests.integration.test_journeys_engine import settings
from touchpoint.aftersales.models import Ticket
from touchpoint.console import queries
from touchpoint.customers.models import Customer
from touchpoint.customers.service import record_event
from touchpoint.db import Database
from touchpoint.handoff.models import Conversation
from touchpoint.journeys.campaign import queue_campaign
from touchpoint.journeys.engine import JourneyEngine
from touchpoint.journeys.models import Enrolment
from touchpoint.journeys.pause import set_paused
from touchpoint.journeys.spec import JourneysFile, load_journeys
from touchpoint.messaging.models import OutboxMessage

NOON = datetime(2026, 6, 2, 10, tzinfo=UTC)


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


def cart_engine() -> JourneyEngine:
    journeys = [j.model_copy(update={"holdout": 0})
                for j in load_journeys().journeys if j.key == "abandoned_cart"]
    return JourneyEngine(settings, JourneysFile(journeys=journeys))


async def cart_event(db: Database, engine: JourneyEngine, who: Customer, cart: str) -> None:
    async with db.session() as session:
        await engine.handle_event(session, record_event(session, "cart.updated", customer_id=who.id,
                                                        payload={"cart_id": cart, "total_minor": 5000}))


async def all_rows(db: Database, model: Any) -> list[Any]:
    async with db.session() as session:
        return list((await session.exec(select(model).order_by(model.id))).all())


async def pause(db: Database, key: str, paused: bool) -> None:
    async with db.session() as session:
        await set_paused(session, key, paused, by="Alice")


async def test_a_paused_journey_enrols_steps_and_sends_nothing_until_resumed(
    db: Database, clock: Any
) -> None:
    engine = cart_engine()
    async with db.session() as session:
        mia = await make_customer(session, 1)
        ben = await make_customer(session, 2)
    await cart_event(db, engine, mia, "c1")  # enrolled before the pause: its step is due in 1 h
    await pause(db, "abandoned_cart", True)
    await cart_event(db, engine, ben, "c2")
    assert [e.customer_id for e in await all_rows(db, Enrolment)] == [mia.id]  # ben: not enrolled
    # The tick (batch path) does not enrol either.
    assert await engine.evaluate_new_events(db) == 0
    clock.move_to(NOON + timedelta(hours=2))
    assert await engine.run_due_steps(db) == 0
    assert await all_rows(db, OutboxMessage) == []

    await pause(db, "abandoned_cart", False)
    assert await engine.run_due_steps(db) == 1  # the waiting step goes on once resumed
    [message] = await all_rows(db, OutboxMessage)
    assert (message.customer_id, message.template) == (mia.id, "journey.cart_reminder")


async def test_a_paused_campaign_queues_nothing(db: Database, clock: Any) -> None:
    async with db.session() as session:
        customer = await make_customer(session, 3)
    await pause(db, "campaign_1_sale", True)
    async with db.session() as session:
        counts = await queue_campaign(session, settings, "campaign_1_sale", "console.campaign",
                                      {"texts": {"en": "Hi"}}, [customer], at=NOON)
    assert counts["queued"] == 0 and await all_rows(db, OutboxMessage) == []
    await pause(db, "campaign_1_sale", False)
    async with db.session() as session:
        counts = await queue_campaign(session, settings, "campaign_1_sale", "console.campaign",
                                      {"texts": {"en": "Hi"}}, [customer], at=NOON)
    assert counts["queued"] == 1


async def test_csat_trend_counts_handoff_and_ticket_ratings(db: Database, clock: Any) -> None:
    async with db.session() as session:
        customer = await make_customer(session, 4)
        assert customer.id is not None
        session.add(Conversation(customer_id=customer.id, status="closed",
                                 opened_at=NOON - timedelta(hours=1), closed_at=NOON, csat=2))
        session.add(Ticket(number="R-000009", customer_id=customer.id, kind="complaint", status="closed",
                           created_at=NOON, updated_at=NOON, closed_at=NOON, csat=5))
    async with db.session() as session:
        trend = await queries.csat_trend(session, NOON - timedelta(days=3), NOON + timedelta(days=1))
    assert [(score, count) for _, score, count in trend] == [(3.5, 2)]  # (2 + 5) / 2: both kinds
