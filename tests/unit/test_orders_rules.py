"""Pure order rules: order number format, phone normalisation, callback data, card rendering."""

from __future__ import annotations

import pytest

from bot.handlers.orders import OrderCallback
from touchpoint.config import load_settings
from touchpoint.i18n import get_translator
from touchpoint.messaging.templates import render
from touchpoint.orders.models import OrderStatus
from touchpoint.orders.phones import normalize_phone
from touchpoint.orders.render import detail_callback
from touchpoint.orders.service import clean_order_number
from touchpoint.wiring import load_all_templates

settings = load_settings(_env_file=None)
t = get_translator()


@pytest.mark.parametrize(("raw", "expected"), [
    ("BH-100198", "BH-100198"), (" bh-100198 ", "BH-100198"), ("BH 100198", "BH100198"),
    ("100198", None), ("BH-12", None), ("'; DROP TABLE orders;--", None), ("B" * 40, None),
])
def test_order_numbers_are_checked_before_any_query(raw: str, expected: str | None) -> None:
    assert clean_order_number(settings, raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("4915112345671", "+4915112345671"), ("+49 151 1234 5671", "+4915112345671"),
    ("0151 12345671", "+4915112345671"), ("12", None), ("not a phone", None),
])
def test_phones_become_e164(raw: str, expected: str | None) -> None:
    assert normalize_phone(raw, "DE") == expected


def test_core_callback_matches_the_bot_callback() -> None:
    assert detail_callback("BH-100198") == OrderCallback(action="d", number="BH-100198").pack()


@pytest.mark.parametrize("locale", ["en", "ru", "zh"])
@pytest.mark.parametrize("status", list(OrderStatus))
def test_every_status_has_a_card_in_every_language(locale: str, status: OrderStatus) -> None:
    load_all_templates()
    card = render(t, locale, "order.status", {"number": "BH-1", "status": status.value,
                                              "tracking_url": "https://t.example/1"})
    assert "BH-1" in card.text and f"orders.card.msg.{status.value}" not in card.text
    assert [b.url or b.callback_data for row in card.buttons for b in row] == [
        "https://t.example/1", "ord:d:BH-1", "m:human"]
