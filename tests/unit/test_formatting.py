"""One voice for dates, money and counts: the helper every chat and console text formats through."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from touchpoint.catalog.codes import ALPHABET, reservation_code, reservation_id_from_code
from touchpoint.console.words import humanize
from touchpoint.formatting import (
    format_date,
    format_datetime,
    format_day,
    format_duration,
    format_money,
    format_time,
    format_weekday_time,
)
from touchpoint.i18n import get_translator

EVENING = datetime(2026, 12, 4, 19, 32, tzinfo=UTC)  # 20:32 in Berlin


@pytest.mark.parametrize(("locale", "day", "moment"), [
    ("en", "Dec 4, 2026", "Dec 4, 2026, 20:32"),
    ("ru", "4 дек. 2026\u202fг.", "4 дек. 2026\u202fг., 20:32"),
    ("zh", "2026年12月4日", "2026年12月4日 20:32"),
])
def test_dates_in_the_readers_locale_and_zone(locale: str, day: str, moment: str) -> None:
    assert format_date(EVENING, locale, "Europe/Berlin") == day
    assert format_datetime(EVENING, locale, "Europe/Berlin") == moment
    assert format_time(EVENING, locale, "Europe/Berlin") == "20:32"  # one 24-hour clock everywhere


def test_zh_dates_are_chinese_not_mixed() -> None:
    assert format_day(EVENING, "zh") == "12月4日"  # never "24 10月"
    assert format_weekday_time(EVENING, "zh", "Europe/Berlin") == "周五 20:32"
    assert format_date(date(2027, 1, 7), "zh") == "2027年1月7日"


def test_the_zone_moves_the_day() -> None:
    late = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)
    assert format_date(late, "en", "Asia/Shanghai") == "Dec 5, 2026"
    assert format_date(late, "en", "Not/AZone") == "Dec 4, 2026"  # an unknown zone reads as UTC


@pytest.mark.parametrize(("locale", "euros", "roubles"), [
    ("en", "€349.00", "RUB20.00"),
    ("ru", "349,00\xa0€", "20,00\xa0₽"),
    ("zh", "€349.00", "RUB20.00"),
])
def test_money_in_each_locale(locale: str, euros: str, roubles: str) -> None:
    assert format_money(34900, "EUR", locale) == euros  # never "349.00 EUR"
    assert format_money(2000, "RUB", locale) == roubles
    assert format_money(500, "JPY", "en") == "¥500"  # a currency without cents: minor units are yen


def test_durations_in_words() -> None:
    assert format_duration(5, "en") == "5 minutes"
    assert format_duration(5, "ru") == "5 минут"
    assert format_duration(5, "zh") == "5分钟"
    assert format_duration(None, "en") == "—"


@pytest.mark.parametrize(("n", "text"), [(1, "1 магазине"), (2, "2 магазинах"), (5, "5 магазинах"),
                                          (11, "11 магазинах"), (21, "21 магазине")])
def test_russian_has_three_plural_forms(n: int, text: str) -> None:
    t = get_translator()
    assert text in t.plural("ru", "presale.card.in_stores", n, count=n)


def test_english_and_chinese_plurals() -> None:
    t = get_translator()
    assert "in 1 store ·" in t.plural("en", "presale.card.in_stores", 1, count=1)
    assert "in 3 stores ·" in t.plural("en", "presale.card.in_stores", 3, count=3)
    assert "(s)" not in t.plural("en", "presale.card.in_stores", 3, count=3)
    assert "3 家门店" in t.plural("zh", "presale.card.in_stores", 3, count=3)


def test_reservation_codes_read_out_at_a_till() -> None:
    codes = [reservation_code(i) for i in range(1, 2000)]
    assert len(set(codes)) == len(codes)
    assert all(len(c) == 7 and c[3] == "-" and set(c.replace("-", "")) <= set(ALPHABET) for c in codes)
    assert codes[0][:3] != codes[1][:3]  # neighbours do not look alike
    for reservation_id in (1, 42, 123_456):
        code = reservation_code(reservation_id)
        assert reservation_id_from_code(code) == reservation_id
        assert reservation_id_from_code(code.lower().replace("-", " ")) == reservation_id
    assert reservation_id_from_code("nope") is None


def test_a_code_nobody_named_still_reads_as_words() -> None:
    assert humanize("abandoned_cart") == "Abandoned cart"
    assert humanize("order.status_changed") == "Order status changed"


def test_charts_keep_long_and_cjk_labels_whole_at_the_front() -> None:
    from touchpoint.console import charts

    svg = str(charts.bars([("你们有没有礼品卡？" * 2, 3.0), ("Do you sell gift cards?", 1.0)], "gaps"))
    assert "你们有没有礼品卡" in svg and 'viewBox="0 0 360' in svg  # phone-width, the start kept
    journeys = str(charts.grouped_bars([("Abandoned cart", [3, 2, 1, 0])], ["sent", "delivered", "clicked",
                                                                          "converted"], "journeys"))
    assert ">Abandoned cart<" in journeys and 'viewBox="0 0 360' in journeys
