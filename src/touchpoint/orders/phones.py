"""Phone numbers in one shape (E.164), so a shared contact matches the store's record."""

from __future__ import annotations

import phonenumbers


def normalize_phone(raw: str, region: str) -> str | None:
    """E.164 (``+4915112345671``) or None when it is not a possible number.

    Telegram sends contacts without the "+", so digits-only input is tried as international first.
    """
    candidates = [raw]
    digits = raw.strip()
    if digits.isdigit():
        candidates.insert(0, "+" + digits)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None
