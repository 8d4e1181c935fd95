"""Referral notifications, sent through the outbox (so quiet hours, opt-out and caps apply)."""

from __future__ import annotations

import html
from typing import Any

from touchpoint.channels.base import Button
from touchpoint.channels.templates import Rendered, template
from touchpoint.i18n import Translator

# The bot's MenuCallback(action="invite") packs to this (the core does not import the bot).
INVITE_CALLBACK = "m:invite"


def _render(key: str, translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    text = translate(locale, key, name=html.escape(str(params.get("name") or "🙂")),
                     points=int(params["points"]))
    button = Button(translate(locale, "referrals.button.invite"), callback_data=INVITE_CALLBACK)
    return Rendered(text, ((button,),))


@template("referral.friend_joined")
def friend_joined(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    return _render("referrals.notify.friend_joined", translate, locale, params)


@template("referral.reward_earned")
def reward_earned(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    return _render("referrals.notify.reward_earned", translate, locale, params)


@template("referral.welcome_reward")
def welcome_reward(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    return _render("referrals.notify.welcome_reward", translate, locale, params)


@template("referral.reward_reversed")
def reward_reversed(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    return _render("referrals.notify.reward_reversed", translate, locale, params)
