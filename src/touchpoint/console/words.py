"""Staff read words, never codes: the console's one place that turns stored codes (ticket kinds and
statuses, reasons, order statuses, journey keys, history authors, event types) into text in the
staff member's language. Where the chat already has a word for a code, the console uses the same
one, so a status reads the same in the menu, the filter and the customer's message."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from touchpoint import formatting
from touchpoint.i18n import Translator

# Which catalogue keys name each kind of code (the chat's own words first).
GROUPS = {
    "kind": ("aftersales.kind.",),
    "ticket_status": ("aftersales.status.",),
    "reason": ("aftersales.reason.",),
    "order_status": ("orders.status.",),
    "handoff_reason": ("handoff.reason.",),
    "stage": ("console.ui.stage.",),
    "journey": ("console.ui.journey.",),
    "event": ("console.ui.event.",),
    "lane": ("console.ui.lane.",),
    "outbox_status": ("console.ui.outbox.",),
    "referral_status": ("console.ui.referral.",),
    "history": ("console.ui.hist.",),
    "segment": ("console.ui.segment.",),
    "role": ("console.ui.role.",),
    "conversation_status": ("console.ui.conv_status.",),
    "held": ("console.ui.held.",),  # why a campaign did not reach a customer (the contact rules' reasons)
    "outbox_reason": ("console.ui.held.",),  # why one message waits or was skipped: the same reasons
}
_DECORATION = re.compile(r"^[^\w(«\"]+", re.UNICODE)  # a button's leading emoji


def humanize(code: str) -> str:
    """The last resort for a code nobody named: ``abandoned_cart`` → "Abandoned cart"."""
    text = re.sub(r"[_.:]+", " ", str(code)).strip()
    return text[:1].upper() + text[1:] if text else formatting.DASH


@dataclass
class Words:
    """Bound to one reader: their locale and time zone."""

    t: Translator
    locale: str
    tz: str

    def __call__(self, key: str, /, **params: object) -> str:
        return self.t(self.locale, key, **params)

    def has(self, key: str) -> bool:
        return self.t(self.locale, key) != key

    def label(self, group: str, code: str | None) -> str:
        if not code:
            return formatting.DASH
        for prefix in GROUPS.get(group, ()):
            key = f"{prefix}{code}"
            text = self.t(self.locale, key)
            if text != key:
                return _DECORATION.sub("", text).strip() or text
        return humanize(code)

    def plural(self, key: str, n: int, **params: object) -> str:
        return self.t.plural(self.locale, key, n, n=formatting.format_number(n, self.locale), **params)

    # --- numbers and times, in the reader's locale and zone ---

    def when(self, value: datetime | None) -> str:
        return formatting.format_datetime(value, self.locale, self.tz)

    def day(self, value: date | datetime | None) -> str:
        return formatting.format_day(value, self.locale, self.tz)

    def date(self, value: date | datetime | None) -> str:
        return formatting.format_date(value, self.locale, self.tz)

    def money(self, minor: int | None, currency: str | None) -> str:
        if minor is None or not currency:
            return formatting.DASH
        return formatting.format_money(minor, currency, self.locale)

    def minutes(self, value: float | None) -> str:
        return formatting.format_duration(value, self.locale)

    def number(self, value: int | float) -> str:
        return formatting.format_number(value, self.locale)

    # --- things that are stored as codes or structures ---

    def author(self, author: str | None) -> str:
        """``console:Alice`` → "Alice (console)", ``staff:Bob`` → "Bob", ``customer`` → "customer"."""
        if not author:
            return formatting.DASH
        source, _, name = author.partition(":")
        if name and source == "console":
            return self("console.ui.author.console", name=name)
        if name and source in ("staff", "telegram"):
            return self("console.ui.author.telegram", name=name)
        if author in ("customer", "system", "bot"):
            return self(f"console.ui.author.{author}")
        return author

    def item_name(self, item: Any) -> str:
        """A ticket item: its product name in the reader's language (names are stored per locale)."""
        if not isinstance(item, dict):
            return str(item)
        name = item.get("name")
        if isinstance(name, dict):
            name = name.get(self.locale) or name.get("en") or next(iter(name.values()), "")
        return str(name or item.get("sku") or formatting.DASH)

    def journey(self, key: str | None) -> str:
        if key and key.startswith("campaign_"):
            _, _, rest = key.partition("_")
            number, _, name = rest.partition("_")
            return self("console.ui.campaign_named", name=humanize(name) if name else number)
        return self.label("journey", key)


    def held_back(self, held: dict[str, int]) -> str:
        """Why a campaign did not reach customers, most first: "not opted in to offers: 3; in their
        quiet hours: sent when they end: 2" (empty when nobody was held back)."""
        parts = sorted(held.items(), key=lambda item: (-item[1], item[0]))
        return self("console.ui.jd.separator").join(
            self("console.ui.camp.held_item", reason=self.label("held", reason), n=self.number(count))
            for reason, count in parts)

    def span(self, value: timedelta | None) -> str:
        minutes = value.total_seconds() / 60 if value is not None else None
        return formatting.format_duration(minutes, self.locale)

    def describe_journey(self, journey: Any) -> list[tuple[str, str]]:
        """A journey's definition in sentences: trigger, who, steps with their waits, exits, holdout."""
        trigger = journey.trigger
        if getattr(trigger, "scan", None) == "inactive":
            when = self("console.ui.jd.scan_inactive", days=self.number(trigger.days))
        elif getattr(trigger, "scan", None) == "replenishment":
            when = self("console.ui.jd.scan_replenishment", days=self.number(trigger.days))
        else:
            when = self.label("event", trigger.event)
            if trigger.times > 1 and trigger.within is not None:
                when = self("console.ui.jd.times", what=when, n=self.number(trigger.times),
                            within=self.span(trigger.within))
        lines = [(self("console.ui.jd.trigger"), when),
                 (self("console.ui.jd.kind"), self.label("lane", journey.category))]
        waited = timedelta(0)
        steps = []
        for index, step in enumerate(journey.steps, start=1):
            waited += step.wait
            steps.append(self("console.ui.jd.step", n=index, after=self.span(waited))
                         if waited else self("console.ui.jd.step_now", n=index))
        separator = self("console.ui.jd.separator")
        lines.append((self("console.ui.jd.steps"), separator.join(steps)))
        exits = [self("console.ui.jd.exit_within", what=self.label("event", goal.event),
                      within=self.span(goal.within)) for goal in journey.exit]
        stops = separator.join(exits) if exits else self("console.ui.none")
        lines.append((self("console.ui.jd.exits"), stops))
        lines.append((self("console.ui.jd.holdout"),
                      self("console.ui.jd.holdout_pct", pct=self.number(journey.holdout))
                      if journey.holdout else self("console.ui.jd.no_holdout")))
        return lines


def staff_words(t: Translator, locale: str | None, tz: str) -> Words:
    return Words(t, locale if locale in formatting.BABEL_LOCALES else "en", tz)
