from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.harness import BotHarness
from touchpoint.channels.flood import MemoryFloodGate
from touchpoint.sandbox import Sandbox
from touchpoint.seed.demo import seed_demo


@pytest.fixture
async def harness(sandbox: tuple[Sandbox, str], sqlite_url: str) -> AsyncIterator[BotHarness]:
    emulator, base_url = sandbox
    bot_harness = BotHarness(emulator, base_url, sqlite_url)
    await bot_harness.start()
    yield bot_harness
    await bot_harness.close()


@pytest.fixture
async def shop(harness: BotHarness) -> AsyncIterator[BotHarness]:
    """The demo retailer's catalogue, stores, FAQ and orders; customers tap a lot, so a roomy flood gate."""
    await seed_demo(harness.db)
    harness.flood_gate = MemoryFloodGate(max_messages=1000, window_s=10, mute_s=1)
    await harness.restart()
    yield harness
