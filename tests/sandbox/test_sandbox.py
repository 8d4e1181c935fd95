"""The sandbox speaks the Bot API faithfully enough for the real aiogram client, and its fault
injection, people simulation, webhook push, control API and pages work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import web

from touchpoint.config import SANDBOX_TOKEN
from touchpoint.sandbox import Sandbox

STAFF_GROUP = -1001000000001


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    emulator = Sandbox()
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
async def bot(sandbox: Sandbox) -> AsyncIterator[Bot]:
    assert sandbox.base_url
    session = AiohttpSession(api=TelegramAPIServer.from_base(sandbox.base_url))
    client = Bot(SANDBOX_TOKEN, session=session)
    yield client
    await client.session.close()


async def call(sandbox: Sandbox, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(
        f"{sandbox.base_url}/bot{SANDBOX_TOKEN}/{method}", json=params
    ) as response:
        return response.status, await response.json()


async def test_bot_api_answers_in_telegram_shapes(sandbox: Sandbox) -> None:
    status, me = await call(sandbox, "getMe")
    assert status == 200 and me["ok"] is True
    assert me["result"]["is_bot"] is True and me["result"]["id"] == 123456789
    status, error = await call(sandbox, "sendMessage", chat_id=42, text="hi")
    assert status == 400
    assert error == {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}


async def test_html_reply_markup_edit_and_callback_answer(sandbox: Sandbox, bot: Bot) -> None:
    sandbox.user(1001, "Ann", language_code="ru")
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Yes", callback_data="yes")]]
    )
    sent = await bot.send_message(1001, "<b>Hello</b> there", parse_mode="HTML", reply_markup=keyboard)
    [stored] = sandbox.bot_messages(1001)
    assert stored["text"] == "Hello there"
    assert stored["entities"] == [{"type": "bold", "offset": 0, "length": 5}]
    assert stored["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "yes"

    update = sandbox.press_button(1001, sent.message_id, "yes")
    query_id = update["callback_query"]["id"]
    assert await bot.answer_callback_query(query_id, text="Done")
    assert sandbox.callback_answers[-1]["text"] == "Done"
    with pytest.raises(TelegramBadRequest):  # a query can be answered once
        await bot.answer_callback_query(query_id)

    await bot.edit_message_text("Edited", chat_id=1001, message_id=sent.message_id)
    [edited] = sandbox.bot_messages(1001)
    assert edited["text"] == "Edited" and edited["_edits"] == 1
    with pytest.raises(TelegramBadRequest, match="not modified"):
        await bot.edit_message_text("Edited", chat_id=1001, message_id=sent.message_id)


async def test_injected_429_and_403_reach_aiogram_as_its_exceptions(sandbox: Sandbox, bot: Bot) -> None:
    sandbox.user(1001)
    sandbox.user(1002)
    sandbox.inject_retry_after(1001, retry_after=7, times=1)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(1001, "first")
    assert caught.value.retry_after == 7
    await bot.send_message(1001, "second")  # only once
    sandbox.block(1002)
    with pytest.raises(TelegramForbiddenError, match="blocked by the user"):
        await bot.send_message(1002, "hello?")
    assert [m["text"] for m in sandbox.bot_messages(1001)] == ["second"]
    assert [r.outcome for r in sandbox.sends_to(1001)] == ["429", "ok"]
    assert sandbox.bot_messages(1002) == []


async def test_long_polling_delivers_people_updates_in_order(sandbox: Sandbox, bot: Bot) -> None:
    sandbox.user(1001, "Ann")
    waiting = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.05)
    sandbox.send_text(1001, "/start ref_ABC")
    [update] = await waiting
    assert update.message is not None and update.message.text == "/start ref_ABC"
    assert update.message.entities and update.message.entities[0].type == "bot_command"
    sandbox.share_contact(1001, "+49 30 1234567")
    updates = await bot.get_updates(offset=update.update_id + 1, timeout=1)
    assert [u.message.contact.phone_number for u in updates if u.message and u.message.contact] == [
        "+49 30 1234567"
    ]
    assert updates[0].message is not None and updates[0].message.contact is not None
    assert updates[0].message.contact.user_id == 1001  # their own contact


async def test_forum_topics_copy_message_and_staff_posts(sandbox: Sandbox, bot: Bot) -> None:
    sandbox.user(1001, "Ann")
    sandbox.create_group(STAFF_GROUP, "Staff", admins=[900001])
    topic = await bot.create_forum_topic(STAFF_GROUP, "Ann · 1001")
    customer_photo = sandbox.send_photo(1001, caption="broken")["message"]
    await bot.copy_message(
        STAFF_GROUP, 1001, customer_photo["message_id"], message_thread_id=topic.message_thread_id
    )
    [copied] = sandbox.bot_messages(STAFF_GROUP, topic.message_thread_id)
    assert copied["caption"] == "broken" and copied["photo"]
    reply = sandbox.staff_post(STAFF_GROUP, 900001, "On it!", topic.message_thread_id)["message"]
    assert reply["message_thread_id"] == topic.message_thread_id and reply["is_topic_message"]
    assert [t["name"] for t in sandbox.topics(STAFF_GROUP)] == ["Ann · 1001"]
    with pytest.raises(ValueError, match="not a member"):
        sandbox.staff_post(STAFF_GROUP, 1001, "let me in")


async def test_webhook_push_carries_the_secret_token(sandbox: Sandbox, bot: Bot) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        sandbox.user(1001)
        sandbox.send_text(1001, "hello")
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.02)
        [(secret, update)] = received
        assert secret == "s3cret" and update["message"]["text"] == "hello"
        with pytest.raises(TelegramConflictError):  # no getUpdates while a webhook is set
            await bot.get_updates()
    finally:
        await bot.delete_webhook()
        await runner.cleanup()


async def test_control_api_and_pages(sandbox: Sandbox, bot: Bot) -> None:
    base = sandbox.base_url
    async with aiohttp.ClientSession() as http:
        new_user = {"first_name": "Li", "language_code": "zh"}
        async with http.post(f"{base}/sandbox/api/users", json=new_user) as r:
            user = (await r.json())["user"]
        async with http.post(f"{base}/sandbox/api/users/{user['id']}/text", json={"text": "你好"}) as r:
            assert r.status == 200
        async with http.post(f"{base}/sandbox/api/users/{user['id']}/text", json={"text": " "}) as r:
            assert r.status == 400 and "text is required" in (await r.json())["error"]
        await bot.send_message(user["id"], "欢迎")
        async with http.get(f"{base}/sandbox/api/chats/{user['id']}/messages?since=0") as r:
            body = await r.json()
        assert [(m["_from_bot"], m["text"]) for m in body["messages"]] == [(False, "你好"), (True, "欢迎")]
        async with http.get(f"{base}/sandbox/api/chats/{user['id']}/messages?since={body['rev']}") as r:
            assert (await r.json())["messages"] == []
        for page, testid in (("/", "chat-page"), ("/staff", "staff-page")):
            async with http.get(base + page) as r:
                assert r.status == 200 and f'data-testid="{testid}"' in await r.text()
        async with http.get(f"{base}/static/sandbox.js") as r:
            assert r.status == 200
