"""The console's inbox as staff expect it: views, the assignee in step with /claim in Telegram,
canned replies (the same as `/t NAME`), a context card as rich as the Telegram one, and a Close
that says what it did."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from tests.console_helpers import log_in, make_handoff, make_staff
from touchpoint.config import load_settings
from touchpoint.console import create_console_app
from touchpoint.db import Database
from touchpoint.handoff import service as handoff
from touchpoint.handoff.models import Conversation, TranscriptMessage
from touchpoint.i18n import get_translator
from touchpoint.messaging.models import OutboxMessage
from touchpoint.wiring import load_all_templates

settings = load_settings(_env_file=None, quiet_hours_start=23, quiet_hours_end=0)
t = get_translator()
load_all_templates()


@pytest.fixture
async def client(db: Database) -> AsyncIterator[TestClient]:
    await make_staff(db, "alice", "manager")
    await make_staff(db, "bob", "agent", "ru")
    async with TestClient(TestServer(create_console_app(settings, db))) as test_client:
        yield test_client


async def test_views_and_the_assignee_follow_console_and_telegram_claims(
    client: TestClient, db: Database
) -> None:
    _, mia = await make_handoff(db, 901, "Mia")
    _, lev = await make_handoff(db, 902, "Lev")
    _, ola = await make_handoff(db, 903, "Ola")
    token = await log_in(client)
    await client.post(f"/inbox/{mia.id}/claim", data={"csrf_token": token})
    # /claim in the conversation's staff topic (the bot's handler writes the same transcript line).
    async with db.session() as session:
        conversation = await session.get(Conversation, lev.id)
        assert conversation is not None
        handoff.claim(session, conversation, 555)
        handoff.add_transcript(session, conversation.customer_id, "note", "", kind="claim",
                               author="telegram:Bob", conversation_id=conversation.id)
        closed = await session.get(Conversation, ola.id)
        assert closed is not None
        handoff.close(session, closed)

    async def names(view: str) -> str:
        return await (await client.get(f"/inbox?view={view}&partial=1")).text()

    everyone = await names("open")
    assert "Mia" in everyone and "Lev" in everyone and "Ola" not in everyone
    assert "with Alice" in everyone and "with Bob (Telegram)" in everyone
    mine = await names("mine")
    assert "Mia" in mine and "Lev" not in mine
    assert "Every open conversation" in await names("unassigned")
    resolved = await names("resolved")
    assert "Ola" in resolved and "Mia" not in resolved
    # The conversation page shows the list beside it, the assignee and the escalation in words.
    page = await (await client.get(f"/inbox/{lev.id}")).text()
    assert 'data-testid="inbox-list"' in page and "taken by Bob (Telegram)" in page
    assert "Bob took the conversation" in page or "Bob (Telegram) took the conversation" in page
    assert t("en", "handoff.reason.button") in page and "Total spend" in page


async def test_canned_reply_goes_out_in_the_customers_language(client: TestClient, db: Database) -> None:
    _, conversation = await make_handoff(db, 911, "Nina", locale="ru")
    token = await log_in(client)
    page = await (await client.get(f"/inbox/{conversation.id}")).text()
    assert f'action="/inbox/{conversation.id}/canned"' in page
    canned = f"/inbox/{conversation.id}/canned"
    response = await client.post(canned, data={"csrf_token": token, "name": "wait"})
    assert "sent" in await response.text()
    async with db.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.template == "handoff.staff_reply")
        rows = (await session.exec(query)).all()
    assert [row.params["text"] for row in rows] == [t("ru", "handoff.canned.wait")]
    refused = await client.post(canned, data={"csrf_token": token, "name": "nope"})
    assert refused.status == 400 and "no such quick reply" in (await refused.text())


async def test_close_asks_first_and_says_what_happened(client: TestClient, db: Database) -> None:
    _, conversation = await make_handoff(db, 921, "Ivo")
    token = await log_in(client)
    page = await (await client.get(f"/inbox/{conversation.id}")).text()
    assert "data-confirm=\"Close the conversation with Ivo?" in page
    closed = await client.post(f"/inbox/{conversation.id}/close", data={"csrf_token": token})
    assert t("en", "console.ui.flash.closed") in await closed.text()
    again = await client.post(f"/inbox/{conversation.id}/close", data={"csrf_token": token})
    assert t("en", "console.ui.flash.already_closed") in await again.text()


async def test_a_file_too_big_or_a_big_form_is_refused_in_words(client: TestClient, db: Database) -> None:
    """Only a reply's attachment may exceed a form's size; past 10 MB it is refused in the staff
    member's words, and nothing reaches the transcript."""
    _, conversation = await make_handoff(db, 904, "Ida")
    token = await log_in(client)
    big = io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"0" * (10 * 1024 * 1024 + 70 * 1024))
    big.name = "huge.png"
    refused = await client.post(f"/inbox/{conversation.id}/attach", data={"csrf_token": token, "file": big})
    assert refused.status == 413 and t("en", "console.ui.file.err.too_large", mb=10) in await refused.text()
    note = await client.post(f"/inbox/{conversation.id}/note",
                             data={"csrf_token": token, "text": "x" * (70 * 1024)})
    assert note.status == 413 and t("en", "console.ui.err.too_large") in await note.text()
    async with db.session() as session:
        lines = (await session.exec(select(TranscriptMessage).where(
            TranscriptMessage.conversation_id == conversation.id))).all()
    assert [line.direction for line in lines] == ["in"]  # only the customer's first message
