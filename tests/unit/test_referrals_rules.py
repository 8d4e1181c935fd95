"""Pure referral rules: the code alphabet, typed code variants, self-referral and payout decisions."""

from __future__ import annotations

import pytest

from touchpoint.referrals.rules import (
    ALPHABET,
    Party,
    invite_link,
    new_code,
    normalize_code,
    payout_decision,
    self_referral,
)


def test_codes_avoid_ambiguous_characters() -> None:
    assert not set("0O1IL") & set(ALPHABET)
    codes = {new_code() for _ in range(200)}
    assert all(len(code) == 6 and set(code) <= set(ALPHABET) for code in codes)
    assert len(codes) > 190


@pytest.mark.parametrize("typed", [
    "K7XM2Q", "k7xm2q", "  K7xm2Q ", "K7X-M2Q", "k7x m2q", "ref_K7XM2Q",
    "https://t.me/touchpoint_bot?start=ref_k7xm2q",
])
def test_typed_code_variants_are_read(typed: str) -> None:
    assert normalize_code(typed) == "K7XM2Q"


@pytest.mark.parametrize("typed", ["", "hi", "K0XM2Q", "hello world", "K7XM2Q!!", "ÄÖÜ123"])
def test_not_a_code(typed: str) -> None:
    assert normalize_code(typed) is None


def test_invite_link_is_a_valid_start_payload() -> None:
    assert invite_link("shop_bot", "K7XM2Q") == "https://t.me/shop_bot?start=ref_K7XM2Q"


def party(customer_id: int, telegram_id: int, phone: str | None = None, store: str | None = None) -> Party:
    return Party(customer_id, telegram_id, phone, store)


def test_self_referral_by_telegram_id_phone_or_store_customer() -> None:
    assert self_referral(party(1, 10), party(1, 10)) == "own_code"
    assert self_referral(party(1, 10, "+491"), party(2, 20, "+491")) == "same_phone"
    assert self_referral(party(1, 10, store="S1"), party(2, 20, store="S1")) == "same_store_customer"
    assert self_referral(party(1, 10, "+491", "S1"), party(2, 20, "+492", "S2")) is None
    assert self_referral(party(1, 10), party(2, 20)) is None  # unknown phones are not "the same"


def test_payout_decision() -> None:
    assert payout_decision(6, 5, 0, 10) == ("held", "velocity")
    assert payout_decision(5, 5, 10, 10) == ("capped", "monthly_cap")
    assert payout_decision(1, 5, 9, 10) == ("qualified", "first_order_delivered")
