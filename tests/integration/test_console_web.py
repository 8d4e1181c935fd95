"""The staff console over real HTTP on both databases: access rules and every staff action."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from tests.console_helpers import PASSWORD, csrf_from, log_in, make_handoff, make_staff, make_ticket
from tests.factories import make_customer, quiet_hours_elsewhere
from touchpoint.aftersales.models import Ticket, TicketEvent
from touchpoint.clock import utcnow
from touchpoint.config import load_settings
from touchpoint.console import create_console_app
from touchpoint.console.actions import campaign_journey_key
from touchpoint.console.models import Campaign, ConsoleNote, JourneySetting
from touchpoint.customers.models import BehaviourEvent
from touchpoint.db import Database
from touchpoint.formatting import format_datetime
from touchpoint.handoff.models import Conversation, TranscriptMessage
from touchpoint.i18n import get_translator
from touchpoint.messaging.models import OutboxMessage
from touchpoint.messaging.outbox import enqueue
from touchpoint.messaging.rules import Lane
from touchpoint.messaging.templates import render
from touchpoint.orders.models import Order
from touchpoint.understanding.service import understand_message
from touchpoint.wiring import load_all_templates

PATTERN = r"^[A-Z]{2,4}-?\d{4,10}$"

settings = load_settings(_env_file=None, console_login_attempts=3, **quiet_hours_elsewhere())
t = get_translator()
load_all_templates()


@pytest.fixture
async def client(db: Database) -> AsyncIterator[TestClient]:
    await make_staff(db, "alice", "manager")
    await make_staff(db, "bob", "agent")
    async with TestClient(TestServer(create_console_app(settings, db))) as test_client:
        yield test_client


async def outbox(db: Database, template: str) -> list[OutboxMessage]:
    async with db.session() as session:
        return list(
            (await session.exec(select(OutboxMessage).where(OutboxMessage.template == template))).all()
        )


async def test_every_page_needs_a_session(client: TestClient) -> None:
    for path in ("/", "/inbox", "/tickets", "/customers", "/journeys", "/campaigns", "/inbox/1/messages"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 302, path
        assert response.headers["Location"].startswith("/login?next=")


async def test_login_sets_an_httponly_strict_cookie_and_shows_the_dashboard(client: TestClient) -> None:
    page = await client.get("/login")
    response = await client.post(
        "/login",
        data={
            "username": "Alice",
            "password": PASSWORD,
            "csrf_token": csrf_from(await page.text()),
            "next": "/tickets",
        },
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/tickets"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    dashboard = await client.get("/")
    assert "Customer journey funnel" in await dashboard.text()


async def test_wrong_password_refused_then_throttled(client: TestClient) -> None:
    token = csrf_from(await (await client.get("/login")).text())
    for _ in range(settings.console_login_attempts):
        response = await client.post(
            "/login", data={"username": "alice", "password": "nope", "csrf_token": token}
        )
        assert response.status == 401
        assert "Wrong name or password" in await response.text()
    # Even the right password waits now: guessing cannot go on.
    response = await client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status == 429
    assert "Too many attempts" in await response.text()


async def test_post_without_csrf_token_is_refused(client: TestClient, db: Database) -> None:
    await log_in(client)
    _, conversation = await make_handoff(db, 501)
    response = await client.post(f"/inbox/{conversation.id}/reply", data={"text": "hello"})
    assert response.status == 403
    response = await client.post(
        f"/inbox/{conversation.id}/reply", data={"text": "hello", "csrf_token": "forged"}
    )
    assert response.status == 403
    assert await outbox(db, "handoff.staff_reply") == []


async def test_agents_cannot_open_manager_pages(client: TestClient) -> None:
    token = await log_in(client, "bob")
    assert (await client.get("/inbox")).status == 200
    assert (await client.get("/tickets")).status == 200
    for path in ("/journeys", "/campaigns", "/staff"):
        assert (await client.get(path)).status == 403, path
    response = await client.post("/journeys/cart/pause", data={"csrf_token": token})
    assert response.status == 403


async def test_inbox_reply_note_claim_and_close(client: TestClient, db: Database) -> None:
    token = await log_in(client)
    _, conversation = await make_handoff(db, 502, first_name="Mia")
    inbox = await (await client.get("/inbox")).text()
    assert "Mia" in inbox and "Where is my parcel?" in inbox

    response = await client.post(
        f"/inbox/{conversation.id}/reply", data={"text": "It ships today", "csrf_token": token}
    )
    assert response.status == 200  # followed the redirect back to the conversation
    page = await response.text()
    assert "It ships today" in page and "Reply sent." in page
    [reply] = await outbox(db, "handoff.staff_reply")
    assert reply.lane == "transactional" and reply.status == "pending" and reply.chat_id == 502
    assert reply.params == {"author": "Alice", "text": "It ships today"}
    async with db.session() as session:
        answered = await session.get(Conversation, conversation.id)
        staff_lines = select(TranscriptMessage).where(TranscriptMessage.direction == "staff")
        [line] = (await session.exec(staff_lines)).all()
    assert answered is not None and answered.first_response_at is not None  # counts as the first response
    assert (line.text, line.author, line.conversation_id) == ("It ships today", "Alice", conversation.id)

    await client.post(f"/inbox/{conversation.id}/note", data={"text": "VIP customer", "csrf_token": token})
    await client.post(f"/inbox/{conversation.id}/claim", data={"csrf_token": token})
    feed = await (await client.get(f"/inbox/{conversation.id}/messages?after=0")).json()
    assert "VIP customer" in feed["html"] and "Alice took the conversation" in feed["html"]

    await client.post(f"/inbox/{conversation.id}/close", data={"csrf_token": token})
    async with db.session() as session:
        closed = await session.get(Conversation, conversation.id)
        assert closed is not None and closed.status == "closed" and closed.first_response_at is not None
        notes = (
            await session.exec(select(TranscriptMessage).where(TranscriptMessage.direction == "note"))
        ).all()
    assert [n.kind for n in notes] == ["text", "claim", "close"]
    # Closing asks for the rating once, with the same buttons as /close in the staff topic.
    [csat] = await outbox(db, "handoff.csat")
    assert csat.params == {"conversation_id": conversation.id} and csat.chat_id == 502
    rendered = render(t, "en", csat.template, csat.params)
    assert rendered.text == t("en", "handoff.csat.ask")
    assert [row[0].callback_data for row in rendered.buttons] == [
        f"ho:csat:{conversation.id}:{n}" for n in range(1, 6)]
    await client.post(f"/inbox/{conversation.id}/close", data={"csrf_token": token})
    assert len(await outbox(db, "handoff.csat")) == 1
    assert "No one is waiting" in await (await client.get("/inbox")).text()


async def test_ticket_filters_status_change_and_notes(client: TestClient, db: Database) -> None:
    token = await log_in(client)
    assert "No tickets match" in await (await client.get("/tickets")).text()
    async with db.session() as session:
        customer = await make_customer(session, 503)
    await make_ticket(db, customer, first_response_due_at=utcnow() - timedelta(hours=1))
    await make_ticket(db, customer, "X-000002", status="closed")
    listing = await (await client.get("/tickets?status=open&overdue=1")).text()
    assert "R-000001" in listing and "X-000002" not in listing and "overdue" in listing

    async with db.session() as session:
        ticket_id = (await session.exec(select(Ticket.id).where(Ticket.number == "R-000001"))).one()
    response = await client.post(
        f"/tickets/{ticket_id}/status", data={"status": "approved", "csrf_token": token}
    )
    page = await response.text()
    assert "the customer was notified" in page
    await client.post(f"/tickets/{ticket_id}/note", data={"text": "Label sent by email", "csrf_token": token})
    async with db.session() as session:
        changed = await session.get(Ticket, ticket_id)
        events = (await session.exec(select(TicketEvent))).all()
        notes = (await session.exec(select(ConsoleNote))).all()
    assert changed is not None and changed.status == "approved" and changed.first_response_at is not None
    # The after-sales lifecycle keeps the history; the console keeps its internal notes.
    assert [(e.kind, e.status, e.author) for e in events] == [("status", "approved", "console:Alice")]
    assert [(n.kind, n.text) for n in notes] == [("note", "Label sent by email")]
    page = await (await client.get(f"/tickets/{ticket_id}")).text()
    # Words, never codes: who did it, the status in the chat's own word.
    assert "Alice (console)" in page and "Label sent by email" in page and "status: approved" in page
    assert "console:Alice" not in page
    [notice] = await outbox(db, "aftersales.status")
    assert notice.params["status"] == "approved" and notice.chat_id == 503
    # Only the lifecycle's next steps are offered; anything else is refused, in words, and changes nothing.
    assert 'value="item_received"' in page and 'value="new"' not in page
    bad = await client.post(f"/tickets/{ticket_id}/status", data={"status": "new", "csrf_token": token})
    assert "cannot move to" in await bad.text()
    no_reason = await client.post(f"/tickets/{ticket_id}/status",
                                  data={"status": "rejected", "csrf_token": token})
    assert "write the reason" in await no_reason.text()
    async with db.session() as session:
        unchanged = await session.get(Ticket, ticket_id)
    assert unchanged is not None and unchanged.status == "approved"
    assert len(await outbox(db, "aftersales.status")) == 1
    await client.post(f"/tickets/{ticket_id}/status",
                      data={"status": "rejected", "note": "Worn", "csrf_token": token})
    async with db.session() as session:
        rejected = await session.get(Ticket, ticket_id)
    assert rejected is not None and rejected.status == "rejected" and rejected.resolution == "Worn"


async def test_pausing_a_journey_holds_its_nudges_and_resuming_releases_them(
    client: TestClient, db: Database
) -> None:
    token = await log_in(client)
    async with db.session() as session:
        customer = await make_customer(session, 504)
        await enqueue(
            session,
            settings,
            customer,
            "console.campaign",
            {"texts": {"en": "Hi"}},
            lane=Lane.MARKETING,
            journey_key="abandoned_cart",
        )
    paused = await client.post("/journeys/abandoned_cart/pause", data={"csrf_token": token})
    assert "Journey Abandoned cart paused." in await paused.text()
    [row] = await outbox(db, "console.campaign")
    assert (row.status, row.reason) == ("skipped", "journey_paused")
    page = await (await client.get("/journeys")).text()
    assert "abandoned_cart" in page and "paused" in page and "Resume" in page
    async with db.session() as session:
        setting = await session.get(JourneySetting, "abandoned_cart")
        assert setting is not None and setting.paused and setting.updated_by == "Alice"

    await client.post("/journeys/abandoned_cart/resume", data={"csrf_token": token})
    [row] = await outbox(db, "console.campaign")
    assert (row.status, row.reason) == ("pending", None)


async def test_campaign_preview_in_each_language_then_schedule(client: TestClient, db: Database) -> None:
    token = await log_in(client)
    async with db.session() as session:
        await make_customer(session, 505)
        await make_customer(session, 506, marketing_consent=False)
    form = {
        "csrf_token": token,
        "name": "Winter sale",
        "segment": "everyone",
        "when": "",
        "text_en": "20% off boots",
        "text_ru": "Скидка 20% на ботинки",
        "text_zh": "靴子八折",
    }
    preview = await (await client.post("/campaigns/preview", data=form)).text()
    shown = ("20% off boots", "Скидка 20% на ботинки", "靴子八折", "🔕 No more offers", "🔕 不再接收优惠信息")
    for text in shown:
        assert text in preview
    # The estimate: 1 customer at the free 25/s; paid broadcasts are off by default.
    assert "At the free rate (≈25/s): about 1 min" in preview and "paid broadcasts are off" in preview
    assert await outbox(db, "console.campaign") == []  # nothing queued before confirming
    assert (
        "Give the campaign a name"
        in await (await client.post("/campaigns/preview", data={**form, "name": ""})).text()
    )

    done = await (await client.post("/campaigns", data=form)).text()
    assert "queued for 1 of 2 customers in the segment" in done and "not opted in to offers: 1" in done
    [row] = await outbox(db, "console.campaign")
    assert row.chat_id == 505 and row.lane == "marketing"
    async with db.session() as session:
        campaign = (await session.exec(select(Campaign))).one()
    assert row.journey_key == campaign_journey_key(campaign) and campaign.recipients == 1


async def test_customer_page_timeline_and_dashboard_funnel(client: TestClient, db: Database) -> None:
    await log_in(client)
    async with db.session() as session:
        customer = await make_customer(
            session, 507, first_name="Oleg", store_customer_id="S-1", phone="+4930123"
        )
        session.add(
            BehaviourEvent(
                customer_id=customer.id, type="product.viewed", payload={"sku": "BOOT"}, occurred_at=utcnow()
            )
        )
        # The bot hands free text to the presale matcher, which records what it could not answer.
        await understand_message(session, customer.id or 0, "Do you sell gift cards?", PATTERN)
        for number in ("A-1", "A-2"):
            session.add(
                Order(
                    number=number,
                    store_customer_id="S-1",
                    total_minor=4999,
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )
    found = await (await client.get("/customers?q=oleg")).text()
    assert f"/customers/{customer.id}" in found
    page = await (await client.get(f"/customers/{customer.id}")).text()
    for text in ("Looked at a product", "Order · A-2", "€49.99", "Europe/Berlin", "+4930123", "repeat"):
        assert text in page, text
    for code in ("product.viewed", "EUR", "sku="):
        assert code not in page, code
    dashboard = await (await client.get("/?days=7")).text()
    assert "<svg" in dashboard and "repeat: 1" in dashboard and "Do you sell gift cards?: 1" in dashboard


async def test_logout_ends_the_session(client: TestClient) -> None:
    token = await log_in(client)
    await client.post("/logout", data={"csrf_token": token})
    assert (await client.get("/", allow_redirects=False)).status == 302


async def test_start_console_serves_on_its_own_port(sqlite_db: Database) -> None:
    """What the runner calls: a real listening server, and nothing when switched off."""
    from aiohttp import ClientSession

    from touchpoint.console import start_console

    assert await start_console(load_settings(_env_file=None, console_enabled=False), sqlite_db) is None
    runner = await start_console(load_settings(_env_file=None, console_port=0), sqlite_db)
    assert runner is not None
    try:
        host, port = runner.addresses[0][:2]
        async with ClientSession() as http, http.get(f"http://{host}:{port}/inbox") as response:
            assert response.status == 200 and response.url.path == "/login"
    finally:
        await runner.cleanup()


async def test_console_speaks_the_staff_members_language(client: TestClient, db: Database) -> None:
    await make_staff(db, "olga", "agent", locale="ru")
    token = await log_in(client, "olga")
    dashboard = await (await client.get("/")).text()
    assert '<html lang="ru">' in dashboard and "Воронка пути клиента" in dashboard and "Входящие" in dashboard
    _, conversation = await make_handoff(db, 508)
    response = await client.post(f"/inbox/{conversation.id}/note", data={"text": "x", "csrf_token": token})
    assert "Заметка добавлена" in await response.text()
    assert "Эта страница только для менеджеров." in await (await client.get("/journeys")).text()


async def test_campaign_in_some_languages_at_shop_time_with_a_test_to_me_and_reasons_held_back(
    client: TestClient, db: Database
) -> None:
    """Written in Russian and Chinese only: English readers get the nearest written text; the time is
    the shop's wall clock; "send a test to me" reaches the manager's own chat at once (once they set
    their Telegram id) and queues nothing; after queueing, who was held back and why, in words."""
    token = await log_in(client)
    async with db.session() as session:
        reader = await make_customer(session, 601, locale="en")
        await make_customer(session, 602, locale="ru", marketing_consent=False)
        await make_customer(session, 603, locale="zh", nudges_paused=True)
        await make_customer(session, 604, locale="ru", reachable=False)
        talking = await make_customer(session, 605, locale="ru")
        session.add(Conversation(customer_id=talking.id or 0, opened_at=utcnow()))
        me = await make_customer(session, 777, locale="ru", marketing_consent=False)
    form = {"csrf_token": token, "name": "Spring", "segment": "everyone", "when": "2031-03-01T10:00",
            "text_en": "", "text_ru": "Весенняя распродажа", "text_zh": "春季促销"}
    preview = await (await client.post("/campaigns/preview", data=form)).text()
    assert "Весенняя распродажа" in preview and "春季促销" in preview
    assert "Not written in this language: they get the Russian text." in preview  # English readers
    # 10:00 in Berlin on 1 March is 09:00 UTC: shown back in the manager's (the shop's) time.
    assert format_datetime(datetime(2031, 3, 1, 9, 0, tzinfo=UTC), "en", "Europe/Berlin") in preview

    refused = await client.post("/campaigns/preview", data={**form, "text_ru": "", "text_zh": ""})
    assert refused.status == 400 and "at least one language" in await refused.text()
    assert "2026-12-01T10:00" in await (await client.post("/campaigns/preview",
                                                           data={**form, "when": "next friday"})).text()

    no_id = await (await client.post("/campaigns/test", data=form)).text()
    assert "add your Telegram user id in My settings first" in no_id
    await client.post("/me", data={"csrf_token": token, "telegram_id": "999"})
    assert "start a chat with the bot" in await (await client.post("/campaigns/test", data=form)).text()
    await client.post("/me", data={"csrf_token": token, "telegram_id": str(me.telegram_id)})
    sent = await (await client.post("/campaigns/test", data=form)).text()
    assert "Test sent to your Telegram chat." in sent and "Весенняя распродажа" in sent
    [test] = await outbox(db, "console.campaign")
    assert (test.chat_id, test.status, test.journey_key) == (777, "pending", None)  # right away, no stats

    done = await (await client.post("/campaigns", data=form)).text()
    assert "queued for 1 of 6 customers in the segment" in done
    for words in ("not opted in to offers: 2", "turned reminders off: 1", "talking to staff right now: 1",
                  "blocked the bot or have no chat: 1"):
        assert words in done, words
    rows = [row for row in await outbox(db, "console.campaign")
            if row.journey_key and row.status == "pending"]
    assert [(row.chat_id, row.due_at.replace(tzinfo=UTC)) for row in rows] == [
        (reader.telegram_id, datetime(2031, 3, 1, 9, 0, tzinfo=UTC))]
    listed = await (await client.get("/campaigns")).text()
    assert "Not reached now:" in listed and "talking to staff right now: 1" in listed
