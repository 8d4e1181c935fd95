"""The sandbox's web chat page in a real browser, chatting with the real bot (the demo stack)."""

from __future__ import annotations

from typing import Any

from aiogram.types import KeyboardButton, ReplyKeyboardMarkup
from playwright.async_api import expect

from tests.browser.conftest import Stack, screenshot
from touchpoint.i18n import get_translator

t = get_translator()


async def test_console_chat_page_text_button_and_contact(page: Any, stack: Stack) -> None:
    await page.goto(stack.sandbox_url + "/")
    await page.get_by_test_id("new-person-name").fill("Lea")
    await page.get_by_test_id("new-person-language").select_option("ru")
    await page.get_by_role("button", name="Add customer").click()
    await expect(page.get_by_role("button", name="Lea (ru)")).to_be_visible()
    user_id = await page.evaluate("chat.chatId")  # the page's selected chat: Lea's

    # Text: /start brings the welcome and the main menu in the customer's language.
    await page.get_by_test_id("composer-text").fill("/start")
    await page.get_by_test_id("composer-send").click()
    welcome = t("ru", "start.welcome", name="Lea", brand="Brewhaus").split("\n")[0]
    messages = page.get_by_test_id("message")
    await expect(messages.last).to_contain_text(welcome)

    # A button press: the language menu, then English.
    await messages.last.get_by_role("button", name=t("ru", "menu.language")).click()
    await expect(messages.last).to_contain_text(t("ru", "language.choose"))
    await messages.last.get_by_role("button", name="English").click()
    await expect(
        page.get_by_test_id("message-text").filter(has_text=t("en", "language.changed"))
    ).to_be_visible()

    # Contact sharing through a reply-keyboard button (the browser's prompt asks for the number).
    assert stack.harness.bot is not None
    await stack.harness.bot.send_message(
        user_id,
        "Share your phone?",
        reply_markup=ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text="📱 Share my number", request_contact=True)]], resize_keyboard=True
        ),
    )
    page.once("dialog", lambda dialog: dialog.accept("+49 30 1234567"))
    await page.get_by_test_id("reply-button").get_by_text("📱 Share my number").click()
    await expect(page.get_by_test_id("message").filter(has_text="📞 +49 30 1234567")).to_be_visible()
    shared = [u for u in stack.sandbox.updates if u.get("message", {}).get("contact")]
    assert shared and shared[-1]["message"]["contact"]["user_id"] == user_id
    # The bot took it: no shop account has this number, and it says so.
    await expect(
        page.get_by_test_id("message-text").filter(has_text=t("en", "orders.link.no_match"))
    ).to_be_visible()
    await screenshot(page, "sandbox-chat")
