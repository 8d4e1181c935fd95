"""Content gaps as the console shows them after real chats: customers type questions to the bot (the
sandbox), tap 👍 / 👎, and the dashboard lists what the FAQ could not answer well."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.console_helpers import log_in, make_staff
from tests.e2e.harness import BotHarness, button_texts
from touchpoint.console import create_console_app
from touchpoint.i18n import get_translator

t = get_translator()


@pytest.fixture
async def console(shop: BotHarness) -> AsyncIterator[TestClient]:
    await make_staff(shop.db, "alice", "agent")
    async with TestClient(TestServer(create_console_app(shop.settings, shop.db))) as client:
        yield client


def row(text: str, total: int, unanswered: int, suggested: int, disliked: int) -> str:
    return (f'<tr><th scope="row">{text}</th><td>{total}</td><td>{unanswered}</td><td>{suggested}</td>'
            f"<td>{disliked}</td></tr>")


async def test_unanswered_suggested_and_thumbs_down_questions_reach_the_dashboard(
    shop: BotHarness, console: TestClient
) -> None:
    for user in range(2101, 2107):
        shop.sandbox.user(user, language_code="en")
    for user, text in ((2101, "Tell me a joke!"), (2102, "tell me a joke"), (2106, "tell me a joke")):
        reply = await shop.say(user, text)  # no match at all, however it is spelt
        assert reply["text"] == t("en", "presale.answer.none")

    answered = await shop.say(2103, "how long does delivry take")  # answered, and the customer disagrees
    assert button_texts(answered) == ["👍", "👎"]
    await shop.press(2103, answered, "👎")
    liked = await shop.say(2104, "how long does delivry take")  # the same answer helped someone else
    await shop.press(2104, liked, "👍")

    # A close race: suggestions, one picked, then 👎. Counted once, as the 👎 it ended with.
    suggestions = await shop.say(2105, "delivery")
    assert suggestions["text"] == t("en", "presale.answer.suggest")
    picked = await shop.press(2105, suggestions, button_texts(suggestions)[0])
    await shop.press(2105, picked, "👎")

    await log_in(console)
    page = await (await console.get("/?days=7")).text()
    rows = [row("tell me a joke", 3, 3, 0, 0), row("delivery", 1, 0, 0, 1),
            row("how long does delivry take", 1, 0, 0, 1)]
    assert all(r in page for r in rows), page
    assert [page.index(r) for r in rows] == sorted(page.index(r) for r in rows)  # most frequent first

    await shop.press(2103, answered, "👎")  # tapped twice: still one question
    page = await (await console.get("/?days=7")).text()
    assert row("how long does delivry take", 1, 0, 0, 1) in page
