"""Customers in the console: found by what staff know (store name, phone, e-mail, order number), two
people with the same first name told apart, and a timeline filtered by kind, in readable lines."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.aftersales_factories import make_catalogue, make_linked_customer, make_order
from tests.console_helpers import log_in, make_staff
from touchpoint.clock import utcnow
from touchpoint.config import load_settings
from touchpoint.console import create_console_app
from touchpoint.customers.models import BehaviourEvent, StoreCustomer
from touchpoint.db import Database
from touchpoint.messaging.models import OutboxMessage

settings = load_settings(_env_file=None)


@pytest.fixture
async def client(db: Database) -> AsyncIterator[TestClient]:
    await make_staff(db, "alice", "manager")
    async with TestClient(TestServer(create_console_app(settings, db))) as test_client:
        yield test_client


async def test_search_by_store_name_phone_email_and_order_number(client: TestClient, db: Database) -> None:
    async with db.session() as session:
        await make_catalogue(session)
        anna = await make_linked_customer(session, 801, first_name="Anna")
        other = await make_linked_customer(session, 802, first_name="Anna")
        for customer, name, email, phone in ((anna, "Anna Petrova", "anna.p@example.org", "+4930555"),
                                             (other, "Anna Schmidt", "schmidt@example.org", "+4930777")):
            record = await session.get(StoreCustomer, customer.store_customer_id)
            assert record is not None
            record.name, record.email, record.phone = name, email, phone
            session.add(record)
        await make_order(session, anna, "A-5001")
        session.add(BehaviourEvent(customer_id=anna.id, type="reservation.created",
                                   payload={"via": "button", "reservation_id": 1}, occurred_at=utcnow()))
    await log_in(client)

    async def found(q: str) -> str:
        return await (await client.get("/customers", params={"q": q})).text()

    for q in ("petrova", "anna.p@example", "4930555", "A-5001"):
        page = await found(q)
        assert f"/customers/{anna.id}" in page and f"/customers/{other.id}" not in page, q
    both = await found("anna")  # two Annas, told apart by their store accounts
    assert "Anna Petrova" in both and "Anna Schmidt" in both
    timeline = await (await client.get(f"/customers/{anna.id}")).text()
    assert "Reserved in a store" in timeline and "via=" not in timeline and "reservation_id" not in timeline
    orders_only = await (await client.get(f"/customers/{anna.id}?kind=order")).text()
    assert "A-5001" in orders_only and "Reserved in a store" not in orders_only


async def test_why_a_message_waited_or_was_skipped_reads_as_words(client: TestClient, db: Database) -> None:
    async with db.session() as session:
        anna = await make_linked_customer(session, 803, first_name="Anna")
        for reason, status in (("business_only", "skipped"), ("quiet_hours", "pending")):
            session.add(OutboxMessage(customer_id=anna.id, chat_id=803, lane="marketing",
                                      template="journeys.nudge", params={}, status=status, reason=reason,
                                      due_at=utcnow(), created_at=utcnow()))
    await log_in(client)
    timeline = await (await client.get(f"/customers/{anna.id}")).text()
    assert "brand&#39;s Telegram account" in timeline or "brand's Telegram account" in timeline
    assert "in their quiet hours" in timeline
    assert "Business only" not in timeline and "Quiet hours" not in timeline
