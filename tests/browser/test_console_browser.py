"""The staff console in a real browser, against the sandbox, the bot and the outbox sender."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from playwright.async_api import expect
from sqlmodel import select

from tests.browser.conftest import Stack, screenshot
from tests.console_helpers import PASSWORD, make_handoff, make_ticket, open_conversation
from tests.e2e.harness import eventually
from tests.factories import make_customer
from touchpoint.clock import utcnow
from touchpoint.customers.models import BehaviourEvent, Customer
from touchpoint.handoff.models import Conversation
from touchpoint.i18n import get_translator
from touchpoint.messaging.models import OutboxMessage
from touchpoint.messaging.outbox import enqueue
from touchpoint.messaging.rules import Lane
from touchpoint.understanding.service import understand_message

PATTERN = r"^[A-Z]{2,4}-?\d{4,10}$"

t = get_translator()


async def log_in(page: Any, stack: Stack, password: str = PASSWORD, path: str = "/") -> None:
    await page.goto(stack.console_url + path)
    await page.get_by_label("Name").fill("alice")
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()


async def test_console_without_session_redirects_to_login_then_back(page: Any, stack: Stack) -> None:
    await page.goto(stack.console_url + "/tickets")
    await expect(page).to_have_url(re.compile(r"/login\?next=(%2F|/)tickets$"))
    await expect(page.get_by_role("heading", name="Staff log-in")).to_be_visible()
    await page.get_by_label("Name").fill("alice")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(f"{stack.console_url}/tickets")
    await expect(page.get_by_test_id("tickets-empty")).to_be_visible()


async def test_console_wrong_password_refused_and_throttled(page: Any, stack: Stack) -> None:
    for _ in range(stack.harness.settings.console_login_attempts):
        await log_in(page, stack, password="wrong password")
        await expect(page.get_by_test_id("login-error")).to_have_text("Wrong name or password.")
    await log_in(page, stack)  # the right password, too late
    await expect(page.get_by_test_id("login-error")).to_contain_text("Too many attempts")
    await page.goto(stack.console_url + "/")
    await expect(page).to_have_url(re.compile(r"/login\?next="))


async def test_console_post_without_csrf_token_is_refused(page: Any, stack: Stack) -> None:
    _, conversation = await make_handoff(stack.harness.db, 611)
    await log_in(page, stack)
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    # The browser's own session cookie, but no token: a forged cross-site form looks like this.
    response = await page.request.post(
        f"{stack.console_url}/inbox/{conversation.id}/reply", form={"text": "forged"}
    )
    assert response.status == 403
    async with stack.harness.db.session() as session:
        assert (await session.exec(select(OutboxMessage))).all() == []


async def test_console_reply_from_inbox_arrives_in_sandbox_chat(
    page: Any, browser: Any, stack: Stack
) -> None:
    stack.sandbox.user(612, first_name="Mia", language_code="en")
    await stack.harness.say(612, "/start")  # the bot knows Mia now
    async with stack.harness.db.session() as session:
        customer = (await session.exec(select(Customer).where(Customer.telegram_id == 612))).one()
    conversation = await open_conversation(stack.harness.db, customer, "My parcel has not arrived")
    stack.start_sender()

    await log_in(page, stack, path="/inbox")
    await expect(page.get_by_test_id("conversation-link")).to_contain_text("Mia")
    await screenshot(page, "console-inbox")
    await page.get_by_test_id("conversation-link").click()
    await expect(page.get_by_test_id("transcript")).to_contain_text("My parcel has not arrived")
    await expect(page.get_by_test_id("context-card")).to_contain_text("Mia")

    after = stack.harness.last_message_id(612)
    await page.get_by_label("Reply to the customer").fill("Sorry Mia, it is on its way & due tomorrow")
    await page.get_by_role("button", name="Send reply").click()
    await expect(page.get_by_test_id("flash")).to_have_text("Reply sent.")
    arrived = await stack.sandbox.wait_for_bot_message(612, after_message_id=after, timeout=10)
    assert arrived["text"] == "💬 Alice:\nSorry Mia, it is on its way & due tomorrow"
    # The handoff recorded it: in the transcript (shown on the page) and as the first response.
    await expect(page.get_by_test_id("transcript-staff").last).to_contain_text("it is on its way")
    async with stack.harness.db.session() as session:
        answered = await session.get(Conversation, conversation.id)
    assert answered is not None and answered.first_response_at is not None

    # The customer writes back in the chat (the bot's handoff relay records it); the open console
    # page shows it without a reload.
    stack.sandbox.send_text(612, "Thank you!")
    await expect(page.get_by_test_id("transcript-in").last).to_contain_text("Thank you!")
    await screenshot(page, "console-conversation")

    chat = await browser.new_page()
    await chat.goto(stack.sandbox_url + "/")
    await chat.get_by_test_id("person-612").click()
    reply = chat.get_by_test_id("message-text").filter(has_text="it is on its way & due tomorrow")
    await expect(reply).to_have_count(1)
    await chat.close()

    # Closing from the console asks the customer for a rating once, as /close in the topic does;
    # the rating button works with the bot's own handler.
    after = stack.harness.last_message_id(612)
    page.once("dialog", lambda dialog: dialog.accept())  # "Close the conversation with …?"
    await page.get_by_role("button", name="Close conversation").click()
    await expect(page).to_have_url(f"{stack.console_url}/inbox")
    ask = await stack.sandbox.wait_for_bot_message(
        612, after_message_id=after, predicate=lambda m: m.get("text") == t("en", "handoff.csat.ask"))
    thanks = await stack.harness.press(612, ask, "⭐⭐⭐⭐⭐")
    assert thanks["text"] == t("en", "handoff.csat.thanks")

    async def rated() -> bool:  # committed right after the bot's answer
        async with stack.harness.db.session() as session:
            stored = await session.get(Conversation, conversation.id)
        return stored is not None and (stored.status, stored.csat) == ("closed", 5)

    await eventually(rated)
    # (the question was edited into the thanks when answered)
    csat_texts = (t("en", "handoff.csat.ask"), t("en", "handoff.csat.thanks"))
    assert len([m for m in stack.sandbox.bot_messages(612) if m.get("text") in csat_texts]) == 1


async def test_console_ticket_status_change_notifies_customer(page: Any, stack: Stack) -> None:
    stack.sandbox.user(613, first_name="Oleg", language_code="ru")
    await stack.harness.say(613, "/start")
    async with stack.harness.db.session() as session:
        customer = (await session.exec(select(Customer).where(Customer.telegram_id == 613))).one()
    ticket = await make_ticket(
        stack.harness.db, customer, "R-000613", first_response_due_at=utcnow() - timedelta(hours=2)
    )
    stack.start_sender()

    await log_in(page, stack, path="/tickets?overdue=1")
    await page.get_by_role("link", name="R-000613").click()
    await expect(page.get_by_test_id("ticket-status")).to_have_text(t("en", "aftersales.status.new"))
    after = stack.harness.last_message_id(613)
    await page.get_by_label("New status (the customer is notified)").select_option("approved")
    await page.get_by_role("button", name="Change status").click()
    await expect(page.get_by_test_id("ticket-status")).to_have_text(t("en", "aftersales.status.approved"))
    await expect(page.get_by_test_id("ticket-history")).to_contain_text("Alice (console)")
    # The after-sales lifecycle told the customer, in their language.
    notice = await stack.sandbox.wait_for_bot_message(613, after_message_id=after, timeout=10)
    status = t("ru", "aftersales.status.approved")
    assert notice["text"].startswith(t("ru", "aftersales.notify.status", number=ticket.number, status=status))
    # Only the lifecycle's next steps are offered, and a refusal is explained; nothing changes.
    choice = page.get_by_label("New status (the customer is notified)")
    options = await choice.locator("option").all_inner_texts()
    assert t("en", "aftersales.status.new") not in options
    assert t("en", "aftersales.status.item_received") in options
    await choice.select_option("rejected")
    await page.get_by_role("button", name="Change status").click()
    await expect(page.get_by_test_id("flash")).to_contain_text("write the reason")
    await expect(page.get_by_test_id("ticket-status")).to_have_text(t("en", "aftersales.status.approved"))


async def test_console_paused_journey_sends_no_nudge(page: Any, stack: Stack) -> None:
    stack.sandbox.user(614, first_name="Ana", language_code="en")
    await stack.harness.say(614, "/start")
    async with stack.harness.db.session() as session:
        customer = (await session.exec(select(Customer).where(Customer.telegram_id == 614))).one()
        customer.marketing_consent = True
        session.add(customer)
        await enqueue(
            session,
            stack.harness.settings,
            customer,
            "console.campaign",
            {"texts": {"en": "Your cart misses you"}},
            lane=Lane.MARKETING,
            journey_key="abandoned_cart",
        )

    await log_in(page, stack, path="/journeys")
    card = page.get_by_test_id("journey-abandoned_cart")
    page.once("dialog", lambda dialog: dialog.accept())  # "Pause …? Nobody new is enrolled …"
    await card.get_by_role("button", name="Pause").click()
    await expect(page.get_by_test_id("journey-paused")).to_be_visible()
    await screenshot(page, "console-journeys")

    messages_before = len(stack.sandbox.bot_messages(614))
    assert await stack.sender.drain_once() == 0  # nothing left to send
    assert len(stack.sandbox.bot_messages(614)) == messages_before
    async with stack.harness.db.session() as session:
        row = (await session.exec(select(OutboxMessage))).one()
    assert (row.status, row.reason) == ("skipped", "journey_paused")


async def test_console_dashboard_shows_charts(page: Any, stack: Stack) -> None:
    async with stack.harness.db.session() as session:
        customers = [await make_customer(session, telegram_id) for telegram_id in range(620, 626)]
        for customer in customers[:4]:
            session.add(BehaviourEvent(customer_id=customer.id, type="product.viewed", occurred_at=utcnow()))
        # No FAQ: no answer.
        await understand_message(session, customers[0].id or 0, "Do you ship to Norway?", PATTERN)
    await log_in(page, stack)
    funnel = page.get_by_test_id("funnel")
    await expect(funnel.locator("svg title")).to_have_text("Customer journey funnel")
    await expect(funnel.locator("svg")).to_contain_text("considering")
    await expect(page.locator("svg desc").last).to_contain_text("Do you ship to Norway?")
    await screenshot(page, "console-dashboard")
    await page.set_viewport_size({"width": 390, "height": 844})  # a phone
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    await screenshot(page, "console-dashboard-phone")
