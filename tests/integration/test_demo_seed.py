"""The demo's seeded activity: once, idempotently, and enough that every console page shows what it
is for; one delivered order stays inside its return window relative to today."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import func, select

from tests.console_helpers import log_in, make_staff
from touchpoint.aftersales.models import Ticket
from touchpoint.aftersales.service import check_policy, order_items
from touchpoint.clock import utcnow
from touchpoint.config import load_settings
from touchpoint.console import create_console_app
from touchpoint.customers.models import BehaviourEvent, Customer
from touchpoint.db import Database
from touchpoint.handoff.models import Conversation
from touchpoint.journeys.models import Enrolment
from touchpoint.messaging.models import Delivery
from touchpoint.orders.models import Order, ShipmentEvent
from touchpoint.seed.activity import RETURNABLE_ORDER, seed_demo_activity
from touchpoint.seed.demo import seed_demo

settings = load_settings(_env_file=None)
PAGES = ["/", "/tickets", "/customers", "/journeys", "/campaigns", "/staff"]


async def count(db: Database, model: type) -> int:
    async with db.session() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


@pytest.fixture
async def seeded(sqlite_db: Database) -> Database:
    await seed_demo(sqlite_db)
    await seed_demo_activity(sqlite_db, settings)
    return sqlite_db


@pytest.fixture
async def client(seeded: Database) -> AsyncIterator[TestClient]:
    await make_staff(seeded)
    async with TestClient(TestServer(create_console_app(settings, seeded))) as http:
        await log_in(http)
        yield http


async def test_seeding_twice_adds_nothing(seeded: Database) -> None:
    models = (Customer, Ticket, Conversation, Enrolment, Delivery, BehaviourEvent, Order)
    before = [await count(seeded, model) for model in models]
    assert all(before), dict(zip([m.__name__ for m in models], before, strict=True))
    again = await seed_demo_activity(seeded, settings)
    assert again == {"returnable_orders": 0}
    assert [await count(seeded, model) for model in models] == before
    async with seeded.session() as session:
        states = set((await session.exec(select(Ticket.status))).all())
        rated = (await session.exec(select(Conversation).where(Conversation.csat == 5))).one()
    assert len(states) >= 3 and rated.status == "closed"


async def test_every_console_page_shows_seeded_activity(client: TestClient) -> None:
    for path in PAGES:
        response = await client.get(path)
        page = await response.text()
        assert response.status == 200, (path, page[:500])
        assert 'class="empty"' not in page, (path, [line for line in page.splitlines() if "empty" in line])
    tickets = await (await client.get("/tickets")).text()
    assert tickets.count("R-0") >= 3  # the open ones: new, in review, approved
    dashboard = await (await client.get("/")).text()
    assert "Do you ship to Switzerland?" in dashboard or "ship to switzerland" in dashboard.lower()


async def test_a_recent_delivery_stays_inside_the_return_window(seeded: Database) -> None:
    async with seeded.session() as session:
        order = (await session.exec(select(Order).where(Order.number == RETURNABLE_ORDER))).one()
        assert order.store_customer_id == "C-1001" and order.delivered_at is not None
        items = await order_items(session, order.id or 0)
        decision = await check_policy(session, settings, order, [i.id or 0 for i in items], "return")
        assert decision.allowed, decision
        # Forty days later (everything aged) the demo moves it forward again, with its whole timeline.
        order.delivered_at -= timedelta(days=40)
        order.created_at -= timedelta(days=40)
        session.add(order)
        timeline = select(ShipmentEvent).where(ShipmentEvent.order_id == order.id)
        for event in (await session.exec(timeline)).all():
            event.occurred_at -= timedelta(days=40)
            session.add(event)
    assert await seed_demo_activity(seeded, settings) == {"returnable_orders": 1}
    async with seeded.session() as session:
        order = (await session.exec(select(Order).where(Order.number == RETURNABLE_ORDER))).one()
        events = (await session.exec(select(ShipmentEvent).where(ShipmentEvent.order_id == order.id))).all()
    assert order.delivered_at is not None
    assert timedelta(days=4) < utcnow() - order.delivered_at < timedelta(days=6)
    assert max(e.occurred_at for e in events) <= utcnow()
