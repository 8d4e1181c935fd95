"""Opening hours in the store's own time zone: "open now, closes at 21:00" or when it opens next.

Hours are stored per weekday as "10:00-20:00"; a closing time at or before the opening time
means the store closes after midnight (e.g. "07:00-01:00" on Friday runs into Saturday).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from touchpoint.catalog.loader import WEEKDAYS


@dataclass(frozen=True, slots=True)
class StoreStatus:
    is_open: bool
    closes_at: datetime | None = None  # local time, when open
    opens_at: datetime | None = None  # local time, when closed
    today: str | None = None  # today's hours as stored, None when closed all day
    opens_in_days: int = 0  # 0 today, 1 tomorrow, ...


def _parse(clock: str) -> tuple[time, int]:
    hours, minutes = (int(part) for part in clock.split(":"))
    if hours == 24:
        return time(0, minutes), 1
    return time(hours, minutes), 0


def _interval(day: date, span: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    opens, closes = span.split("-")
    open_time, _ = _parse(opens)
    close_time, extra_day = _parse(closes)
    start = datetime.combine(day, open_time, tz)
    end = datetime.combine(day + timedelta(days=extra_day), close_time, tz)
    if end <= start:  # past midnight
        end += timedelta(days=1)
    return start, end


def store_status(hours: dict[str, str | None], timezone: str, now: datetime) -> StoreStatus:
    tz = ZoneInfo(timezone)
    local_now = now.astimezone(tz)
    today = local_now.date()
    today_span = hours.get(WEEKDAYS[today.weekday()])
    # Yesterday's late opening may still be running; look a week ahead for the next opening.
    for offset in range(-1, 8):
        day = today + timedelta(days=offset)
        span = hours.get(WEEKDAYS[day.weekday()])
        if not span:
            continue
        start, end = _interval(day, span, tz)
        if start <= local_now < end:
            return StoreStatus(True, closes_at=end, today=today_span)
        if start > local_now:
            return StoreStatus(False, opens_at=start, today=today_span,
                               opens_in_days=(start.date() - today).days)
    return StoreStatus(False, today=today_span)
