"""The hourly housekeeping keeps bookkeeping tables small without forgetting what still counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from sqlmodel import select

from bot.scheduler import prune_bookkeeping
from tests.factories import make_customer
from touchpoint.channels.models import ProcessedUpdate
from touchpoint.db import Database
from touchpoint.events_api.models import ProcessedStoreEvent
from touchpoint.orders.models import LinkToken, LookupAttempt

NOW = datetime(2026, 6, 2, 10, tzinfo=UTC)


async def test_old_bookkeeping_goes_and_what_still_counts_stays(db: Database) -> None:
    async with db.session() as session:
        customer = await make_customer(session, 1)
        for n, age in enumerate((timedelta(days=3), timedelta(hours=5))):
            session.add(ProcessedUpdate(update_id=n, bot_id=1, received_at=NOW - age))
        for name, age in (("old", timedelta(days=31)), ("retried", timedelta(days=20))):
            session.add(ProcessedStoreEvent(id=name, type="cart.updated", received_at=NOW - age))
        for name, expired in (("spent", timedelta(days=2)), ("live", -timedelta(minutes=20))):
            session.add(LinkToken(token_hash=name, store_customer_id="S-1", expires_at=NOW - expired,
                                  created_at=NOW - expired - timedelta(minutes=30)))
        for age in (timedelta(days=2), timedelta(minutes=10)):
            session.add(LookupAttempt(customer_id=customer.id, attempted_at=NOW - age))
    with time_machine.travel(NOW, tick=False):
        assert await prune_bookkeeping(db) == 4
        assert await prune_bookkeeping(db) == 0
    async with db.session() as session:
        assert (await session.exec(select(ProcessedUpdate.update_id))).all() == [1]
        assert (await session.exec(select(ProcessedStoreEvent.id))).all() == ["retried"]
        assert (await session.exec(select(LinkToken.token_hash))).all() == ["live"]
        [attempt] = (await session.exec(select(LookupAttempt))).all()
        assert attempt.attempted_at == NOW - timedelta(minutes=10)
