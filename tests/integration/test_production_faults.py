"""Faults in webhook mode: the database goes away and comes back, SIGTERM in the middle of an
outbox drain, Telegram answering 429."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from typing import Any

import aiohttp
from sqlmodel import func, select

from tests.chat_texts import help_text
from tests.databases import postgres_database
from tests.e2e.harness import eventually
from tests.integration.test_events_api_http import order_created
from tests.production import EVENTS_SECRET, CuttableLink, WebhookBot, free_port, until, webhook_settings
from touchpoint.clock import utcnow
from touchpoint.db import Database, upgrade_database
from touchpoint.events_api.signing import signed_headers
from touchpoint.i18n import Translator, get_translator
from touchpoint.messaging import Rendered, template
from touchpoint.messaging.models import Delivery, OutboxMessage
from touchpoint.sandbox import Sandbox

t = get_translator()


@template("test.production_note")
def _note(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    return Rendered(f"note {params['n']}", ())


async def queue_notes(db: Database, chat_ids: list[int], due_in: timedelta = timedelta(0)) -> None:
    now = utcnow()
    async with db.session() as session:
        for n, chat_id in enumerate(chat_ids):
            session.add(OutboxMessage(
                chat_id=chat_id, lane="reply", priority=0, template="test.production_note",
                params={"n": n}, due_at=now + due_in, created_at=now,
            ))


async def say(sandbox: Sandbox, user_id: int, text: str) -> dict[str, Any]:
    after = max((m["message_id"] for m in sandbox.messages(user_id)), default=0)
    sandbox.send_text(user_id, text)
    return await sandbox.wait_for_bot_message(user_id, after_message_id=after, timeout=15)


async def test_database_outage_answers_having_trouble_then_recovers(sandbox: tuple[Sandbox, str]) -> None:
    emulator, base_url = sandbox
    async with postgres_database() as direct_url:
        await upgrade_database(direct_url)
        link = CuttableLink("127.0.0.1", int(re.search(r":(\d+)/", direct_url).group(1)))  # type: ignore[union-attr]
        await link.up()
        url = re.sub(r"@[^/]+/", f"@127.0.0.1:{link.port}/", direct_url)
        bot = WebhookBot(webhook_settings(base_url, url, free_port()))
        await bot.start()
        try:
            emulator.user(701, first_name="Ivan", language_code="ru")
            assert (await say(emulator, 701, "/start"))["text"] == t(
                "ru", "start.welcome", name="Ivan", brand="Brewhaus")
            await queue_notes(bot.db, [701], due_in=timedelta(seconds=0.3))  # due during the outage
            server = bot.server
            assert server is not None
            await until(lambda: not server.handler.in_flight)

            await link.down()
            assert (await say(emulator, 701, "/help"))["text"] == t("ru", "outage.having_trouble")
            assert (await say(emulator, 701, "/language"))["text"] == t("ru", "outage.having_trouble")

            await link.up()  # the database is back: no restart needed
            assert (await say(emulator, 701, "/help"))["text"] == help_text("ru")

            async def note_sent() -> bool:
                async with bot.db.session() as session:
                    return (await session.exec(select(OutboxMessage.status))).all() == ["sent"]

            await eventually(note_sent, timeout=15)
            assert [m["text"] for m in emulator.bot_messages(701)].count("note 0") == 1
        finally:
            await bot.close()
            await link.down()


STALL_TIMEOUTS = {"db_connect_timeout_s": 1.0, "db_statement_timeout_s": 1.0, "db_pool_timeout_s": 1.0}


async def test_stalled_database_answers_having_trouble_within_the_time_outs(
    sandbox: tuple[Sandbox, str]
) -> None:
    """Connections that hang rather than fail: the customer hears "having trouble" within seconds
    (the statement and connect time-outs), not a minute of silence; the store's client a 503."""
    emulator, base_url = sandbox
    async with postgres_database() as direct_url:
        await upgrade_database(direct_url)
        link = CuttableLink("127.0.0.1", int(re.search(r":(\d+)/", direct_url).group(1)))  # type: ignore[union-attr]
        await link.up()
        url = re.sub(r"@[^/]+/", f"@127.0.0.1:{link.port}/", direct_url)
        bot = WebhookBot(webhook_settings(base_url, url, free_port(), **STALL_TIMEOUTS))
        await bot.start()
        events_url = f"http://127.0.0.1:{bot.settings.events_api_port}/api/v1/events"
        try:
            emulator.user(702, first_name="Olga", language_code="ru")
            assert (await say(emulator, 702, "/start"))["text"] == t(
                "ru", "start.welcome", name="Olga", brand="Brewhaus")
            server = bot.server
            assert server is not None
            await until(lambda: not server.handler.in_flight)

            link.stall()
            started = time.monotonic()
            assert (await say(emulator, 702, "/help"))["text"] == t("ru", "outage.having_trouble")
            assert time.monotonic() - started < 8

            body = json.dumps(order_created("stall-1")).encode()
            started = time.monotonic()
            async with aiohttp.ClientSession() as http, http.post(
                events_url, data=body, headers=signed_headers(EVENTS_SECRET, int(time.time()), body),
                timeout=aiohttp.ClientTimeout(total=20),
            ) as response:
                status, answer = response.status, await response.json()
            assert (status, answer["error"]) == (503, "database_unavailable")
            assert response.headers["Retry-After"] == "5"
            assert time.monotonic() - started < 8

            link.resume()  # the database answers again: no restart needed
            assert (await say(emulator, 702, "/help"))["text"] == help_text("ru")
            async with aiohttp.ClientSession() as http, http.post(
                events_url, data=body, headers=signed_headers(EVENTS_SECRET, int(time.time()), body),
            ) as response:
                assert response.status == 200, await response.text()
        finally:
            link.resume()
            await bot.close()
            await link.down()


