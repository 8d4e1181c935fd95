"""The learning loop: a manager turns a content gap into an answer from the dashboard, and the bot
answers it from the next question on, without a restart; bad input changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.console_helpers import log_in, make_staff
from tests.factories import make_customer
from touchpoint.catalog.models import FaqEntry
from touchpoint.config import load_settings
from touchpoint.console import create_console_app
from touchpoint.db import Database
from touchpoint.seed.demo import seed_demo
from touchpoint.understanding.service import Understanding, understand_message

PATTERN = r"^[A-Z]{2,4}-?\d{4,10}$"
settings = load_settings(_env_file=None)
QUESTION = "can I bring my dog"


@pytest.fixture
async def client(db: Database) -> AsyncIterator[TestClient]:
    await seed_demo(db)
    await make_staff(db, "alice", "manager")
    await make_staff(db, "bob", "agent")
    async with TestClient(TestServer(create_console_app(settings, db))) as test_client:
        yield test_client


async def ask(db: Database, text: str, telegram_id: int = 901) -> Understanding:
    async with db.session() as session:
        customer = await make_customer(session, telegram_id)
        understood, _misses = await understand_message(session, customer.id or 0, text, PATTERN)
    return understood


def answered(understood: Understanding) -> str | None:
    best = understood.match.best
    return best.target.id if understood.match.verdict == "answer" and best is not None else None


async def test_a_gap_attached_to_an_entry_is_answered_at_once(client: TestClient, db: Database) -> None:
    assert answered(await ask(db, QUESTION)) is None
    token = await log_in(client)
    page = await (await client.get("/")).text()
    assert 'data-testid="teach"' in page and QUESTION in page
    response = await client.post("/gaps/phrasing", data={"csrf_token": token, "question": QUESTION,
                                                        "faq_id": "store-hours"}, allow_redirects=False)
    assert response.status == 303
    assert "store-hours" in await (await client.get("/")).text()  # the flash names the entry
    assert answered(await ask(db, QUESTION, 902)) == "store-hours"
    async with db.session() as session:
        entry = await session.get(FaqEntry, "store-hours")
        assert entry is not None and QUESTION in entry.questions["en"]


async def test_a_gap_becomes_a_new_entry_in_its_own_language(client: TestClient, db: Database) -> None:
    question = "можно прийти с собакой в магазин"
    await ask(db, question)
    token = await log_in(client)
    response = await client.post("/gaps/entry", data={
        "csrf_token": token, "question": question, "faq_id": "dogs",
        "answer": "Да, собаки на поводке — welcome!",
    }, allow_redirects=False)
    assert response.status == 303
    assert answered(await ask(db, question, 903)) == "dogs"
    async with db.session() as session:
        entry = await session.get(FaqEntry, "dogs")
        assert entry is not None and entry.questions == {"ru": [question]}


@pytest.mark.parametrize(("faq_id", "answer"), [("Bad Id!", "fine"), ("store-hours", "taken"), ("ok-id", "")])
async def test_bad_input_changes_nothing(client: TestClient, db: Database, faq_id: str, answer: str) -> None:
    token = await log_in(client)
    async with db.session() as session:
        before = len((await session.get(FaqEntry, "store-hours")).questions["en"])  # type: ignore[union-attr]
    attempts = (("/gaps/entry", {"faq_id": faq_id, "answer": answer}), ("/gaps/phrasing", {"faq_id": "no"}))
    for path, data in attempts:
        response = await client.post(path, data={"csrf_token": token, "question": QUESTION, **data})
        assert response.status == 200  # back on the dashboard
        assert "Nothing was changed." in await response.text()
    async with db.session() as session:
        assert await session.get(FaqEntry, "ok-id") is None
        assert len((await session.get(FaqEntry, "store-hours")).questions["en"]) == before  # type: ignore[union-attr]


async def test_agents_cannot_teach(client: TestClient, db: Database) -> None:
    token = await log_in(client, "bob")
    assert 'data-testid="teach"' not in await (await client.get("/")).text()
    response = await client.post("/gaps/phrasing", data={"csrf_token": token, "question": QUESTION,
                                                        "faq_id": "store-hours"})
    assert response.status == 403
