"""Pure handoff rules: what counts as distress, when staff are in, how long a customer waits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

_WORD_EDGE = r"(?<![^\W\d_]){}(?![^\W\d_])"  # not glued to other letters
_SHOUT_MIN_LETTERS = 8


def is_distress(text: str, lexicon: dict[str, list[str]]) -> bool:
    """Distress or anger, by a clear rule.

    A message counts when it holds a lexicon entry of any language, case-insensitively, as a
    whole word or phrase (Chinese has no spaces, so its entries match anywhere), or when it is
    shouted: at least 8 letters, all capitals, ending in "!".
    """
    lowered = text.casefold()
    for locale, words in lexicon.items():
        for word in words:
            needle = word.casefold().strip()
            if not needle:
                continue
            if locale == "zh":
                if needle in lowered:
                    return True
            elif re.search(_WORD_EDGE.format(re.escape(needle)), lowered):
                return True
    letters = [c for c in text if c.isalpha()]
    return (
        len(letters) >= _SHOUT_MIN_LETTERS
        and all(c.isupper() for c in letters)
        and text.rstrip().endswith("!")
    )


@dataclass(frozen=True, slots=True)
class WorkingHours:
    timezone: str
    start_hour: int
    end_hour: int
    days: frozenset[int]

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(ZoneInfo(self.timezone))
        return local.weekday() in self.days and self.start_hour <= local.hour < self.end_hour

    def next_opening(self, now: datetime) -> datetime:
        """The next moment staff come in (aware, in the staff time zone); ``now`` if open."""
        if self.is_open(now):
            return now
        local = now.astimezone(ZoneInfo(self.timezone))
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            if day.weekday() not in self.days:
                continue
            opening = datetime(day.year, day.month, day.day, self.start_hour, tzinfo=local.tzinfo)
            if opening > local:
                return opening
        raise ValueError("working hours have no working day")


def expected_wait_minutes(waiting_ahead: int, minutes_per_customer: int) -> int:
    """A person picks up about every `minutes_per_customer`; the customer is behind `waiting_ahead`."""
    return (waiting_ahead + 1) * minutes_per_customer
