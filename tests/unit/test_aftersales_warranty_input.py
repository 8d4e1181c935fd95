"""Reading what customers type when they register a warranty."""

from __future__ import annotations

from datetime import date

import pytest

from touchpoint.aftersales.warranty import clean_serial, parse_purchase_date

TODAY = date(2026, 11, 23)


@pytest.mark.parametrize("text", ["2026-03-15", "15.03.2026", " 15/03/2026 "])
def test_dates_as_people_write_them(text: str) -> None:
    assert parse_purchase_date(text, TODAY) == date(2026, 3, 15)


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "2026-11-24", "1999-01-01", ""])
def test_unreadable_future_or_ancient_dates(text: str) -> None:
    assert parse_purchase_date(text, TODAY) is None


def test_serials() -> None:
    assert clean_serial(" sn-12345/a ") == "SN-12345/A"
    assert clean_serial("ab") is None
    assert clean_serial("has space") is None
    assert clean_serial("x" * 65) is None
