"""Contact rules: quiet hours in the customer's zone (DST included), consent, context, caps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tests.factories import make_customer
from touchpoint.aftersales.models import Ticket
from touchpoint.config import load_settings
from touchpoint.db import Database
from touchpoint.handoff.models import Conversation
from touchpoint.messaging.outbox import enqueue
from touchpoint.messaging.rules import Lane, quiet_hours_end

settings = load_settings(_env_file=None)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        (utc(2026, 6, 1, 12, 0), "Europe/Berlin", None),  # 14:00 in Berlin: fine
        (utc(2026, 6, 1, 20, 0), "Europe/Berlin", utc(2026, 6, 2, 7, 0)),  # 22:00 → 09:00 CEST
        (utc(2026, 6, 1, 2, 0), "Europe/Berlin", utc(2026, 6, 1, 7, 0)),  # 04:00 → same morning
        (utc(2026, 6, 1, 20, 0), "Asia/Shanghai", utc(2026, 6, 2, 1, 0)),  # 04:00 there → 09:00
        (utc(2026, 6, 1, 12, 0), "Asia/Shanghai", None),  # 20:00 there: still before 21:00
        # DST ends in Berlin on 25 Oct 2026: 09:00 local is 08:00 UTC the morning after.
        (utc(2026, 10, 24, 21, 0), "Europe/Berlin", utc(2026, 10, 25, 8, 0)),
        # DST starts on 29 Mar 2026: 09:00 local is 07:00 UTC.
        (utc(2026, 3, 28, 22, 0), "Europe/Berlin", utc(2026, 3, 29, 7, 0)),
    ],
)
def test_quiet_hours_end(now: datetime, zone: str, expected: datetime | None) -> None:
    assert quiet_hours_end(now, zone, 21, 9) == expected


@pytest.fixture
def evening_in_berlin() -> object:
    with time_machine.travel(utc(2026, 6, 1, 20, 30), tick=False) as traveller:  # 22:30 CEST
        yield traveller


async def test_marketing_waits_for_morning_transactional_may_not(
    db: Database, evening_in_berlin: object
) -> None:
    async with db.session() as session:
        customer = await make_customer(session, 1)
        nudge = await enqueue(session, settings, customer, "cart.reminder", lane=Lane.MARKETING)
        update = await enqueue(session, settings, customer, "order.card", lane=Lane.TRANSACTIONAL,
                               wait_for_quiet_hours=False)
        waiting = await enqueue(session, settings, customer, "order.card2", lane=Lane.TRANSACTIONAL)
    assert (nudge.status, nudge.reason, nudge.due_at) == ("pending", "quiet_hours", utc(2026, 6, 2, 7))
    assert (update.status, update.due_at) == ("pending", utc(2026, 6, 1, 20, 30))
    assert waiting.due_at == utc(2026, 6, 2, 7)


async def test_consent_stop_and_blocked(db: Database) -> None:
    with time_machine.travel(utc(2026, 6, 1, 10), tick=False):
        async with db.session() as session:
            no_consent = await make_customer(session, 1, marketing_consent=False)
            stopped = await make_customer(session, 2, nudges_paused=True)
            blocked = await make_customer(session, 3, reachable=False)
            results = [
                await enqueue(session, settings, no_consent, "m", lane=Lane.MARKETING),
                await enqueue(session, settings, no_consent, "s", lane=Lane.SERVICE),
                await enqueue(session, settings, stopped, "m", lane=Lane.MARKETING),
                await enqueue(session, settings, stopped, "t", lane=Lane.TRANSACTIONAL),
                await enqueue(session, settings, blocked, "t", lane=Lane.TRANSACTIONAL),
            ]
    assert [(r.status, r.reason) for r in results] == [
        ("skipped", "no_consent"), ("pending", None), ("skipped", "opted_out"),
        ("pending", None), ("skipped", "unreachable"),
    ]


async def test_no_marketing_during_open_complaint_or_handoff(db: Database) -> None:
    with time_machine.travel(utc(2026, 6, 1, 10), tick=False) as clock:
        async with db.session() as session:
            complaining = await make_customer(session, 1)
            waiting_for_staff = await make_customer(session, 2)
            now = utc(2026, 6, 1, 10)
            session.add(Ticket(number="R-000001", customer_id=complaining.id, kind="complaint",
                               created_at=now, updated_at=now))
            session.add(Conversation(customer_id=waiting_for_staff.id, opened_at=now))
            await session.flush()
            first = await enqueue(session, settings, complaining, "m", lane=Lane.MARKETING)
            second = await enqueue(session, settings, waiting_for_staff, "m", lane=Lane.MARKETING)
            service = await enqueue(session, settings, complaining, "s", lane=Lane.SERVICE)
        assert (first.reason, second.reason) == ("open_service_case", "active_handoff")
        assert service.status == "pending"
        clock.shift(timedelta(days=1))
        async with db.session() as session:
            ticket = (await session.exec(Ticket.__table__.select())).first()  # type: ignore[attr-defined]
            assert ticket is not None
            await session.exec(Ticket.__table__.update().values(status="closed"))  # type: ignore[attr-defined]
            customer = await session.get(type(complaining), complaining.id)
            assert customer is not None
            again = await enqueue(session, settings, customer, "m2", lane=Lane.MARKETING)
        assert again.status == "pending"


async def test_frequency_caps_and_repeats(db: Database) -> None:
    with time_machine.travel(utc(2026, 6, 1, 10), tick=False) as clock:
        async with db.session() as session:
            customer = await make_customer(session, 1)
            first = await enqueue(session, settings, customer, "promo.a", lane=Lane.MARKETING)
            same_day = await enqueue(session, settings, customer, "promo.b", lane=Lane.MARKETING)
        assert (first.status, same_day.reason) == ("pending", "cap_marketing_day")
        week = []
        for day in range(1, 6):
            clock.shift(timedelta(days=1, minutes=1))
            async with db.session() as session:
                customer = await session.get(type(customer), customer.id)
                assert customer is not None
                week.append(await enqueue(session, settings, customer, f"promo.{day}", lane=Lane.MARKETING))
        # 3 a week: days 1 and 2 fit beside the first; then the weekly cap holds.
        assert [m.reason for m in week[:3]] == [None, None, "cap_marketing_week"]
        async with db.session() as session:
            customer = await session.get(type(customer), customer.id)
            assert customer is not None
            repeat = await enqueue(session, settings, customer, "service.tip", lane=Lane.SERVICE)
            again = await enqueue(session, settings, customer, "service.tip", lane=Lane.SERVICE)
        assert (repeat.status, again.reason) == ("pending", "repeat_template")
