"""End-to-end harness: the real bot (aiogram + its real HTTP session) polling the sandbox."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot, Dispatcher
from pydantic import SecretStr

from bot.app import create_bot, create_dispatcher
from touchpoint.channels.flood import MemoryFloodGate
from touchpoint.config import SANDBOX_TOKEN, Settings, load_settings
from touchpoint.db import Database
from touchpoint.sandbox import Sandbox


class BotHarness:
    def __init__(self, sandbox: Sandbox, base_url: str, database_url: str, **overrides: Any) -> None:
        self.sandbox = sandbox
        self.settings: Settings = load_settings(
            _env_file=None, database_url=database_url, telegram_api_base=base_url,
            bot_token=SecretStr(SANDBOX_TOKEN), **overrides,
        )
        self.db = Database(database_url)
        self.flood_gate: MemoryFloodGate | None = None
        self.bot: Bot | None = None
        self.dp: Dispatcher | None = None
        self._polling: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        self.bot = create_bot(self.settings)
        self.dp = create_dispatcher(self.settings, self.db, flood_gate=self.flood_gate)
        self.dp.feed_update = self._counted(self.dp.feed_update)  # type: ignore[method-assign]
        self._polling = asyncio.create_task(
            self.dp.start_polling(self.bot, handle_signals=False, polling_timeout=1)
        )

    async def stop(self) -> None:
        if self.dp is not None and self._polling is not None:
            with contextlib.suppress(RuntimeError):
                await self.dp.stop_polling()
            await asyncio.wait_for(self._polling, timeout=10)
        self._polling = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def close(self) -> None:
        await self.stop()
        await self.db.dispose()

    def _counted(self, feed: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def feed_update(*args: Any, **kwargs: Any) -> Any:
            self._in_flight += 1
            self._idle.clear()
            try:
                return await feed(*args, **kwargs)
            finally:
                self._in_flight -= 1
                if not self._in_flight:
                    self._idle.set()

        return feed_update

    async def settled(self, timeout: float = 10.0) -> None:
        """Every update fed so far is handled and committed (a reply goes out before the commit)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    def last_message_id(self, chat_id: int) -> int:
        messages = self.sandbox.messages(chat_id)
        return max((m["message_id"] for m in messages), default=0)

    async def say(self, user_id: int, text: str, **wait: Any) -> dict[str, Any]:
        """The customer writes; returns the bot's next message in that chat."""
        after = self.last_message_id(user_id)
        self.sandbox.send_text(user_id, text)
        reply = await self.sandbox.wait_for_bot_message(user_id, after_message_id=after, **wait)
        await self.settled()
        return reply

    async def press(self, user_id: int, message: dict[str, Any], button_text: str) -> dict[str, Any]:
        """The customer taps an inline button by its label; returns the edited message or the next one."""
        data = button_data(message, button_text)
        pressed_id, edits = message["message_id"], message["_edits"]
        after = self.last_message_id(user_id)
        self.sandbox.press_button(user_id, pressed_id, data)

        def answered(candidate: dict[str, Any]) -> bool:
            if candidate["message_id"] == pressed_id:
                return bool(candidate["_edits"] > edits)
            return bool(candidate["message_id"] > after)

        reply = await self.sandbox.wait_for_bot_message(
            user_id, after_message_id=min(pressed_id - 1, after), predicate=answered
        )
        await self.settled()
        return reply

def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    markup = message.get("reply_markup") or {}
    return [button for row in markup.get("inline_keyboard", []) for button in row]


def button_texts(message: dict[str, Any]) -> list[str]:
    return [button["text"] for button in buttons(message)]


def button_data(message: dict[str, Any], text: str) -> str:
    for button in buttons(message):
        if button["text"] == text:
            return str(button["callback_data"])
    raise AssertionError(f"no button {text!r} in {button_texts(message)}")


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Wait until ``check()`` holds: the bot commits an update's changes after it has replied."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"{check.__qualname__} did not hold within {timeout}s")
        await asyncio.sleep(0.02)
