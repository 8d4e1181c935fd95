"""The sandbox's own pages in a real browser: usable on a phone, labelled, with a first-screen hint,
and topic service messages shown as what happened (not as the word "true")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from playwright.async_api import expect

from tests.browser.conftest import screenshot
from touchpoint.config import SANDBOX_TOKEN
from touchpoint.sandbox import Sandbox

GROUP = -1001000000001
STAFF = 900001


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    emulator = Sandbox()
    await emulator.start()
    yield emulator
    await emulator.stop()


async def bot_call(sandbox: Sandbox, method: str, **params: Any) -> Any:
    async with aiohttp.ClientSession() as http, http.post(
        f"{sandbox.base_url}/bot{SANDBOX_TOKEN}/{method}", json=params
    ) as response:
        body = await response.json()
        assert body["ok"], body
        return body["result"]


async def test_chat_page_on_a_phone_is_labelled_and_says_what_to_do(browser: Any, sandbox: Sandbox) -> None:
    context = await browser.new_context(viewport={"width": 390, "height": 800})
    page = await context.new_page()
    try:
        await page.goto(f"{sandbox.base_url}/")
        assert await page.evaluate("document.documentElement.clientWidth") == 390  # not a 980 px layout
        await expect(page.get_by_test_id("empty-hint")).to_contain_text("add one")
        await page.get_by_label("First name").fill("Ann")
        await page.get_by_label("Language").select_option("zh")
        await page.get_by_role("button", name="Add customer").click()
        await expect(page.get_by_role("button", name="Ann (zh)")).to_be_visible()
        await expect(page.get_by_test_id("empty-hint")).to_contain_text("/start")
        await page.get_by_label("Message").fill("hello")
        await page.get_by_test_id("composer-send").click()
        await expect(page.get_by_test_id("message-text")).to_have_text("hello")
        await expect(page.get_by_test_id("empty-hint")).to_have_count(0)
        await screenshot(page, "sandbox-chat-phone")
    finally:
        await context.close()


async def test_staff_page_shows_topic_events_and_presses_as_staff(browser: Any, sandbox: Sandbox) -> None:
    sandbox.user(STAFF, "Sam")
    sandbox.create_group(GROUP, "Brewhaus staff", admins=[STAFF])
    topic = await bot_call(sandbox, "createForumTopic", chat_id=GROUP, name="Ann · #1")
    thread = topic["message_thread_id"]
    buttons = {"inline_keyboard": [[{"text": "Claim", "callback_data": "claim:1"}]]}
    card = await bot_call(sandbox, "sendMessage", chat_id=GROUP, message_thread_id=thread, text="Card",
                          reply_markup=buttons)
    context = await browser.new_context(viewport={"width": 1100, "height": 700})
    page = await context.new_page()
    try:
        await page.goto(f"{sandbox.base_url}/staff")
        await page.get_by_test_id(f"topic-{thread}").click()
        messages = page.get_by_test_id("message")
        await expect(messages.first).to_have_text("Topic created: Ann · #1")
        await expect(page.get_by_text("true", exact=True)).to_have_count(0)
        await expect(page.get_by_label("Post as")).to_have_value(str(STAFF))
        await messages.last.get_by_role("button", name="Claim").click()
        presses: list[dict[str, Any]] = []
        for _ in range(50):
            presses = [u["callback_query"] for u in sandbox.updates if "callback_query" in u]
            if presses:
                break
            await asyncio.sleep(0.1)
        assert presses and presses[-1]["from"]["id"] == STAFF
        assert presses[-1]["message"]["message_id"] == card["message_id"]
        await screenshot(page, "sandbox-staff")
    finally:
        await context.close()
