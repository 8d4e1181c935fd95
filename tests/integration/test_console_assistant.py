"""The assistant in the console, against a fake OpenAI-compatible model: the managers' page (what
it answered, its sources, the customers' ratings, a switch per capability), and on a conversation
a suggested reply sent only by a click, the customer's words translated, a reply translated."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import col, select

from tests.console_helpers import log_in, make_handoff, make_staff
from tests.fake_llm import FakeModel, Scripted, fake_model, model_settings  # noqa: F401
from touchpoint.assistant.models import AssistantAnswer, AssistantSwitch
from touchpoint.clock import utcnow
from touchpoint.config import load_settings
from touchpoint.console import create_console_app
from touchpoint.db import Database
from touchpoint.handoff.models import TranscriptMessage
from touchpoint.i18n import get_translator
from touchpoint.messaging.models import OutboxMessage
from touchpoint.seed.demo import seed_demo

t = get_translator()
GROUNDED = "We take cards and PayPal [faq:payment-methods]."


def model(messages: list[dict[str, str]]) -> Scripted:
    system, text = messages[0]["content"], messages[-1]["content"]
    if system.startswith("Translate") and "English" in system:
        return Scripted({"можно оплатить биткоином?": "Can I pay with bitcoin?",
                         "а наличными?": "And in cash?"}.get(text, text))
    if system.startswith("Translate") and "Russian" in system:
        return Scripted("Нет, только картой" if text == "No, cards only" else text)
    return Scripted(GROUNDED.replace("We take cards and PayPal", "Мы принимаем карты и PayPal"))


@pytest.fixture
async def client(sqlite_db: Database, fake_model: FakeModel) -> AsyncIterator[TestClient]:  # noqa: F811
    await seed_demo(sqlite_db)
    await make_staff(sqlite_db, "alice", "manager")
    await make_staff(sqlite_db, "bob", "agent")
    fake_model.script = model
    settings = load_settings(_env_file=None, quiet_hours_start=23, quiet_hours_end=0,
                             **model_settings(fake_model))
    async with TestClient(TestServer(create_console_app(settings, sqlite_db))) as test_client:
        yield test_client


async def test_a_suggested_reply_is_sent_only_by_a_click_and_translation_keeps_the_original(
    client: TestClient, sqlite_db: Database,
) -> None:
    _customer, conversation = await make_handoff(sqlite_db, 8301, "Ivan", "можно оплатить биткоином?", "ru")
    token = await log_in(client)
    page = await (await client.get(f"/inbox/{conversation.id}")).text()
    assert "🌐 Can I pay with bitcoin?" in page  # the customer's words, in Alice's language
    assert 'data-testid="assistant-draft"' not in page
    async with sqlite_db.session() as session:  # a new line, as the page's live feed fetches it
        session.add(TranscriptMessage(customer_id=conversation.customer_id, conversation_id=conversation.id,
                                      direction="in", text="а наличными?", created_at=utcnow()))
    feed = await (await client.get(f"/inbox/{conversation.id}/messages?after=0")).json()
    assert "🌐 And in cash?" in feed["html"]

    await client.post(f"/inbox/{conversation.id}/assistant/draft", data={"csrf_token": token})
    page = await (await client.get(f"/inbox/{conversation.id}")).text()
    assert "Мы принимаем карты и PayPal." in page and "What payment methods do you accept?" in page
    async with sqlite_db.session() as session:
        assert (await session.exec(select(OutboxMessage))).all() == []  # suggested, not sent
        draft = (await session.exec(select(AssistantAnswer))).one()

    edited = "Мы принимаем карты и PayPal. Биткоин — нет."
    sent = await client.post(f"/inbox/{conversation.id}/assistant/send/{draft.id}",
                             data={"csrf_token": token, "text": edited}, allow_redirects=False)
    assert sent.status == 303
    again = await client.post(f"/inbox/{conversation.id}/assistant/send/{draft.id}",
                              data={"csrf_token": token, "text": edited})
    assert again.status == 409  # one click sends it once

    await client.post(f"/inbox/{conversation.id}/assistant/reply",
                      data={"csrf_token": token, "text": "No, cards only"})
    async with sqlite_db.session() as session:
        outbox = (await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
        lines = (await session.exec(select(TranscriptMessage.direction, TranscriptMessage.text)
                                    .where(TranscriptMessage.direction != "in")
                                    .order_by(col(TranscriptMessage.id)))).all()
        draft = (await session.exec(select(AssistantAnswer))).one()
    assert [row.params["text"] for row in outbox] == [edited, "Нет, только картой"]
    assert [tuple(line) for line in lines] == [("staff", edited), ("staff", "Нет, только картой"),
                                               ("note", "🌐 No, cards only")]
    assert draft.outcome == "edited"


async def test_managers_see_answers_sources_ratings_and_switch_capabilities(
    client: TestClient, sqlite_db: Database,
) -> None:
    customer, _conversation = await make_handoff(sqlite_db, 8401, "Ann", "hello")
    async with sqlite_db.session() as session:
        session.add(AssistantAnswer(customer_id=customer.id or 0, question="can I pay with bitcoin?",
                                    answer="We take cards and PayPal.", sources=["faq:payment-methods"],
                                    outcome="sent", helpful=False, created_at=utcnow()))
    await log_in(client, "bob")
    assert (await client.get("/assistant")).status == 403  # agents: not theirs
    await client.get("/logout")
    token = await log_in(client)
    page = await (await client.get("/assistant")).text()
    assert "can I pay with bitcoin?" in page and "What payment methods do you accept?" in page
    assert 'data-testid="unhelpful">1<' in page
    assert "faq:payment-methods" not in page  # staff read words, not ids

    off = {"csrf_token": token, "capability": "answers", "enabled": "0"}
    await client.post("/assistant/switch", data=off)
    bad = await client.post("/assistant/switch", data={**off, "capability": "x"})
    assert bad.status == 400
    async with sqlite_db.session() as session:
        switches = (await session.exec(select(AssistantSwitch))).all()
    assert [(s.capability, s.enabled, s.updated_by) for s in switches] == [("answers", False, "Alice")]