async def test_sigterm_mid_drain_sends_nothing_twice(sandbox: tuple[Sandbox, str], sqlite_url: str) -> None:
    emulator, base_url = sandbox
    chats = list(range(8001, 8041))
    for chat_id in chats:
        emulator.user(chat_id, language_code="en")
    settings = webhook_settings(base_url, sqlite_url, free_port(), shutdown_grace_s=0.5)
    bot = WebhookBot(settings)
    await queue_notes(bot.db, chats)
    emulator.set_latency(0.1)
    await bot.start()

    async def delivered() -> int:
        async with bot.db.session() as session:
            return int((await session.exec(select(func.count()).select_from(Delivery))).one())

    sent_before = 0

    async def some_delivered() -> bool:
        nonlocal sent_before
        sent_before = await delivered()
        return sent_before >= 3

    await eventually(some_delivered, timeout=15)
    await bot.stop()  # SIGTERM: the sender is in the middle of its batch
    async with bot.db.session() as session:
        statuses = (await session.exec(select(OutboxMessage.status))).all()
    assert "claimed" not in statuses  # rows claimed but not sent were handed back
    assert statuses.count("sent") < len(chats)  # the shutdown really interrupted the drain

    emulator.set_latency(0)
    await bot.start()  # the restarted process picks up what is left
    expected = len(chats) - statuses.count("sending")  # an unknown outcome waits for the lease reaper
    await until(lambda: sum(bool(emulator.bot_messages(c)) for c in chats) >= expected, timeout=20)
    await bot.close()
    per_chat = [len(emulator.bot_messages(chat_id)) for chat_id in chats]
    assert max(per_chat) == 1  # nobody got a note twice


async def test_telegram_429_is_counted_and_the_bot_carries_on(
    sandbox: tuple[Sandbox, str], sqlite_url: str
) -> None:
    emulator, base_url = sandbox
    bot = WebhookBot(webhook_settings(base_url, sqlite_url, free_port()))
    await bot.start()
    try:
        emulator.user(702, language_code="en")
        emulator.inject_retry_after(702, retry_after=1, times=1)
        emulator.send_text(702, "/help")  # the reply is refused with 429 ...
        apology = await emulator.wait_for_bot_message(702, timeout=10)
        assert "Sorry" in apology["text"] or apology["text"] == help_text("en")
        assert (await say(emulator, 702, "/help"))["text"] == help_text("en")  # ... and life goes on
        async with aiohttp.ClientSession() as http, http.get(bot.url + "/metrics") as response:
            metrics = await response.text()
        assert re.search(r"^touchpoint_telegram_retry_after_total [1-9]", metrics, re.M)
        assert 'touchpoint_telegram_requests_total{method="sendMessage",outcome="retry_after"}' in metrics
    finally:
        await bot.close()
