"""One definition of the journey numbers: the daily stats and the console's table agree, and
customers who blocked the bot leave both the treatment and the holdout groups."""

from __future__ import annotations

from datetime import timedelta

from tests.factories import make_customer
from touchpoint.clock import utcnow
from touchpoint.console.queries import journey_numbers
from touchpoint.db import Database
from touchpoint.journeys.models import Enrolment
from touchpoint.journeys.stats import journey_stats
from touchpoint.messaging.models import Delivery, OutboxMessage


async def test_stats_and_console_numbers_are_one_definition(db: Database) -> None:
    now = utcnow()
    async with db.session() as session:
        for n, (reachable, holdout, converted) in enumerate([
            (True, False, True), (True, False, False), (False, False, True),  # treated; one blocked us
            (True, True, True), (True, True, False), (False, True, False),  # holdout; one blocked us
        ]):
            customer = await make_customer(session, 100 + n, reachable=reachable)
            enrolment = Enrolment(journey_key="cart", customer_id=customer.id, occurrence_key=str(n),
                                  holdout=holdout, enrolled_at=now,
                                  converted_at=now if converted else None, context={})
            session.add(enrolment)
            await session.flush()
            if holdout:
                continue
            row = OutboxMessage(customer_id=customer.id, chat_id=customer.telegram_id, lane="marketing",
                                priority=3, template="journey.cart", params={}, journey_key="cart",
                                enrolment_id=enrolment.id, status="sent", due_at=now, created_at=now,
                                sent_at=now)
            session.add(row)
            await session.flush()
            session.add(Delivery(outbox_id=row.id, customer_id=customer.id, chat_id=customer.telegram_id,
                                 telegram_message_id=n, status="sent", sent_at=now,
                                 clicked_at=now if n == 0 else None))
        session.add(OutboxMessage(chat_id=1, lane="marketing", priority=3, template="t", params={},
                                  journey_key="quiet", status="skipped", reason="no_consent",
                                  due_at=now, created_at=now))

    async with db.session() as session:
        stats = {s.journey: s for s in await journey_stats(session)}
        console = await journey_numbers(session)
        recent = await journey_numbers(session, since=now + timedelta(minutes=1))
    cart, row = stats["cart"], console["cart"]
    assert (cart.enrolled, cart.held_out, cart.converted, cart.converted_holdout) == (2, 2, 1, 1)
    assert (row.enrolled - row.holdout, row.holdout, row.converted, row.holdout_converted) == (
        cart.enrolled, cart.held_out, cart.converted, cart.converted_holdout)
    assert (row.sent, row.delivered, row.clicked) == (cart.sent, cart.delivered, cart.clicked) == (3, 3, 1)
    assert row.conversion == cart.conversion_rate == 0.5
    assert row.holdout_conversion == cart.holdout_rate == 0.5
    assert row.uplift_points == round(cart.uplift, 1) == 0.0
    assert "quiet" in stats and "quiet" in console  # only skipped messages: listed by both
    assert recent == {}
