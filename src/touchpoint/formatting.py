"""One voice for dates, times, durations and money: every text a customer or staff member reads
formats them here, through Babel, in the reader's locale (en, ru, zh) and time zone.

- ``format_date``: "Dec 4, 2026" · "4 дек. 2026 г." · "2026年12月4日"
- ``format_day``: the day without the year, "Dec 4" · "4 дек." · "12月4日"
- ``format_datetime``: "Dec 4, 2026, 20:32" · "4 дек. 2026 г., 20:32" · "2026年12月4日 20:32"
- ``format_time``: "20:32" (24-hour in every locale: one clock for the whole chat)
- ``format_money``: integer minor units plus currency, "€349.00" · "349,00 €" · "€349.00"
- ``format_duration``: "5 minutes" · "5 минут" · "5分钟"
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date as _babel_date
from babel.dates import format_skeleton, format_timedelta, get_datetime_format
from babel.numbers import format_currency, format_decimal, get_currency_precision

# Babel locale per supported locale (zh: simplified Chinese, the mainland's conventions).
BABEL_LOCALES = {"en": "en", "ru": "ru", "zh": "zh_Hans_CN"}
DASH = "—"


def babel_locale(locale: str | None) -> str:
    return BABEL_LOCALES.get((locale or "en").split("-")[0].split("_")[0], "en")


def _local(value: datetime, tz: str | ZoneInfo | None) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo("UTC"))  # the database stores UTC
    if tz is None:
        return value
    return value.astimezone(tz if isinstance(tz, ZoneInfo) else _zone(tz))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def format_date(value: date | datetime | None, locale: str | None, tz: str | ZoneInfo | None = None) -> str:
    """A day with its year, the locale's medium style."""
    if value is None:
        return DASH
    day = _local(value, tz).date() if isinstance(value, datetime) else value
    return _babel_date(day, "medium", locale=babel_locale(locale))


def format_day(value: date | datetime | None, locale: str | None, tz: str | ZoneInfo | None = None) -> str:
    """A day and month without the year (chart axes, "until Dec 4")."""
    if value is None:
        return DASH
    day = _local(value, tz).date() if isinstance(value, datetime) else value
    return format_skeleton("MMMd", day, locale=babel_locale(locale))


def format_time(value: datetime | None, locale: str | None, tz: str | ZoneInfo | None = None) -> str:
    if value is None:
        return DASH
    return format_skeleton("Hm", _local(value, tz), locale=babel_locale(locale))


def format_weekday(value: date | datetime | None, locale: str | None) -> str:
    """The day's full name: "Monday" · "понедельник" · "星期一"."""
    if value is None:
        return DASH
    return _babel_date(value, "EEEE", locale=babel_locale(locale))


def format_weekday_time(value: datetime | None, locale: str | None, tz: str | ZoneInfo | None = None) -> str:
    """When someone is back: "Mon 09:00" · "пн 09:00" · "周一 09:00"."""
    if value is None:
        return DASH
    local = _local(value, tz)
    return f"{format_skeleton('E', local, locale=babel_locale(locale))} {format_time(local, locale)}"


def format_datetime(value: datetime | None, locale: str | None, tz: str | ZoneInfo | None = None) -> str:
    """Day, year and a 24-hour time, joined the locale's way."""
    if value is None:
        return DASH
    local = _local(value, tz)
    pattern = str(get_datetime_format("medium", locale=babel_locale(locale))).replace("'", "")
    return (pattern.replace("{1}", format_date(local, locale))
            .replace("{0}", format_time(local, locale)))


def format_money(minor: int, currency: str, locale: str | None) -> str:
    """Integer minor units (cents) plus an ISO currency code, e.g. ``format_money(34900, "EUR", "en")``."""
    digits = get_currency_precision(currency)
    amount = Decimal(int(minor)).scaleb(-digits)
    return format_currency(amount, currency, locale=babel_locale(locale))


def format_number(value: int | float, locale: str | None) -> str:
    return format_decimal(value, locale=babel_locale(locale))


def format_duration(minutes: float | None, locale: str | None) -> str:
    """A length of time in words, rounded to its largest sensible unit ("2 hours", "2 часа")."""
    if minutes is None:
        return DASH
    return format_timedelta(timedelta(minutes=minutes), threshold=2, locale=babel_locale(locale))
