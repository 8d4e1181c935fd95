"""Referral notifications, sent through the outbox (so quiet hours, opt-out and caps apply)."""

from __future__ import annotations

from typing import Any

from touchpoint.formatting import format_money
from touchpoint.i18n import Translator
from touchpoint.markup import esc
from touchpoint.messaging.base import Button
from touchpoint.messaging.templates import Rendered, template

# The bot's MenuCallback(action="invite") packs to this (the core does not import the bot).
INVITE_CALLBACK = "m:invite"


def _name(params: dict[str, Any]) -> str:
    return esc(str(params.get("name") or "🙂"))


def _with_invite_button(translate: Translator, locale: str, text: str) -> Rendered:
    button = Button(translate(locale, "referrals.button.invite"), callback_data=INVITE_CALLBACK)
    return Rendered(text, ((button,),))


def _render(key: str, translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    text = translate(locale, key, name=_name(params), points=int(params["points"]))
    return _with_invite_button(translate, locale, text)


@template("referral.friend_joined")
def friend_joined(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    return _render("referrals.notify.friend_joined", translate, locale, params)


@template("referral.reward_earned")
def reward_earned(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    return _render("referrals.notify.reward_earned", translate, locale, params)


@template("referral.welcome_reward")
def welcome_reward(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    """Welcome points, a welcome voucher, or both (as configured)."""
    lines = []
    if params.get("points"):
        lines.append(translate(locale, "referrals.notify.welcome_reward", name=_name(params),
                               points=int(params["points"])))
    if params.get("voucher"):
        lines.append(translate(
            locale, "referrals.notify.welcome_voucher", name=_name(params),
            voucher=esc(str(params["voucher"])),
            amount=format_money(int(params["amount_minor"]), str(params["currency"]), locale),
        ))
    return _with_invite_button(translate, locale, "\n\n".join(lines))


@template("referral.reward_reversed")
def reward_reversed(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    return _render("referrals.notify.reward_reversed", translate, locale, params)


@template("referral.reward_cancelled")
def reward_cancelled(translate: Translator, locale: str, params: dict[str, Any]) -> Rendered:
    """Pending invite points cancelled: the qualifying order came back before its window ended."""
    points = int(params["points"])
    text = translate.plural(locale, "referrals.notify.reward_cancelled", points,
                            name=_name(params), points=points)
    return _with_invite_button(translate, locale, text)
