"""Configured facts in FAQ answers: ``{referral_referrer_points}`` and friends.

An answer that states a reward, a window or staff hours names the setting instead of repeating
its value, so the FAQ can never contradict /invite or the return policy. The FAQ loader refuses
an answer with any other ``{placeholder}``; :func:`render_answer` fills them at reading time from
the settings, formatted with Babel in the reader's locale (words like "points" from ``locales/``,
with their plural forms).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import time
from string import Formatter

from babel.dates import format_time, get_day_names, get_timezone_location

from touchpoint.config import Settings
from touchpoint.formatting import format_money, format_number
from touchpoint.i18n import Translator, get_translator

Fact = Callable[[Settings, str, Translator], str]


def _number(value: int, locale: str) -> str:
    return format_number(value, locale)


def _money(minor: int, currency: str, locale: str) -> str:
    return format_money(minor, currency, locale)


def _points(points: int, locale: str, translate: Translator) -> str:
    return translate.plural(locale, "faq.fact.points", points, count=_number(points, locale))


def _referee_reward(settings: Settings, locale: str, translate: Translator) -> str:
    parts = []
    if settings.referral_referee_voucher_minor > 0:
        amount = _money(settings.referral_referee_voucher_minor, settings.referral_currency, locale)
        parts.append(translate(locale, "faq.fact.voucher", amount=amount))
    if settings.referral_referee_points > 0 or not parts:
        parts.append(_points(settings.referral_referee_points, locale, translate))
    if len(parts) == 1:
        return parts[0]
    return translate(locale, "faq.fact.both", first=parts[0], second=parts[1])


def _clock(hour: int, locale: str) -> str:
    return "24:00" if hour >= 24 else format_time(time(hour, 0), "HH:mm", locale=locale)


def _staff_hours(settings: Settings, locale: str, translate: Translator) -> str:
    """e.g. "Mon–Fri 09:00–18:00, Berlin time": consecutive work days are joined as a range."""
    names = get_day_names("abbreviated", locale=locale)
    days = sorted(set(settings.handoff_work_days))
    runs: list[list[int]] = []
    for day in days:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    spans = [names[r[0]] if len(r) == 1 else f"{names[r[0]]}–{names[r[-1]]}" for r in runs]
    return translate(
        locale, "faq.fact.staff_hours", days=", ".join(spans),
        start=_clock(settings.handoff_hours_start, locale), end=_clock(settings.handoff_hours_end, locale),
        city=get_timezone_location(settings.handoff_timezone, locale=locale, return_city=True),
    )


FACTS: dict[str, Fact] = {
    # The newcomer's welcome reward: points and/or a voucher, as configured.
    "referral_referee_reward": _referee_reward,
    "referral_referee_points": lambda s, loc, t: _points(s.referral_referee_points, loc, t),
    "referral_referrer_points": lambda s, loc, t: _points(s.referral_referrer_points, loc, t),
    "referral_min_order": lambda s, loc, t: _money(s.referral_min_order_minor, s.referral_currency, loc),
    # Days after delivery in which a return still takes back rewards already credited.
    "referral_return_window_days": lambda s, loc, t: _number(s.referral_return_window_days, loc),
    "loyalty_points_per_unit": lambda s, loc, t: _points(s.loyalty_points_per_unit, loc, t),
    "return_window_days": lambda s, loc, t: _number(s.return_window_days, loc),
    "staff_hours": _staff_hours,
}


def fact(name: str, settings: Settings, locale: str, translate: Translator | None = None) -> str:
    """One configured fact as a reader in ``locale`` reads it (the /invite screen says the same)."""
    translate = translate or get_translator(settings.locales_dir, settings.default_locale)
    return FACTS[name](settings, locale, translate)


def placeholders(text: str) -> set[str]:
    """The ``{names}`` a text uses; a brace that is not a placeholder raises ValueError."""
    return {name for _, name, _, _ in Formatter().parse(text) if name is not None}


def unknown_placeholders(text: str) -> list[str]:
    """Placeholders no configured fact fills (a lone "{" or "}" counts as one, named as it is)."""
    try:
        names = placeholders(text)
    except ValueError:
        return ["{ or } without a name (write {{ or }} for a brace)"]
    return sorted(f"{{{name}}}" for name in names if name not in FACTS)


def render_answer(
    text: str, locale: str, settings: Settings, translate: Translator | None = None
) -> str:
    """An FAQ answer with its configured facts filled in, in ``locale``."""
    try:
        names = placeholders(text)
    except ValueError:
        return text  # the loader refuses such text; an older row is shown as it is
    if not names:
        return text
    translate = translate or get_translator(settings.locales_dir, settings.default_locale)
    values = {name: FACTS[name](settings, locale, translate) if name in FACTS else f"{{{name}}}"
              for name in names}
    return text.format_map(values)
