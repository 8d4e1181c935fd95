"""The dashboard's numbers from what the rest of the system really writes, on both databases: content
gaps from the presale matcher's own events, and a funnel that counts only orders the customer kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.console_helpers import log_in, make_staff
from tests.factories import make_customer
from touchpoint.clock import utcnow
from touchpoint.config import load_settings
from touchpoint.console import create_console_app, queries
from touchpoint.db import Database
from touchpoint.handoff.models import Conversation
from touchpoint.journeys.models import Enrolment
from touchpoint.messaging.models import OutboxMessage
from touchpoint.orders.models import Order, OrderStatus
from touchpoint.seed.demo import seed_demo
from touchpoint.understanding.service import understand_message

PATTERN = r"^[A-Z]{2,4}-?\d{4,10}$"

settings = load_settings(_env_file=None)


@pytest.fixture
async def client(db: Database) -> AsyncIterator[TestClient]:
    await make_staff(db, "alice", "agent")
    async with TestClient(TestServer(create_console_app(settings, db))) as test_client:
        yield test_client


async def ask(db: Database, telegram_id: int, *questions: str) -> None:
    """A customer types these into the chat: the bot hands each to the presale matcher."""
    async with db.session() as session:
        customer = await make_customer(session, telegram_id)
        for text in questions:
            await understand_message(session, customer.id or 0, text, PATTERN)


async def test_content_gaps_come_from_the_matchers_own_events(client: TestClient, db: Database) -> None:
    await seed_demo(db)  # the demo FAQ: delivery questions are answered, jokes are not
    await ask(db, 801, "tell me a joke", "how long does delivry take")
    await ask(db, 802, "Tell me a joke!", "Do you buy used machines?")
    await ask(db, 803, "tell me a joke", "do u buy used machnes", "what is the weather tomorrow")

    async with db.session() as session:
        gaps = await queries.content_gaps(session, utcnow() - timedelta(days=7))
    rows = [(g.text, g.total, g.unanswered, g.suggested, g.disliked) for g in gaps]
    assert rows == [
        # Case and punctuation do not split a question; the phrasing used most names it.
        ("tell me a joke", 3, 3, 0, 0),
        # Only suggestions offered (a close race) is a gap too; a typo is the same question.
        ("Do you buy used machines?", 2, 0, 2, 0),
        ("what is the weather tomorrow", 1, 1, 0, 0),
    ]  # and the answered delivery question is not a gap

    await log_in(client)
    page = await (await client.get("/?days=7")).text()
    assert "tell me a joke: 3" in page  # the chart's text description
    assert '<tr><th scope="row">Do you buy used machines?</th><td>2</td><td>0</td><td>2</td><td>0</td></tr>' \
        in page
    assert "delivry" not in page


async def test_no_gaps_shows_the_empty_state(client: TestClient, db: Database) -> None:
    await seed_demo(db)
    await ask(db, 811, "how long does delivry take")
    await log_in(client)
    page = await (await client.get("/")).text()
    assert "Every question found an answer in this period." in page


async def test_funnel_counts_only_orders_the_customer_kept(client: TestClient, db: Database) -> None:
    now = utcnow()
    statuses = {
        "S-1": [OrderStatus.CANCELLED],  # cancelled: no purchase
        "S-2": [OrderStatus.DELIVERED, OrderStatus.REFUNDED],  # one kept: a purchase, not a repeat
        "S-3": [OrderStatus.DELIVERED, OrderStatus.PICKED_UP],  # a repeat buyer
        "S-4": [OrderStatus.RETURNED, OrderStatus.CANCELLED],  # nothing kept
    }
    async with db.session() as session:
        for index, (store_id, kept) in enumerate(statuses.items()):
            await make_customer(session, 820 + index, store_customer_id=store_id)
            for number, status in enumerate(kept):
                session.add(Order(number=f"{store_id}-{number}", store_customer_id=store_id, status=status,
                                  total_minor=4999, created_at=now, updated_at=now))
    async with db.session() as session:
        stages = dict(await queries.funnel(session, now - timedelta(days=7)))
        buyers = await queries.segment_customers(session, "buyers", now)
        never = await queries.segment_customers(session, "no_purchase", now)
    assert (stages["new"], stages["purchased"], stages["repeat"]) == (4, 2, 1)
    assert sorted(c.store_customer_id or "" for c in buyers) == ["S-2", "S-3"]
    assert sorted(c.store_customer_id or "" for c in never) == ["S-1", "S-4"]

    await log_in(client)
    page = await (await client.get("/?days=7")).text()
    assert "purchased: 2" in page and "repeat: 1" in page


async def test_revenue_is_attributed_to_the_journey_that_wrote_last_within_its_window(
    client: TestClient, db: Database
) -> None:
    """An order counts for the latest journey message before it, if it came within that journey's
    conversion window (browse abandonment: 3 days); a refunded order or one after the window does not."""
    now = utcnow()

    def sent(customer_id: int, journey: str, days_ago: float) -> OutboxMessage:
        at = now - timedelta(days=days_ago)
        return OutboxMessage(customer_id=customer_id, chat_id=1, lane="marketing", template="t",
                             journey_key=journey, status="sent", due_at=at, created_at=at, sent_at=at)

    def order(store_id: str, number: str, days_ago: float, total: int, status: str = "delivered",
              currency: str = "EUR") -> Order:
        at = now - timedelta(days=days_ago)
        return Order(number=number, store_customer_id=store_id, status=status, total_minor=total,
                     currency=currency, created_at=at, updated_at=at)

    async with db.session() as session:
        ana = await make_customer(session, 901, store_customer_id="A")
        ben = await make_customer(session, 902, store_customer_id="B")
        cy = await make_customer(session, 903, store_customer_id="C")
        session.add_all([
            sent(ana.id or 0, "abandoned_cart", 6), sent(ana.id or 0, "browse_abandonment", 2),
            order("A", "A-1", 1, 12_000),  # after both: the browse reminder wrote last
            order("A", "A-2", 5, 3_000),  # after the cart reminder only
            order("A", "A-3", 0.5, 9_900, status="refunded"),  # not kept: no revenue
            sent(ben.id or 0, "browse_abandonment", 10), order("B", "B-1", 5, 7_000),  # 5 days: too late
            sent(cy.id or 0, "win_back", 20), order("C", "C-1", 2, 4_500, currency="GBP"),  # 30-day window
        ])
    async with db.session() as session:
        revenue = await queries.journey_revenue(session, settings, now - timedelta(days=30))
    assert revenue == {"browse_abandonment": {"EUR": 12_000}, "abandoned_cart": {"EUR": 3_000},
                       "win_back": {"GBP": 4_500}}

    await log_in(client)
    page = await (await client.get("/?days=30")).text()
    assert "€120.00" in page and "€30.00" in page and "£45.00" in page
    assert "Revenue from journeys" in page


async def test_weekly_series_count_conversations_tickets_conversions_and_ratings(
    client: TestClient, db: Database
) -> None:
    now = utcnow()
    async with db.session() as session:
        customer = await make_customer(session, 910)
        cid = customer.id or 0
        for days_ago, csat in ((0.5, 5), (1, 4), (10, 2)):  # away from the weeks' edges
            at = now - timedelta(days=days_ago)
            session.add(Conversation(customer_id=cid, status="closed", opened_at=at, closed_at=at, csat=csat))
        for holdout in (False, True):  # the control group's conversion is a comparison, not a result
            session.add(Enrolment(journey_key="abandoned_cart", customer_id=cid, occurrence_key=str(holdout),
                                  holdout=holdout, status="exited", enrolled_at=now - timedelta(days=2),
                                  converted_at=now - timedelta(days=1)))
    async with db.session() as session:
        since = now - timedelta(days=14)
        weekly = await queries.weekly_counts(session, since, now)
        trend = await queries.csat_trend(session, since, now)
    assert [counts for _, counts in weekly] == [[1, 0, 0], [2, 0, 1], [0, 0, 0]]
    assert [(average, count) for _, average, count in trend] == [(2.0, 1), (4.5, 2), (None, 0)]

    await log_in(client)
    page = await (await client.get("/?days=30")).text()
    assert "4.5 (2)" in page and "conversions" in page
