"""Staff read words, never codes: every console page, in en, ru and zh, in a real browser, fails on a
stored code (``in_review``, ``distress``, ``console:Alice``), a Python repr (``{'``, ``None``,
``[]``) or a message key showing instead of its text."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from tests.aftersales_factories import make_catalogue, make_linked_customer, make_order
from tests.browser.conftest import SCREENSHOTS
from tests.console_helpers import PASSWORD, make_staff, open_conversation
from touchpoint.aftersales.models import Ticket, TicketEvent
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.console import create_console_app
from touchpoint.console.auth import find_staff
from touchpoint.console.models import Campaign, ConsoleNote
from touchpoint.customers.models import BehaviourEvent
from touchpoint.db import Database
from touchpoint.handoff import service as handoff
from touchpoint.messaging.models import OutboxMessage
from touchpoint.sandbox import Sandbox
from touchpoint.sandbox.files import tiny_png

LOCALES = ("en", "ru", "zh")
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
# What must never show: codes, reprs, message keys, machine dates.
FORBIDDEN = [
    "in_review", "item_received", "changed_mind", "distress", "console:", "staff:", "abandoned_cart",
    "product.viewed", "aftersales.", "console.ui.", "orders.status", "handoff.reason", "{'", "[]",
    "via=", "_id=", " UTC", "EUR", "journey.cart", "claimed by",
]
SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")  # snake_case: a code that slipped through
ISO_DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")
NAMES = {"en": "Automatica espresso", "ru": "Автоматика", "zh": "自动咖啡机"}
GAPS = ("你们有没有礼品卡？", "你们有没有礼品卡", "Do you sell gift cards?", "Доставка в Казань?")
PY_NONE = re.compile(r"(?<!\w)None(?![.\w])")  # Python's None (the English word "None." is fine)


@dataclass
class Console:
    url: str
    ids: dict[str, int]


@pytest.fixture
async def console(sqlite_db: Database, tmp_path: Any) -> AsyncIterator[Console]:
    db = sqlite_db
    for locale in LOCALES:
        await make_staff(db, f"staff{locale}", "manager", locale)
    # The files customers send live in "Telegram" (the sandbox); the console fetches them from there.
    sandbox = Sandbox()
    sandbox_url = await sandbox.start("127.0.0.1", 0)
    sandbox.user(701, first_name="Anna", language_code="ru")
    photo = sandbox.send_photo(701, tiny_png(240, 160, (196, 150, 90)), caption="Коробка")["message"]
    document = sandbox.send_document(701, file_name="чек.pdf")["message"]["document"]["file_id"]
    now = utcnow()
    async with db.session() as session:
        await make_catalogue(session)
        customer = await make_linked_customer(session, 701, first_name="Anna", locale="ru", phone="+4930111")
        await make_linked_customer(session, 702, first_name="Anna", locale="zh")
        order = await make_order(session, customer, "A-1001")
        order.total_minor = 34_900  # placed a day after the cart reminders below: journey revenue
        session.add(order)
        session.add(Campaign(name="Winter sale", segment="everyone", texts={"ru": "Скидки"}, recipients=4,
                             held_back={"no_consent": 2, "quiet_hours": 1, "active_handoff": 1},
                             scheduled_at=now, created_at=now, created_by="Demo manager"))
        zh = await find_staff(session, "staffzh")
        if zh is not None:
            zh.timezone = "Asia/Shanghai"  # their own time zone, not the shop's
            session.add(zh)
        ticket = Ticket(number="R-000777", customer_id=customer.id or 0, order_id=order.id, kind="return",
                        status="in_review", reason="damaged", details="The box was crushed",
                        items=[{"sku": "ESP-1", "quantity": 1, "name": NAMES}],
                        created_at=now, updated_at=now, first_response_due_at=now + timedelta(hours=4))
        session.add(ticket)
        await session.flush()
        session.add(TicketEvent(ticket_id=ticket.id or 0, kind="status", author="customer", status="new",
                                text="The box was crushed", created_at=now - timedelta(minutes=5)))
        session.add(TicketEvent(ticket_id=ticket.id or 0, kind="status", author="console:Demo manager",
                                status="in_review", created_at=now))
        session.add(ConsoleNote(subject="ticket", subject_id=ticket.id, kind="note", author="Demo manager",
                                text="Call the courier", created_at=now))
        session.add(BehaviourEvent(customer_id=customer.id, type="product.viewed",
                                   payload={"sku": "ESP-1", "via": "button"}, occurred_at=now))
        session.add(BehaviourEvent(customer_id=customer.id, type="reservation.created",
                                   payload={"via": "button", "reservation_id": 1}, occurred_at=now))
        session.add(OutboxMessage(customer_id=customer.id, chat_id=701, lane="marketing",
                                  template="journey.cart_reminder", journey_key="abandoned_cart",
                                  status="skipped", reason="journey_paused", due_at=now, created_at=now))
        for text in GAPS:
            session.add(BehaviourEvent(customer_id=customer.id, type="presale.question_unanswered",
                                       payload={"text": text}, occurred_at=now))
        ticket.csat = 4
        sent_at = order.created_at - timedelta(days=1)
        for key, status in (("abandoned_cart", "sent"), ("abandoned_cart", "sent"), ("win_back", "sent"),
                            ("post_delivery_checkin", "sent")):
            session.add(OutboxMessage(customer_id=customer.id, chat_id=701, lane="marketing",
                                      template="journey.cart_reminder", journey_key=key, status=status,
                                      due_at=now, created_at=now, sent_at=sent_at))
        ids = {"customer": customer.id or 0, "ticket": ticket.id or 0}
    opened = now - timedelta(minutes=7)
    conversation = await open_conversation(db, customer, "Где мой заказ?", opened_at=opened)
    async with db.session() as session:
        conversation.reason = "distress"
        session.add(conversation)
        handoff.add_transcript(session, customer.id or 0, "note", "", kind="claim", author="telegram:Bob",
                               conversation_id=conversation.id)
        handoff.add_transcript(session, customer.id or 0, "note", "claimed by Demo manager", kind="claim",
                               author="Demo manager", conversation_id=conversation.id)
        handoff.add_transcript(session, customer.id or 0, "in", "Коробка", kind="photo",
                               conversation_id=conversation.id, file_id=photo["photo"][-1]["file_id"])
        handoff.add_transcript(session, customer.id or 0, "in", "", kind="document", file_name="чек.pdf",
                               conversation_id=conversation.id, file_id=document)
    other = await make_linked_customer_in(db, 703, "Lev")
    done = await open_conversation(db, other, "Спасибо", opened_at=now - timedelta(hours=3))
    async with db.session() as session:
        handoff.close(session, done)
    ids["conversation"] = conversation.id or 0
    settings = Settings(journeys_file=None, bot_token=SecretStr("123:console-words"),
                        telegram_api_base=sandbox_url)
    app = create_console_app(settings, db)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Console(f"http://127.0.0.1:{port}", ids)
    finally:
        await runner.cleanup()
        await sandbox.stop()


async def make_linked_customer_in(db: Database, telegram_id: int, name: str) -> Any:
    async with db.session() as session:
        return await make_linked_customer(session, telegram_id, first_name=name, locale="en")


def pages(ids: dict[str, int]) -> list[str]:
    return ["/", "/inbox", "/inbox?view=mine", "/inbox?view=unassigned", "/inbox?view=resolved",
            f"/inbox/{ids['conversation']}", f"/inbox/{ids['conversation']}?view=resolved",
            "/tickets", "/tickets?status=in_review",
            f"/tickets/{ids['ticket']}", "/customers", "/customers?q=anna", f"/customers/{ids['customer']}",
            "/journeys", "/campaigns", "/staff", "/me", "/no-such-page", "/tickets/999999"]


@pytest.mark.parametrize("locale", LOCALES)
async def test_every_console_page_speaks_words_not_codes(browser: Any, console: Console, locale: str) -> None:
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(10_000)
    page = await context.new_page()
    try:
        await page.goto(console.url + "/login")
        await page.fill("#username", f"staff{locale}")
        await page.fill("#password", PASSWORD)
        await page.click("form button[type=submit]")
        await page.wait_for_url(console.url + "/")
        # Pictures for a person (and, with TOUCHPOINT_DOCS_SCREENSHOTS=1, for docs/console.md).
        shots = DOCS_IMG if os.environ.get("TOUCHPOINT_DOCS_SCREENSHOTS") == "1" else SCREENSHOTS
        shots.mkdir(parents=True, exist_ok=True)
        for path in pages(console.ids):
            await page.goto(console.url + path)
            await assert_words(page, locale, path)
            if path.startswith("/no-such") or path == "/tickets/999999":
                assert await page.locator("main a[href='/']").count() >= 1, (locale, path)  # a way back
        # The customer's photo comes through the console (signed in), the document as a download.
        await page.goto(console.url + f"/inbox/{console.ids['conversation']}")
        await page.locator("a.attachment img").evaluate("img => img.decode()")
        assert await page.locator("a.attachment img").evaluate("img => img.naturalWidth") > 0
        assert "чек.pdf" in await page.locator("a.attachment[download]").inner_text()
        # A campaign written in Russian only: the preview tells who gets which text; a test to oneself
        # without a Telegram id says what to do; once queued, who was held back and why.
        await page.goto(console.url + "/campaigns")
        await page.fill("#name", f"Spring {locale}")
        await page.fill("#text_ru", "Весенняя распродажа")
        await page.click("form[action='/campaigns/preview'] button[type=submit]")
        await assert_words(page, locale, "campaign preview")
        assert await page.locator("[data-testid^=fallback-]").count() == 2, locale  # en and zh readers
        await page.click("[data-testid=test-send]")
        assert await page.locator("[data-testid=notice]").count() == 1
        await assert_words(page, locale, "campaign test")
        preview_shot = shots / f"console-campaign-preview-{locale}-phone.png"
        await page.screenshot(path=str(preview_shot), full_page=True)
        await page.click("form.actions button:not([formaction])")
        await page.wait_for_url(console.url + "/campaigns")
        assert await page.locator("[data-testid=flash]").count() == 1
        await assert_words(page, locale, "campaign queued")
        # Every chart fits a 390 px phone: nothing wider than the screen, no text too small to read.
        await page.goto(console.url + "/")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390, locale
        widths = await page.evaluate(
            "[...document.querySelectorAll('svg.chart')].map(s => s.getBoundingClientRect().width)")
        assert len(widths) >= 5 and max(widths) <= 390, (locale, widths)
        smallest = await page.evaluate("Math.min(...[...document.querySelectorAll('svg.chart text')]"
                                       ".map(t => t.getBoundingClientRect().height))")
        assert smallest >= 10, (locale, smallest)
        assert await page.locator("[data-testid=revenue] svg.chart").count() == 1
        for name, path in (("dashboard", "/"), ("ticket", f"/tickets/{console.ids['ticket']}")):
            await page.goto(console.url + path)
            await page.screenshot(path=str(shots / f"console-{name}-{locale}-phone.png"), full_page=True)
        await page.set_viewport_size({"width": 1280, "height": 800})
        for name, path in (("inbox", f"/inbox/{console.ids['conversation']}"), ("journeys", "/journeys"),
                           ("customer", f"/customers/{console.ids['customer']}"), ("staff", "/staff"),
                           ("campaigns", "/campaigns")):
            await page.goto(console.url + path)
            await page.screenshot(path=str(shots / f"console-{name}-{locale}.png"))
    finally:
        await context.close()


async def assert_words(page: Any, locale: str, where: str) -> None:
    """The page's text holds no code, repr, message key or machine date."""
    text = await page.locator("main").inner_text()
    title = await page.title()
    for code in FORBIDDEN:
        assert code not in text and code not in title, (locale, where, code)
    assert not SNAKE.findall(text), (locale, where, SNAKE.findall(text))
    assert not ISO_DATE.findall(text), (locale, where)
    assert not PY_NONE.search(text), (locale, where)
