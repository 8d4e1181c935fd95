"""Handoff core against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from tests.factories import make_customer
from touchpoint.config import load_settings
from touchpoint.db import Database
from touchpoint.handoff import service
from touchpoint.handoff.card import build_card
from touchpoint.handoff.models import TranscriptMessage
from touchpoint.i18n import get_translator
from touchpoint.orders.models import Order

t = get_translator()
SETTINGS = load_settings(_env_file=None, staff_chat_id=-100, handoff_extra_staff_chat_ids=[-200])
TUESDAY_NOON = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)


async def test_escalation_is_idempotent_and_the_wait_grows_with_the_queue(db: Database) -> None:
    async with db.session() as session:
        first = await make_customer(session, 1, locale="en")
        second = await make_customer(session, 2, locale="ru")
        one = await service.escalate(session, first, "button", settings=SETTINGS, now=TUESDAY_NOON)
        again = await service.escalate(session, first, "distress", settings=SETTINGS, now=TUESDAY_NOON)
        two = await service.escalate(session, second, "faq_miss", settings=SETTINGS, now=TUESDAY_NOON)
    assert one.created and not again.created
    assert again.conversation is not None and one.conversation is not None
    assert again.conversation.id == one.conversation.id and again.text == t("en", "handoff.already")
    assert one.text == t("en", "handoff.wait.open", minutes=4)
    assert two.text == t("ru", "handoff.wait.open", minutes=8)
    # Customers are spread over the staff groups.
    assert two.conversation is not None
    assert {one.conversation.staff_chat_id, two.conversation.staff_chat_id} == {-100, -200}


async def test_csat_only_once_only_own_only_after_close(db: Database) -> None:
    async with db.session() as session:
        customer = await make_customer(session, 3)
        other = await make_customer(session, 4)
        result = await service.escalate(session, customer, "button", settings=SETTINGS, now=TUESDAY_NOON)
        conversation = result.conversation
        assert conversation is not None and conversation.id is not None
        assert await service.record_csat(session, customer, conversation.id, 5) is None  # still open
        assert service.close(session, conversation) and not service.close(session, conversation)
        assert await service.record_csat(session, other, conversation.id, 5) is None
        assert await service.record_csat(session, customer, conversation.id, 9) is None
        assert await service.record_csat(session, customer, conversation.id, 4) is not None
        assert await service.record_csat(session, customer, conversation.id, 1) is None
        assert conversation.csat == 4


async def test_transcript_is_pruned_outside_conversations_and_fills_the_card(db: Database) -> None:
    async with db.session() as session:
        customer = await make_customer(session, 5, first_name="<Bob>", store_customer_id="S-5")
        session.add(
            Order(
                number="A1",
                store_customer_id="S-5",
                status="delivered",
                total_minor=1250,
                created_at=TUESDAY_NOON,
                updated_at=TUESDAY_NOON,
            )
        )
        assert customer.id is not None
        for n in range(30):
            service.add_transcript(session, customer.id, "in" if n % 2 else "out", f"line {n}")
        await session.flush()
        assert await service.prune_transcripts(session, 20) == 10
        result = await service.escalate(session, customer, "distress", settings=SETTINGS, now=TUESDAY_NOON)
        assert result.conversation is not None
        card = await build_card(session, result.conversation, SETTINGS)
        rows = (await session.exec(select(TranscriptMessage))).all()
    assert len(rows) == 20
    assert "&lt;Bob&gt;" in card and "<Bob>" not in card
    assert "line 10" in card and "line 29" in card and "line 9\n" not in card
    assert "€12.50" in card and t("en", "handoff.stage.post_purchase") in card
    assert t("en", "handoff.reason.distress") in card


async def test_console_reply_and_close_wait_for_the_desk_once_and_only_with_a_topic(db: Database) -> None:
    async with db.session() as session:
        customer = await make_customer(session, 7)
        with_topic = (await service.escalate(session, customer, "button", settings=SETTINGS)).conversation
        assert with_topic is not None and with_topic.id is not None
        await service.set_topic(session, with_topic.id, 42)
        await session.refresh(with_topic)
        await service.send_staff_reply(session, SETTINGS, with_topic, "Alice", "x" * 5000)
        assert await service.close_and_ask_csat(session, SETTINGS, with_topic, "Alice")
        assert not await service.close_and_ask_csat(session, SETTINGS, with_topic, "Bob")  # closed already
        other = await make_customer(session, 8)
        without_topic = (await service.escalate(session, other, "button", settings=SETTINGS)).conversation
        assert without_topic is not None
        await service.send_staff_reply(session, SETTINGS, without_topic, "Alice", "hello")
        assert await service.close_and_ask_csat(session, SETTINGS, without_topic, "Alice")
    async with db.session() as session:
        taken = await service.take_topic_posts(session)
    assert [(p.kind, p.author, len(p.text), c.topic_id) for p, c in taken] == [
        ("reply", "Alice", service.TOPIC_TEXT_LIMIT, 42), ("close", "Alice", 0, 42)]
    async with db.session() as session:
        assert await service.take_topic_posts(session) == []  # taken once, by one desk
