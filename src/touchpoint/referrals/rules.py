"""Pure referral rules: the code alphabet, reading typed codes, and the fraud checks that need no DB."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote

# No 0/O and no 1/I/L: a code read aloud or copied by hand cannot be mistaken.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6
_TYPED = re.compile(r"(?:start=)?(?:ref_)?([A-Za-z0-9]{4,16})$")


def new_code(length: int = CODE_LENGTH) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def normalize_code(text: str) -> str | None:
    """A typed code in any case, with spaces or dashes, or the whole invite link → the code, else None."""
    cleaned = re.sub(r"[\s\-]", "", text.strip())
    cleaned = cleaned.removeprefix("ref_") if cleaned.lower().startswith("ref_") else cleaned
    match = _TYPED.search(cleaned)
    if match is None:
        return None
    code = match.group(1).upper()
    return code if all(char in ALPHABET for char in code) else None


def format_money(minor: int, currency: str) -> str:
    return f"{minor / 100:.2f} {currency}"


def invite_link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username}?start=ref_{code}"


def share_url(link: str, text: str) -> str:
    """Telegram's share sheet: the customer picks a chat and the prepared text goes there."""
    return f"https://t.me/share/url?url={quote(link, safe='')}&text={quote(text, safe='')}"


@dataclass(frozen=True, slots=True)
class Party:
    """What the fraud rules compare about the two sides of a referral."""

    customer_id: int
    telegram_id: int
    phone: str | None
    store_customer_id: str | None


def self_referral(referrer: Party, referee: Party) -> str | None:
    """The reason a referral is really the same person on both sides, or None."""
    if referrer.customer_id == referee.customer_id or referrer.telegram_id == referee.telegram_id:
        return "own_code"
    if referrer.phone and referrer.phone == referee.phone:
        return "same_phone"
    if referrer.store_customer_id and referrer.store_customer_id == referee.store_customer_id:
        return "same_store_customer"
    return None


def payout_decision(
    joins_in_velocity_window: int, velocity_max: int, paid_this_month: int, monthly_cap: int
) -> tuple[str, str | None]:
    """Status and reason for a referral whose order qualified: hold, pay the newcomer only, or pay both."""
    if joins_in_velocity_window > velocity_max:
        return "held", "velocity"
    if paid_this_month >= monthly_cap:
        return "capped", "monthly_cap"
    return "qualified", "first_order_delivered"
