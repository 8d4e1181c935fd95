"""Several webhook processes sharing Redis: FSM state and flood control follow the customer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Message
from redis.asyncio import Redis

from tests.chat_texts import help_text
from tests.production import RoundRobinProxy, WebhookBot, free_port, redis_prefix, until, webhook_settings
from touchpoint.channels.flood import FloodVerdict
from touchpoint.channels.redis_flood import RedisFloodGate
from touchpoint.i18n import get_translator
from touchpoint.sandbox import Sandbox

t = get_translator()


@pytest.fixture
async def redis_env() -> AsyncIterator[tuple[str, str]]:
    async with redis_prefix() as env:
        yield env


async def test_flood_gate_is_shared_between_processes(redis_env: tuple[str, str]) -> None:
    url, prefix = redis_env
    client = Redis.from_url(url)
    first, second = (RedisFloodGate(client, 3, 60, 60, prefix=prefix) for _ in range(2))
    verdicts = [await gate.check(42) for gate in (first, second, first, second, first, second)]
    assert verdicts == [FloodVerdict.ALLOW] * 3 + [FloodVerdict.WARN, FloodVerdict.DROP, FloodVerdict.DROP]
    assert await first.check(43) is FloodVerdict.ALLOW  # another customer is not affected
    await client.aclose()


async def test_flood_gate_lets_messages_through_when_redis_is_down() -> None:
    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    gate = RedisFloodGate(client, 1, 60, 60)
    assert [await gate.check(7) for _ in range(3)] == [FloodVerdict.ALLOW] * 3
    await client.aclose()


class Survey(StatesGroup):
    colour = State()


def add_survey(dp: Dispatcher, name: str) -> None:
    """A two-step conversation; each answer says which process gave it."""

    async def ask(message: Message, state: FSMContext) -> None:
        await state.set_state(Survey.colour)
        await message.answer(f"colour? [{name}]")

    async def got(message: Message, state: FSMContext) -> None:
        await state.clear()
        await message.answer(f"got {message.text} [{name}]")

    dp.message.register(ask, Command("survey"))
    dp.message.register(got, Survey.colour)


@pytest.fixture
async def two_processes(
    sandbox: tuple[Sandbox, str], sqlite_url: str, redis_env: tuple[str, str]
) -> AsyncIterator[list[WebhookBot]]:
    _emulator, base_url = sandbox
    url, prefix = redis_env
    ports = [free_port(), free_port()]
    proxy = RoundRobinProxy([f"http://127.0.0.1:{port}" for port in ports])
    await proxy.start()
    bots = [
        WebhookBot(webhook_settings(
            base_url, sqlite_url, port, redis_url=url, redis_prefix=prefix, flood_max_messages=5,
            webhook_url=proxy.url + "/telegram/webhook",
        ))
        for port in ports
    ]
    for name, bot in zip("AB", bots, strict=True):
        server = await bot.start()
        add_survey(server.dp, name)
    yield bots
    for bot in bots:
        await bot.close()
    await proxy.stop()


async def test_conversation_state_hops_between_processes(
    sandbox: tuple[Sandbox, str], two_processes: list[WebhookBot]
) -> None:
    emulator, _ = sandbox
    emulator.user(601, language_code="en")
    answers = []
    for text in ("/survey", "green", "/survey", "blue"):
        emulator.send_text(601, text)
        answers.append(await emulator.wait_for_bot_message(
            601, after_message_id=max(m["message_id"] for m in emulator.messages(601)) - 1
        ))
    texts = [a["text"] for a in answers]
    assert [text.split(" [")[0] for text in texts] == ["colour?", "got green", "colour?", "got blue"]
    assert {text[-2] for text in texts} == {"A", "B"}  # the steps really were split across processes


async def test_flood_control_counts_across_processes(
    sandbox: tuple[Sandbox, str], two_processes: list[WebhookBot]
) -> None:
    emulator, _ = sandbox
    emulator.user(602, language_code="en")
    for index in range(8):
        emulator.send_text(602, f"/help {index}")
    slow_down, help_reply = t("en", "flood.slow_down"), help_text("en")

    def texts() -> list[str]:
        return [m["text"] for m in emulator.bot_messages(602)]

    await until(lambda: texts().count(help_reply) == 5 and slow_down in texts())
    await two_processes[0].server.handler.drain(5)  # type: ignore[union-attr]
    await two_processes[1].server.handler.drain(5)  # type: ignore[union-attr]
    assert texts().count(help_reply) == 5
    assert texts().count(slow_down) == 1


async def test_redis_down_gets_a_having_trouble_answer(
    sandbox: tuple[Sandbox, str], sqlite_url: str
) -> None:
    emulator, base_url = sandbox
    bot = WebhookBot(webhook_settings(base_url, sqlite_url, free_port(),
                                      redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    await bot.start()
    try:
        emulator.user(603, language_code="zh")
        emulator.send_text(603, "/start")
        reply = await emulator.wait_for_bot_message(603)
        assert reply["text"] == t("zh", "outage.having_trouble")
    finally:
        await bot.close()
