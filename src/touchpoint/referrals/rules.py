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


def invite_link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username}?start=ref_{code}"


def share_url(link: str, text: str) -> str:
    """Telegram's share sheet: the customer picks a chat and the prepared text goes there."""
    return f"https://t.me/share/url?url={quote(link, safe='')}&text={quote(text, safe='')}"


# Mail providers that ignore dots in the local part (and deliver googlemail.com to gmail.com).
GMAIL_LIKE = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
# Address words written many ways; compared after case folding (ß → ss) and punctuation removal.
_ADDRESS_WORDS = {"strasse": "str", "straße": "str", "street": "st", "st": "st", "avenue": "ave",
                  "road": "rd", "platz": "pl", "ulitsa": "ul", "улица": "ул"}
_NOT_WORD = re.compile(r"[^\w]+")


def normalize_email(raw: str | None) -> str | None:
    """One spelling per mailbox: case folded, "+tag" dropped, dots dropped for Gmail-like hosts."""
    if not raw or "@" not in raw:
        return None
    local, _, domain = raw.strip().casefold().rpartition("@")
    local = local.split("+", 1)[0]
    domain = domain.strip().rstrip(".")
    if domain in GMAIL_LIKE:
        domain = GMAIL_LIKE[domain]
        local = local.replace(".", "")
    return f"{local}@{domain}" if local and domain else None


def normalize_address(raw: str | None) -> str | None:
    """A delivery address as a bag of words: case, punctuation, word order and "Straße"/"Str."
    spellings do not make two addresses differ."""
    if not raw:
        return None
    words = [w for w in _NOT_WORD.split(raw.casefold()) if w]
    words = [_ADDRESS_WORDS.get(w, w) for w in words]
    # "Hauptstraße" → "hauptstr", glued street names like the spaced ones.
    words = [w[: -len("strasse")] + "str" if w.endswith("strasse") and len(w) > 7 else w for w in words]
    return " ".join(sorted(words)) or None


@dataclass(frozen=True, slots=True)
class Party:
    """What the fraud rules compare about the two sides of a referral: the chat account and
    everything the store's records say about the person (all normalised)."""

    customer_id: int
    telegram_id: int
    phone: str | None
    store_customer_id: str | None
    phones: frozenset[str] = frozenset()  # E.164: store record, order contacts
    emails: frozenset[str] = frozenset()  # normalize_email: store record, order contacts
    addresses: frozenset[str] = frozenset()  # normalize_address: delivery addresses of orders


def self_referral(referrer: Party, referee: Party) -> str | None:
    """The reason a referral is really the same person on both sides, or None."""
    if referrer.customer_id == referee.customer_id or referrer.telegram_id == referee.telegram_id:
        return "own_code"
    referrer_phones = referrer.phones | ({referrer.phone} if referrer.phone else set())
    referee_phones = referee.phones | ({referee.phone} if referee.phone else set())
    if referrer_phones & referee_phones:
        return "same_phone"
    if referrer.store_customer_id and referrer.store_customer_id == referee.store_customer_id:
        return "same_store_customer"
    if referrer.emails & referee.emails:
        return "same_email"
    if referrer.addresses & referee.addresses:
        return "same_address"
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
