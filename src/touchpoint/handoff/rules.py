"""Pure handoff rules: what counts as distress, when staff are in, how long a customer waits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel.dates import get_day_names

_NOT_AFTER_LETTER = r"(?<![^\W\d_])"  # not glued to a letter before it…
_NOT_BEFORE_LETTER = r"(?![^\W\d_])"  # …or after it
# Chinese and Japanese are written without spaces: their entries match anywhere in the text.
_UNSPACED_SCRIPT = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
STEM_MARK = "*"
_SHOUT_MIN_LETTERS = 8


def _fold(text: str) -> str:
    # Russian writers mostly type е for ё: both spellings are one letter here.
    return text.casefold().replace("ё", "е")


def _entry_pattern(entry: str) -> str | None:
    """The regex for one lexicon entry, or None for an empty one."""
    entry = _fold(entry.strip())
    stem = entry.endswith(STEM_MARK)
    words = entry.rstrip(STEM_MARK).split()
    if not words:
        return None
    body = r"\s+".join(re.escape(word) for word in words)
    if _UNSPACED_SCRIPT.search(body):
        return body
    return _NOT_AFTER_LETTER + body + ("" if stem else _NOT_BEFORE_LETTER)


@lru_cache(maxsize=8)
def _lexicon_regex(entries: tuple[str, ...]) -> re.Pattern[str] | None:
    """The whole lexicon as one compiled alternation (it is checked on every customer message)."""
    patterns = [pattern for entry in entries if (pattern := _entry_pattern(entry)) is not None]
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns)) if patterns else None


def is_distress(text: str, lexicon: dict[str, list[str]]) -> bool:
    """Distress or anger, by a clear rule (docs/handoff.md, "Distress rule").

    A message counts when it holds an entry of the lexicon (any language, case-insensitively, ё = е):
    a plain entry as a whole word or phrase ("hell" is not in "hello"); an entry ending in "*" as
    the start of a word ("ужас*": ужас, ужасный, ужасно), which is how inflected languages list
    stems; an entry in Chinese or Japanese characters anywhere (no spaces there). Or when it is
    shouted: at least 8 letters, all capitals, ending in "!".
    """
    regex = _lexicon_regex(tuple(entry for words in lexicon.values() for entry in words))
    if regex is not None and regex.search(_fold(text)):
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

    def describe(self, locale: str) -> tuple[str, str]:
        """(days, hours) in words for customers, e.g. ("Mon–Fri", "9:00–18:00")."""
        names = get_day_names("abbreviated", locale=locale)
        days = sorted(self.days)
        runs: list[list[int]] = []
        for day in days:
            if runs and day == runs[-1][-1] + 1:
                runs[-1].append(day)
            else:
                runs.append([day])
        parts = [
            f"{names[run[0]]}–{names[run[-1]]}" if len(run) > 2
            else ", ".join(names[d] for d in run)
            for run in runs
        ]
        return ", ".join(parts), f"{self.start_hour}:00–{self.end_hour}:00"


def expected_wait_minutes(waiting_ahead: int, minutes_per_customer: int) -> int:
    """A person picks up about every `minutes_per_customer`; the customer is behind `waiting_ahead`."""
    return (waiting_ahead + 1) * minutes_per_customer
