"""Shared by the console's HTTP and browser tests: accounts, log-in, CSRF tokens, handoff data."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from aiohttp.test_utils import TestClient

from tests.factories import make_customer
from touchpoint.aftersales.models import Ticket
from touchpoint.clock import utcnow
from touchpoint.console.auth import add_staff
from touchpoint.customers.models import Customer
from touchpoint.db import Database
from touchpoint.handoff.models import Conversation, TranscriptMessage

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def make_staff(
    db: Database, username: str = "alice", role: str = "manager", locale: str | None = None
) -> None:
    async with db.session() as session:
        await add_staff(session, username, PASSWORD, role, username.title(), locale)


def csrf_from(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def log_in(client: TestClient, username: str = "alice", password: str = PASSWORD) -> str:
    """Log in through the form; returns the session's CSRF token."""
    page = await client.get("/login")
    response = await client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": csrf_from(await page.text()),
            "next": "/",
        },
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    return csrf_from(await (await client.get("/")).text())


async def make_handoff(
    db: Database,
    telegram_id: int,
    first_name: str = "Mia",
    text: str = "Where is my parcel?",
    locale: str = "en",
) -> tuple[Customer, Conversation]:
    async with db.session() as session:
        customer = await make_customer(session, telegram_id, first_name=first_name, locale=locale)
    conversation = await open_conversation(db, customer, text, opened_at=utcnow() - timedelta(minutes=5))
    return customer, conversation


async def open_conversation(
    db: Database, customer: Customer, text: str, *, opened_at: datetime | None = None
) -> Conversation:
    """An open handoff for ``customer`` whose transcript starts with their ``text``."""
    async with db.session() as session:
        conversation = Conversation(customer_id=customer.id, opened_at=opened_at or utcnow())
        session.add(conversation)
        await session.flush()
        session.add(TranscriptMessage(customer_id=customer.id, conversation_id=conversation.id,
                                      direction="in", text=text, created_at=utcnow()))
    return conversation


async def make_ticket(db: Database, customer: Customer, number: str = "R-000001", **fields: object) -> Ticket:
    now = utcnow()
    async with db.session() as session:
        ticket = Ticket(
            number=number,
            customer_id=customer.id,
            kind="return",
            reason="too small",
            details="The shoes are too small",
            created_at=now,
            updated_at=now,
            items=[{"sku": "SHOE-1", "name": "Trail shoe", "quantity": 1}],
            **fields,
        )
        session.add(ticket)
    return ticket
