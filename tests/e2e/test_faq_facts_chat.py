"""The referral FAQ as a customer reads it agrees with /invite (hardening item 25)."""

from __future__ import annotations

from tests.e2e.harness import BotHarness


async def test_referral_question_states_the_configured_rewards(shop: BotHarness) -> None:
    shop.sandbox.user(1951, language_code="en")
    reply = await shop.say(1951, "Do you have a referral programme?")
    text = reply["text"]
    assert "you get 500 points" in text and "they get 300 points" in text and "€20.00 or more" in text
    assert "200 points" not in text and "€10 off" not in text and "{" not in text

    shop.sandbox.user(1952, language_code="ru")
    reply = await shop.say(1952, "Есть реферальная программа?")
    assert "а вы — 500 баллов" in reply["text"] and "{" not in reply["text"]
