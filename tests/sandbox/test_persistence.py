"""A sandbox with a ``state_dir`` carries on after a restart: people, chats, topics, files and the
update counter come back, so a bot that recorded update ids as handled is not silenced."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from touchpoint.config import SANDBOX_TOKEN
from touchpoint.sandbox import Sandbox
from touchpoint.sandbox.files import tiny_png

GROUP = -1001000000001
STAFF = 900001


async def get(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.read()


async def bot_call(base_url: str, method: str, **params: Any) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.post(
        f"{base_url}/bot{SANDBOX_TOKEN}/{method}", json=params
    ) as response:
        body = await response.json()
        assert body["ok"], body
        return body["result"]  # type: ignore[no-any-return]


async def test_restart_restores_people_chats_topics_files_and_the_update_counter(tmp_path: Path) -> None:
    state_dir = tmp_path / "sandbox"
    first = Sandbox(state_dir=state_dir)
    assert first.restored is False
    base_url = await first.start()
    first.user(1001, "Ann", language_code="ru", username="ann")
    first.create_group(GROUP, "Staff", admins=[STAFF])
    first.send_text(1001, "/start")
    photo = tiny_png(6, 5)
    sent = first.send_photo(1001, data=photo, caption="the box")
    file_id = sent["message"]["photo"][-1]["file_id"]
    topic = await bot_call(base_url, "createForumTopic", chat_id=GROUP, name="Ann #1")
    await bot_call(base_url, "sendMessage", chat_id=GROUP, text="card",
                   message_thread_id=topic["message_thread_id"])
    await bot_call(base_url, "closeForumTopic", chat_id=GROUP, message_thread_id=topic["message_thread_id"])
    file_path = (await bot_call(base_url, "getFile", file_id=file_id))["file_path"]
    last_update = first.last_update_id
    await first.stop()
    assert (state_dir / "sandbox.json").exists()

    second = Sandbox(state_dir=state_dir)
    assert second.restored is True
    base_url = await second.start()
    try:
        assert second.users[1001].language_code == "ru" and second.users[1001].username == "ann"
        assert [m.get("text") or m.get("caption") for m in second.messages(1001)] == ["/start", "the box"]
        topics = second.topics(GROUP)
        assert topics[0]["name"] == "Ann #1" and topics[0]["is_closed"] is True
        assert [m["text"] for m in second.bot_messages(GROUP)] == ["card"]
        # The photo from before the restart is still downloadable, by the bot and by the pages.
        status, body = await get(f"{base_url}/file/bot{SANDBOX_TOKEN}/{file_path}")
        assert status == 200 and body == photo
        status, body = await get(f"{base_url}/sandbox/api/files/{file_id}")
        assert status == 200 and body == photo
        # New updates are numbered after the old ones, and new messages after the old ones.
        update = second.send_text(1001, "hello again")
        assert update["update_id"] == last_update + 1
        assert update["message"]["message_id"] == 3
        # The bot polls from scratch and gets only the new update.
        bot = Bot(SANDBOX_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base_url)))
        try:
            updates = await bot.get_updates(timeout=0)
        finally:
            await bot.session.close()
        assert [u.update_id for u in updates] == [last_update + 1]
    finally:
        await second.stop()


async def test_state_is_saved_while_serving_not_only_on_stop(tmp_path: Path) -> None:
    sandbox = Sandbox(state_dir=tmp_path)
    await sandbox.start()
    try:
        sandbox.user(1001, "Ann")
        sandbox.send_text(1001, "hi")
        sandbox.save()
        restored = Sandbox(state_dir=tmp_path)
        assert [m["text"] for m in restored.messages(1001)] == ["hi"]
    finally:
        await sandbox.stop()


def test_update_ids_never_go_back() -> None:
    sandbox = Sandbox()
    sandbox.user(1001, "Ann")
    sandbox.advance_update_id(500)
    assert sandbox.send_text(1001, "hi")["update_id"] == 501
    sandbox.advance_update_id(10)
    assert sandbox.send_text(1001, "again")["update_id"] == 502


async def test_without_a_state_dir_nothing_is_written(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    sandbox = Sandbox()
    await sandbox.start()
    sandbox.user(1001, "Ann")
    await sandbox.stop()
    assert not os.listdir(tmp_path)
