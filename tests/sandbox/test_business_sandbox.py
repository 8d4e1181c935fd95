"""The sandbox's Telegram Business: connections, business chats, and Telegram's rules for a bot
writing on a business account's behalf (the 24 hours, the connection's state, no web apps)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from touchpoint.config import SANDBOX_TOKEN
from touchpoint.sandbox import Sandbox

OWNER, CUSTOMER = 4242, 1001


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    emulator = Sandbox()
    await emulator.start()
    yield emulator
    await emulator.stop()


async def call(sandbox: Sandbox, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(
        f"{sandbox.base_url}/bot{SANDBOX_TOKEN}/{method}", json=params
    ) as response:
        return response.status, await response.json()


async def test_a_bot_writes_for_the_business_only_as_telegram_allows(sandbox: Sandbox) -> None:
    connection = sandbox.connect_business(OWNER)
    sandbox.user(CUSTOMER, "Ann")
    business = {"business_connection_id": connection.id}
    cold = await call(sandbox, "sendMessage", chat_id=CUSTOMER, text="hi", **business)
    assert cold == (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})

    sandbox.business_text(connection.id, CUSTOMER, "hello?")
    status, sent = await call(sandbox, "sendMessage", chat_id=CUSTOMER, text="Hi Ann",
                              business_connection_id=connection.id)
    assert status == 200
    message = sent["result"]
    assert message["from"]["id"] == OWNER and message["sender_business_bot"]["is_bot"]
    assert message["business_connection_id"] == connection.id
    assert sandbox.messages(CUSTOMER) == []  # the customer's chat with the bot is another chat
    assert [m["text"] for m in sandbox.business_messages(connection.id, CUSTOMER)] == ["hello?", "Hi Ann"]
    echoed = [u["business_message"]["text"] for u in sandbox.updates if "business_message" in u]
    assert echoed == ["hello?", "Hi Ann"]  # Telegram tells the bot about its own message too

    web_app = {"inline_keyboard": [[{"text": "Shop", "web_app": {"url": "https://shop.example"}}]]}
    refused = await call(sandbox, "sendMessage", chat_id=CUSTOMER, text="x", reply_markup=web_app,
                         business_connection_id=connection.id)
    assert refused[1]["description"] == "Bad Request: BUTTON_TYPE_INVALID"

    sandbox.age_business_chat(connection.id, CUSTOMER, 24 * 3600)
    late = await call(sandbox, "sendMessage", chat_id=CUSTOMER, text="x", **business)
    assert late[1]["description"] == "Bad Request: BUSINESS_PEER_USAGE_MISSING"
    edited = await call(sandbox, "editMessageText", chat_id=CUSTOMER, message_id=message["message_id"],
                        text="Hi Ann!", business_connection_id=connection.id)
    assert edited[0] == 200  # an edit is not a new message

    sandbox.business_text(connection.id, CUSTOMER, "still there?")
    sandbox.disconnect_business(connection.id)
    off = await call(sandbox, "sendMessage", chat_id=CUSTOMER, text="x", **business)
    assert off[1]["description"] == "Bad Request: BUSINESS_CONNECTION_NOT_ALLOWED"
    assert sandbox.business_text(connection.id, CUSTOMER, "hello?") is None  # the bot hears nothing
    status, described = await call(sandbox, "getBusinessConnection", business_connection_id=connection.id)
    assert described["result"]["is_enabled"] is False and described["result"]["user"]["id"] == OWNER


async def test_business_chats_survive_a_restart(tmp_path: Path) -> None:
    first = Sandbox(state_dir=tmp_path)
    connection = first.connect_business(OWNER)
    first.user(CUSTOMER, "Ann")
    first.business_text(connection.id, CUSTOMER, "hello?")
    first.save()
    again = Sandbox(state_dir=tmp_path)
    assert again.business_connections[connection.id].owner_id == OWNER
    assert [m["text"] for m in again.business_messages(connection.id, CUSTOMER)] == ["hello?"]
    assert again.business_chat(connection.id, CUSTOMER).last_incoming_at is not None
