"""What operators see: Prometheus metrics on /metrics, JSON logs with ids and no personal data."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta

import aiohttp
import pytest
import structlog
from aiogram import F
from aiogram.types import Message
from sqlalchemy.exc import IntegrityError

from tests.factories import make_customer
from tests.production import WebhookBot, until
from touchpoint.clock import utcnow
from touchpoint.db import Database
from touchpoint.handoff.models import Conversation
from touchpoint.journeys.models import Enrolment
from touchpoint.messaging.models import OutboxMessage
from touchpoint.observability import configure_json_logging
from touchpoint.sandbox import Sandbox


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_json_logging(stream=stream)
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)
    structlog.reset_defaults()


async def scrape(bot: WebhookBot) -> str:
    async with aiohttp.ClientSession() as http, http.get(bot.url + "/metrics") as response:
        assert response.status == 200
        return await response.text()


def value(metrics: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", metrics, re.M)
    assert match, f"{series} not in /metrics"
    return float(match.group(1))


async def test_metrics_cover_updates_latency_outbox_journeys_and_handoff(
    sandbox: tuple[Sandbox, str], webhook_bot: WebhookBot
) -> None:
    emulator, _ = sandbox
    before = await scrape(webhook_bot)
    messages = 'touchpoint_updates_total{type="message"}'
    start_count = value(before, messages) if messages in before else 0
    emulator.user(901, language_code="en")
    emulator.send_text(901, "/start")
    await emulator.wait_for_bot_message(901)
    now = utcnow()
    async with webhook_bot.db.session() as session:
        customer = await make_customer(session, 902)
        assert customer.id is not None
        session.add(OutboxMessage(customer_id=customer.id, chat_id=902, lane="marketing", priority=3,
                                  template="x", due_at=now + timedelta(days=1), created_at=now))
        session.add(Enrolment(journey_key="cart", customer_id=customer.id, occurrence_key="1",
                              enrolled_at=now, converted_at=now, status="completed"))
        session.add(Conversation(customer_id=customer.id, opened_at=now))
    server = webhook_bot.server
    assert server is not None
    await until(lambda: not server.handler.in_flight)

    metrics = await scrape(webhook_bot)
    assert value(metrics, messages) == start_count + 1
    assert value(metrics, 'touchpoint_handler_seconds_count{type="message"}') >= 1
    assert value(metrics, 'touchpoint_telegram_requests_total{method="sendMessage",outcome="ok"}') >= 1
    assert value(metrics, 'touchpoint_outbox_depth{lane="marketing"}') == 1
    assert value(metrics, 'touchpoint_journey_enrolments{journey="cart",status="completed"}') == 1
    assert value(metrics, 'touchpoint_journey_conversions{journey="cart"}') == 1
    assert value(metrics, 'touchpoint_handoff_queue{state="waiting"}') == 1
    assert value(metrics, "touchpoint_database_up") == 1


async def test_json_logs_carry_ids_but_no_personal_data(
    sandbox: tuple[Sandbox, str], webhook_bot: WebhookBot, json_logs: io.StringIO
) -> None:
    emulator, _ = sandbox
    server = webhook_bot.server
    assert server is not None

    async def poison(message: Message) -> None:
        raise RuntimeError("boom")

    server.dp.message.register(poison, F.text.startswith("/poison"))
    emulator.user(903, first_name="Zebediah", username="zeb_the_great", language_code="en")
    update = emulator.send_text(903, "/poison call me on +4915112345678")
    await emulator.wait_for_bot_message(903)
    await until(lambda: not server.handler.in_flight)

    output = json_logs.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    failure = next(line for line in lines if line.get("logger") == "touchpoint.errors")
    assert failure["level"] == "error"
    assert failure["update_id"] == update["update_id"]
    assert isinstance(failure["customer_id"], int)
    for personal in ("Zebediah", "zeb_the_great", "4915112345678", "call me"):
        assert personal not in output


async def test_database_errors_do_not_carry_personal_data(db: Database) -> None:
    async with db.session() as session:
        await make_customer(session, 904, first_name="Zebediah", phone="+4915112345678")
    with pytest.raises(IntegrityError) as raised:
        async with db.session() as session:
            await make_customer(session, 904, first_name="Zebediah", phone="+4915112345678")
    assert "Zebediah" not in str(raised.value) and "4915112345678" not in str(raised.value)
