"""The web console and the staff topic together: what a colleague does in the console shows up in the
conversation's forum topic (the real bot and its desk polling the sandbox, the console over real HTTP)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import col, select

from bot.channel import TelegramChannel
from tests.console_helpers import log_in, make_handoff, make_staff
from tests.e2e.harness import BotHarness, eventually
from tests.e2e.test_handoff_flow import ALWAYS_OPEN, GROUP, STAFF, conversations, topic_of, topic_text
from tests.e2e.test_handoff_staff import desk_of, started
from touchpoint.console import create_console_app
from touchpoint.customers.models import Customer
from touchpoint.handoff.models import Conversation, TopicPost, TranscriptMessage
from touchpoint.i18n import get_translator
from touchpoint.messaging.sender import OutboxSender, Pacing
from touchpoint.sandbox import Sandbox
from touchpoint.sandbox.files import TINY_PNG

t = get_translator()


@pytest.fixture
async def staff_bot(sandbox: tuple[Sandbox, str], sqlite_url: str) -> AsyncIterator[BotHarness]:
    harness = await started(sandbox, sqlite_url, **ALWAYS_OPEN)
    yield harness
    await harness.close()


@pytest.fixture
async def console(staff_bot: BotHarness) -> AsyncIterator[TestClient]:
    """The console as the runner starts it: same settings and database as the bot."""
    await make_staff(staff_bot.db, "alice", "agent")
    async with TestClient(TestServer(create_console_app(staff_bot.settings, staff_bot.db))) as client:
        yield client


def sender_of(harness: BotHarness) -> OutboxSender:
    assert harness.bot is not None
    return OutboxSender(harness.db, harness.settings, TelegramChannel(harness.bot), t,
                        pacing=Pacing().scaled(100))


async def test_console_reply_and_close_show_up_in_the_customers_topic(
    staff_bot: BotHarness, console: TestClient
) -> None:
    sandbox = staff_bot.sandbox
    sandbox.user(1201, first_name="Mia", language_code="ru")
    await staff_bot.say(1201, "/human")
    sandbox.send_text(1201, "where is my parcel?")
    thread = topic_of(sandbox, "Mia")
    await topic_text(sandbox, thread, "where is my parcel?")
    [conversation] = await conversations(staff_bot)
    token = await log_in(console)

    # A colleague answers from the console: the customer gets it (outbox), the topic shows it (desk).
    text = "It ships today <b>& arrives</b> tomorrow"
    response = await console.post(f"/inbox/{conversation.id}/reply", data={"text": text, "csrf_token": token})
    assert response.status == 200
    shown = await topic_text(sandbox, thread, "(console)")
    assert shown["text"] == f"💬 Alice (console): {text}"  # escaped: shown as typed, not as markup
    assert await sender_of(staff_bot).drain_once() == 1
    arrived = await sandbox.wait_for_bot_message(
        1201, predicate=lambda m: "ships today" in (m.get("text") or ""))
    assert arrived["text"] == f"💬 Alice:\n{text}"

    # Staff in Telegram go on in the same topic and see their colleague's answer above.
    sandbox.staff_post(GROUP, STAFF, "And here is the tracking link", message_thread_id=thread)
    await sandbox.wait_for_bot_message(1201, predicate=lambda m: "tracking link" in (m.get("text") or ""))

    # Closing from the console: said in the topic and the topic is closed, as /close does.
    await console.post(f"/inbox/{conversation.id}/close", data={"csrf_token": token})
    await topic_text(sandbox, thread, t("en", "handoff.staff.console_closed", name="Alice"))
    await eventually(lambda: _topic_closed(staff_bot, thread))
    await console.post(f"/inbox/{conversation.id}/close", data={"csrf_token": token})  # already closed
    await desk_of(staff_bot).tick()
    await desk_of(staff_bot).drain()
    console_lines = [
        m["text"] for m in sandbox.bot_messages(GROUP, thread) if "(console)" in (m.get("text") or "")]
    assert console_lines == [f"💬 Alice (console): {text}", "✅ Closed by Alice (console)"]
    assert await _waiting(staff_bot) == []

    # The customer is asked for a rating once, in their language.
    assert await sender_of(staff_bot).drain_once() == 1
    await sandbox.wait_for_bot_message(1201, predicate=lambda m: m.get("text") == t("ru", "handoff.csat.ask"))


async def test_conversation_without_a_topic_gets_nothing_in_the_group(
    staff_bot: BotHarness, console: TestClient
) -> None:
    _, conversation = await make_handoff(staff_bot.db, 1202, first_name="Ben")  # never got a topic
    token = await log_in(console)
    before = staff_bot.sandbox.bot_messages(GROUP)
    await console.post(f"/inbox/{conversation.id}/reply", data={"text": "Hello Ben", "csrf_token": token})
    await console.post(f"/inbox/{conversation.id}/close", data={"csrf_token": token})
    await desk_of(staff_bot).tick()
    await desk_of(staff_bot).drain()
    assert staff_bot.sandbox.bot_messages(GROUP) == before and staff_bot.sandbox.topics(GROUP) == []
    assert await _waiting(staff_bot) == []
    async with staff_bot.db.session() as session:
        closed = await session.get(Conversation, conversation.id)
    assert closed is not None and closed.status == "closed"


async def test_console_close_leaves_a_topic_reopened_for_a_new_conversation_open(
    staff_bot: BotHarness, console: TestClient
) -> None:
    sandbox, desk = staff_bot.sandbox, desk_of(staff_bot)
    await desk.stop()  # the desk ticks by hand from here
    sandbox.user(1203, first_name="Kai")
    await staff_bot.say(1203, "/human")
    thread = topic_of(sandbox, "Kai")
    [conversation] = await conversations(staff_bot)
    token = await log_in(console)
    await console.post(f"/inbox/{conversation.id}/close", data={"csrf_token": token})
    await staff_bot.say(1203, "/human")  # back before the desk showed the close: the same topic again
    await eventually(lambda: _open_in_topic(staff_bot, thread))
    await desk.tick()
    await desk.drain()
    await topic_text(sandbox, thread, t("en", "handoff.staff.console_closed", name="Alice"))
    assert not await _topic_closed(staff_bot, thread)


async def _open_in_topic(harness: BotHarness, thread: int) -> bool:
    return [(c.status, c.topic_id) for c in await conversations(harness)] == [
        ("closed", thread), ("open", thread)]


async def _topic_closed(harness: BotHarness, thread: int) -> bool:
    [topic] = [topic for topic in harness.sandbox.topics(GROUP) if topic["message_thread_id"] == thread]
    return bool(topic["is_closed"])


async def _waiting(harness: BotHarness) -> list[TopicPost]:
    async with harness.db.session() as session:
        return list((await session.exec(select(TopicPost))).all())


async def test_files_both_ways_and_a_console_claim_reach_the_topic(
    staff_bot: BotHarness, console: TestClient
) -> None:
    """A customer's photo and document show in the console (through it, signed in only); a file
    staff attach reaches the customer's chat; taking the conversation is said in the topic."""
    sandbox = staff_bot.sandbox
    sandbox.user(1204, first_name="Noa", language_code="en")
    await staff_bot.say(1204, "/human")
    thread = topic_of(sandbox, "Noa")
    sandbox.send_photo(1204, TINY_PNG, caption="the broken lid")
    sandbox.send_document(1204, b"%PDF-1.4\n%receipt\n", file_name="receipt.pdf")
    [conversation] = await conversations(staff_bot)

    async def files_in_transcript() -> list[TranscriptMessage]:
        async with staff_bot.db.session() as session:
            rows = (await session.exec(select(TranscriptMessage).where(
                col(TranscriptMessage.file_id).is_not(None)))).all()
        return list(rows)

    await eventually(lambda: _count_is(files_in_transcript, 2))
    photo, document = await files_in_transcript()
    async with TestClient(TestServer(create_console_app(staff_bot.settings, staff_bot.db))) as stranger:
        refused = await stranger.get(f"/inbox/{conversation.id}/files/{photo.id}", allow_redirects=False)
        assert refused.status == 302 and "/login" in refused.headers["Location"]
    token = await log_in(console)
    page = await (await console.get(f"/inbox/{conversation.id}")).text()
    assert f"/inbox/{conversation.id}/files/{photo.id}" in page and "receipt.pdf" in page
    shown = await console.get(f"/inbox/{conversation.id}/files/{photo.id}")
    assert shown.status == 200 and await shown.read() == TINY_PNG
    download = await console.get(f"/inbox/{conversation.id}/files/{document.id}")
    assert await download.read() == b"%PDF-1.4\n%receipt\n"
    assert "receipt.pdf" in download.headers["Content-Disposition"]

    # Staff attach a PDF with a caption: it reaches the customer's chat and the console's transcript.
    sent = await console.post(f"/inbox/{conversation.id}/attach", data={
        "csrf_token": token, "text": "Your invoice",
        "file": FilePart(b"%PDF-1.7\n%invoice\n", "invoice.pdf")})
    assert t("en", "console.ui.flash.file_sent") in await sent.text()
    arrived = await sandbox.wait_for_bot_message(1204, predicate=lambda m: "document" in m)
    assert arrived["document"]["file_name"] == "invoice.pdf" and "Your invoice" in arrived["caption"]
    page = await (await console.get(f"/inbox/{conversation.id}")).text()
    assert "invoice.pdf" in page

    # A file that is not a photo or PDF is refused in words, and nothing is sent or kept.
    before = len(sandbox.bot_messages(1204))
    refused_page = await console.post(f"/inbox/{conversation.id}/attach", data={
        "csrf_token": token, "file": FilePart(b"MZ\x90\x00 not a picture", "photo.jpg")})
    assert t("en", "console.ui.file.err.type") in await refused_page.text()
    assert len(sandbox.bot_messages(1204)) == before and len(await files_in_transcript()) == 3

    # Taking it in the console is said in the staff topic (as /claim there shows in the console).
    await console.post(f"/inbox/{conversation.id}/claim", data={"csrf_token": token})
    claimed = await topic_text(sandbox, thread, t("en", "handoff.staff.claimed", name="Alice"))
    assert "(console)" not in claimed["text"]  # a claim, not a line Alice said
    await topic_text(sandbox, thread, "📎 invoice.pdf Your invoice")

    # A customer who blocked the bot: said in words, nothing kept, no more nudges for them.
    sandbox.block(1204)
    blocked = await console.post(f"/inbox/{conversation.id}/attach", data={
        "csrf_token": token, "file": FilePart(TINY_PNG, "photo.png")})
    assert t("en", "console.ui.file.err.blocked") in await blocked.text()
    assert len(await files_in_transcript()) == 3
    async with staff_bot.db.session() as session:
        customer = await session.get(Customer, conversation.customer_id)
    assert customer is not None and not customer.reachable


async def _count_is(read: Callable[[], Awaitable[list[TranscriptMessage]]], n: int) -> bool:
    return len(await read()) == n


def FilePart(data: bytes, name: str) -> io.BytesIO:
    part = io.BytesIO(data)
    part.name = name
    return part
