"""Pure referral rules: the code alphabet, typed code variants, self-referral and payout decisions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from touchpoint.referrals.rules import (
    ALPHABET,
    Party,
    invite_link,
    new_code,
    normalize_address,
    normalize_code,
    normalize_email,
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


@pytest.mark.parametrize(("a", "b"), [
    ("Jane.Doe+shop@gmail.com", "janedoe@googlemail.com"),
    ("JANE@web.de", " jane+promo@WEB.DE "),
])
def test_the_same_mailbox_however_spelled(a: str, b: str) -> None:
    assert normalize_email(a) == normalize_email(b) is not None


def test_dots_matter_outside_gmail_and_junk_is_no_address() -> None:
    assert normalize_email("j.doe@web.de") != normalize_email("jdoe@web.de")
    assert normalize_email("not-an-email") is None and normalize_email(None) is None


def test_the_same_delivery_address_however_written() -> None:
    same = {normalize_address(a) for a in ("Hauptstraße 5, 10115 Berlin", "10115 Berlin, Hauptstr. 5",
                                           "HAUPTSTRASSE 5 10115 BERLIN")}
    assert len(same) == 1 and None not in same
    assert normalize_address("Hauptstraße 7, 10115 Berlin") not in same


def test_self_referral_by_email_or_address() -> None:
    referrer = Party(1, 10, None, "S-1", emails=frozenset({"jane@gmail.com"}),
                     addresses=frozenset({"10115 5 berlin hauptstr"}))
    by_mail = Party(2, 20, None, "S-2", emails=frozenset({"jane@gmail.com"}))
    by_address = Party(3, 30, None, "S-3", addresses=frozenset({"10115 5 berlin hauptstr"}))
    by_record_phone = Party(4, 40, None, "S-4", phones=frozenset({"+4930123456"}))
    assert self_referral(referrer, by_mail) == "same_email"
    assert self_referral(referrer, by_address) == "same_address"
    assert self_referral(replace(referrer, phone="+4930123456"), by_record_phone) == "same_phone"
    assert self_referral(referrer, Party(5, 50, None, "S-5")) is None
