"""Webhook mode against the sandbox: secret token, bad bodies, health, graceful shutdown, poison,
and the services beside it (journeys, outbox sender, events API, console)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import aiohttp
import pytest
from aiogram import F
from aiogram.types import Message
from sqlmodel import select

from tests.chat_texts import help_text
from tests.factories import make_customer
from tests.integration.test_events_api_http import order_created
from tests.production import EVENTS_SECRET, SECRET, WebhookBot, free_port, until, webhook_settings
from touchpoint.channels.models import ProcessedUpdate
from touchpoint.events_api.signing import signed_headers
from touchpoint.i18n import get_translator
from touchpoint.sandbox import Sandbox

t = get_translator()
HOOK = "/telegram/webhook"


async def say(sandbox: Sandbox, user_id: int, text: str, **wait: Any) -> dict[str, Any]:
    after = max((m["message_id"] for m in sandbox.messages(user_id)), default=0)
    sandbox.send_text(user_id, text)
    return await sandbox.wait_for_bot_message(user_id, after_message_id=after, **wait)


async def post(url: str, body: bytes, secret: str | None = SECRET) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as response:
        return response.status


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body


async def test_customer_chats_through_the_webhook(
    sandbox: tuple[Sandbox, str], webhook_bot: WebhookBot
) -> None:
    emulator, _ = sandbox
    info = emulator.webhook_info
    assert info["url"] == webhook_bot.settings.webhook_url
    assert "message" in info["allowed_updates"] and "callback_query" in info["allowed_updates"]
    emulator.user(501, first_name="Mia", language_code="ru")
    reply = await say(emulator, 501, "/start")
    assert reply["text"] == t("ru", "start.welcome", name="Mia", brand="Brewhaus")


async def test_wrong_secret_and_malformed_bodies_are_refused(
    sandbox: tuple[Sandbox, str], webhook_bot: WebhookBot
) -> None:
    url = webhook_bot.url + HOOK
    good = (b'{"update_id": 777, "message": {"message_id": 1, "date": 0,'
            b' "chat": {"id": 5, "type": "private"}}}')
    assert await post(url, good, secret="wrong") == 401
    assert await post(url, good, secret=None) == 401
    assert await post(url, b"{not json", secret=SECRET) == 400
    assert await post(url, b"[1, 2, 3]", secret=SECRET) == 400
    assert await post(url, b'{"message": "no update id"}', secret=SECRET) == 400
    # Nested past json.loads's recursion limit (RecursionError, a 500 before) or just very deep.
    assert await post(url, b"[" * 1000 + b"]" * 1000, secret=SECRET) == 400
    assert await post(url, b'{"update_id": 778, "message": ' + b"[" * 100 + b"]" * 100 + b"}",
                      secret=SECRET) == 400
    await asyncio.sleep(0.2)
    async with webhook_bot.db.session() as session:
        assert (await session.exec(select(ProcessedUpdate))).all() == []


async def test_health_and_readiness(sandbox: tuple[Sandbox, str], webhook_bot: WebhookBot) -> None:
    assert await get(webhook_bot.url + "/healthz") == (200, {"status": "ok"})
    status, body = await get(webhook_bot.url + "/readyz")
    assert status == 200
    assert body == {"ready": True, "checks": {"database": "ok", "scheduler": "ok"}}
    status, metrics = await get(webhook_bot.url + "/metrics")
    assert status == 200 and "touchpoint_updates_total" in metrics


async def test_shutdown_finishes_handlers_in_flight_and_refuses_new_updates(
    sandbox: tuple[Sandbox, str], webhook_bot: WebhookBot
) -> None:
    emulator, _ = sandbox
    assert webhook_bot.server is not None
    emulator.user(502, language_code="en")
    await say(emulator, 502, "/start")
    server = webhook_bot.server
    await until(lambda: not server.handler.in_flight)
    emulator.set_latency(0.5)  # every Bot API call is slow: /help is still being answered ...
    emulator.send_text(502, "/help")
    await until(lambda: not emulator.webhook_info["pending_update_count"] and server.handler.in_flight > 0)
    await webhook_bot.stop()  # ... when the shutdown begins
    assert [m["text"] for m in emulator.bot_messages(502)][-1] == help_text("en")
    # Updates arriving from now on are refused, so Telegram keeps them for another process.
    emulator.set_latency(0)
    emulator.send_text(502, "/language")
    await asyncio.sleep(0.3)
    assert emulator.webhook_info["pending_update_count"] == 1
    await webhook_bot.start()
    await emulator.wait_for_bot_message(502, predicate=lambda m: m["text"] == t("en", "language.choose"))


async def test_draining_process_is_not_ready(sandbox: tuple[Sandbox, str], webhook_bot: WebhookBot) -> None:
    assert webhook_bot.server is not None
    await webhook_bot.server.handler.drain(0)
    status, body = await get(webhook_bot.url + "/readyz")
    assert status == 503 and body["checks"]["webhook"] == "draining"
    assert await post(webhook_bot.url + HOOK, b'{"update_id": 1}') == 503


async def test_poison_update_is_logged_once_and_skipped(
    sandbox: tuple[Sandbox, str], webhook_bot: WebhookBot, caplog: pytest.LogCaptureFixture
) -> None:
    emulator, _ = sandbox
    assert webhook_bot.server is not None
    calls: list[int] = []

    async def poison(message: Message) -> None:
        calls.append(message.message_id)
        raise RuntimeError("this update always crashes its handler")

    webhook_bot.server.dp.message.register(poison, F.text == "/poison")
    emulator.user(503, language_code="en")
    caplog.set_level(logging.ERROR, logger="touchpoint.errors")
    update = emulator.send_text(503, "/poison")
    apology = await emulator.wait_for_bot_message(503)
    assert apology["text"].startswith(t("en", "error.apology", code="").rstrip())
    emulator.redeliver(update["update_id"])  # Telegram tries again ...
    emulator.redeliver(update["update_id"])
    await say(emulator, 503, "/help")  # ... and the bot has moved on
    assert calls == [update["message"]["message_id"]]
    failures = [r for r in caplog.records if r.name == "touchpoint.errors"]
    assert len(failures) == 1
    assert len(emulator.bot_messages(503)) == 2


async def test_webhook_mode_runs_journeys_the_events_api_and_the_console(
    sandbox: tuple[Sandbox, str], sqlite_url: str
) -> None:
    """Webhook mode starts what polling mode starts: a store event reaches the customer's chat."""
    emulator, base_url = sandbox
    # Never quiet, so the order card goes out whatever the hour the test runs at.
    settings = webhook_settings(base_url, sqlite_url, free_port(), quiet_hours_start=0, quiet_hours_end=0)
    bot = WebhookBot(settings)
    server = await bot.start()
    try:
        assert server.services.scheduler.get_job("journey_tick") is not None
        async with bot.db.session() as session:
            await make_customer(session, 7001, store_customer_id="C-7001")
        emulator.user(7001, language_code="en")
        body = json.dumps({"events": [order_created("w-1", number="BH-700001", customer="C-7001")]}).encode()
        headers = signed_headers(EVENTS_SECRET, int(time.time()), body)
        events_url = f"http://127.0.0.1:{settings.events_api_port}/api/v1/events"
        async with aiohttp.ClientSession() as client:
            async with client.post(events_url, data=body, headers=headers) as response:
                assert response.status == 200 and (await response.json())["applied"] == 1
            console_url = f"http://127.0.0.1:{settings.console_port}/login"
            async with client.get(console_url) as response:
                assert response.status == 200
        card = await emulator.wait_for_bot_message(7001, timeout=10)
        assert "BH-700001" in card["text"]
    finally:
        await bot.close()
