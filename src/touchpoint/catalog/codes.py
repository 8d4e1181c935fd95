"""Reservation numbers a person can read out at a till: six characters from an alphabet without
look-alikes (no I, L, O, U; Crockford's base 32), grouped three and three, e.g. "K7Q-4XM".

The code is the reservation's id scrambled by an invertible multiplication, so neighbouring
reservations do not get neighbouring codes, and staff can turn a code back into the id."""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BITS = 30  # six characters of five bits: about a billion reservations
_MOD = 1 << _BITS
_FACTOR = 387_420_489  # 3**18: odd, hence invertible modulo 2**30
_INVERSE = pow(_FACTOR, -1, _MOD)
_READ_AS = {"O": "0", "I": "1", "L": "1", "U": "V"}


def reservation_code(reservation_id: int) -> str:
    value = (int(reservation_id) * _FACTOR) % _MOD
    chars = [ALPHABET[(value >> shift) & 31] for shift in range(25, -1, -5)]
    return "".join(chars[:3]) + "-" + "".join(chars[3:])


def reservation_id_from_code(code: str) -> int | None:
    """The id behind a code as a person typed it (any case, with or without the dash), else None."""
    cleaned = "".join(_READ_AS.get(c, c) for c in code.upper() if c.isalnum())
    if len(cleaned) != 6 or any(c not in ALPHABET for c in cleaned):
        return None
    value = 0
    for char in cleaned:
        value = (value << 5) | ALPHABET.index(char)
    return (value * _INVERSE) % _MOD or None
