"""Store hours in the store's own time zone: open now, closes at, opens today/tomorrow/on a day."""

from datetime import UTC, datetime

from touchpoint.catalog.hours import store_status

WEEK = {"mon": "10:00-20:00", "tue": "10:00-20:00", "wed": "10:00-20:00", "thu": "10:00-20:00",
        "fri": "07:00-01:00", "sat": "10:00-24:00", "sun": None}
BERLIN = "Europe/Berlin"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A UTC instant in late November 2026 (Berlin is UTC+1); day 23 is a Monday."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def test_open_now_closes_at_local_time() -> None:
    status = store_status(WEEK, BERLIN, at(23, 12))  # Monday 13:00 in Berlin
    assert status.is_open
    assert status.closes_at is not None and status.closes_at.strftime("%H:%M") == "20:00"
    assert status.today == "10:00-20:00"


def test_before_opening_opens_today() -> None:
    status = store_status(WEEK, BERLIN, at(23, 7))  # Monday 08:00
    assert not status.is_open
    assert status.opens_in_days == 0
    assert status.opens_at is not None and status.opens_at.strftime("%H:%M") == "10:00"


def test_friday_late_opening_runs_past_midnight() -> None:
    status = store_status(WEEK, BERLIN, at(27, 23, 30))  # Saturday 00:30, Friday's hours still on
    assert status.is_open
    assert status.closes_at is not None and status.closes_at.strftime("%a %H:%M") == "Sat 01:00"
    assert status.today == "10:00-24:00"  # Saturday's own hours


def test_after_late_closing_opens_later_today() -> None:
    status = store_status(WEEK, BERLIN, at(28, 0, 30))  # Saturday 01:30
    assert not status.is_open
    assert status.opens_in_days == 0


def test_closing_at_midnight() -> None:
    status = store_status(WEEK, BERLIN, at(28, 22, 30))  # Saturday 23:30
    assert status.is_open
    assert status.closes_at is not None and status.closes_at.strftime("%a %H:%M") == "Sun 00:00"


def test_closed_day_opens_tomorrow() -> None:
    status = store_status(WEEK, BERLIN, at(29, 12))  # Sunday
    assert not status.is_open
    assert status.today is None
    assert status.opens_in_days == 1
    assert status.opens_at is not None and status.opens_at.strftime("%a %H:%M") == "Mon 10:00"


def test_long_closure_names_the_day_and_never_open_is_closed() -> None:
    only_thursday = dict.fromkeys(WEEK) | {"thu": "09:00-12:00"}
    status = store_status(only_thursday, BERLIN, at(23, 12))  # Monday
    assert status.opens_in_days == 3
    assert not store_status(dict.fromkeys(WEEK), BERLIN, at(23, 12)).is_open


def test_time_zone_of_the_store_not_of_the_server() -> None:
    # 02:00 UTC on Monday is 11:00 in Tokyo: open there, closed in Berlin.
    assert store_status(WEEK, "Asia/Tokyo", at(23, 2)).is_open
    assert not store_status(WEEK, BERLIN, at(23, 2)).is_open
