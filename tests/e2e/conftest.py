from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.harness import BotHarness
from touchpoint.sandbox import Sandbox


@pytest.fixture
async def harness(sandbox: tuple[Sandbox, str], sqlite_url: str) -> AsyncIterator[BotHarness]:
    emulator, base_url = sandbox
    bot_harness = BotHarness(emulator, base_url, sqlite_url)
    await bot_harness.start()
    yield bot_harness
    await bot_harness.close()
