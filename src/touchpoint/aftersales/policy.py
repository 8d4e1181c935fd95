"""The after-sales policy as pure rules: may these items be returned, exchanged or repaired now?

The service gathers the facts (delivery date, category, warranty, what was already returned,
stock); these functions decide, and say which date mattered and what is still possible.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

KINDS = ("return", "exchange", "repair", "complaint", "other")


@dataclass(frozen=True, slots=True)
class PolicyRules:
    return_window_days: int = 30
    window_by_category: dict[str, int] = field(default_factory=dict)
    non_returnable_categories: frozenset[str] = frozenset()

    def window_days(self, category_id: str | None) -> int:
        return self.window_by_category.get(category_id or "", self.return_window_days)


@dataclass(frozen=True, slots=True)
class ItemFacts:
    order_item_id: int
    sku: str
    category_id: str | None
    returnable: bool  # the product's and its category's flags together
    warranty_months: int
    quantity: int
    already_claimed: int  # units in return/exchange tickets that were not rejected or cancelled
    in_stock: int  # units available for an exchange


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str | None = None  # not_delivered | non_returnable | window_passed | already_returned |
    #                             out_of_stock | no_warranty | warranty_expired
    key_date: date | None = None  # the date that mattered (window or warranty end)
    order_item_id: int | None = None  # the item that was refused
    alternatives: tuple[str, ...] = ()  # kinds still possible for the same items


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def warranty_end(item: ItemFacts, delivered_at: datetime) -> date | None:
    if item.warranty_months <= 0:
        return None
    return add_months(delivered_at.date(), item.warranty_months)


def check_item(
    kind: str, item: ItemFacts, delivered_at: datetime | None, now: datetime, rules: PolicyRules
) -> Decision:
    if kind in ("complaint", "other"):
        return Decision(True)
    if delivered_at is None:
        return Decision(False, "not_delivered", order_item_id=item.order_item_id)
    if kind == "repair":
        end = warranty_end(item, delivered_at)
        if end is None:
            return Decision(False, "no_warranty", order_item_id=item.order_item_id)
        if now.date() > end:
            return Decision(False, "warranty_expired", end, item.order_item_id)
        return Decision(True, key_date=end)
    # return or exchange
    if not item.returnable or item.category_id in rules.non_returnable_categories:
        return Decision(False, "non_returnable", order_item_id=item.order_item_id)
    last_day = (delivered_at + timedelta(days=rules.window_days(item.category_id))).date()
    if now.date() > last_day:
        return Decision(False, "window_passed", last_day, item.order_item_id)
    if item.already_claimed >= item.quantity:
        return Decision(False, "already_returned", order_item_id=item.order_item_id)
    if kind == "exchange" and item.in_stock <= 0:
        return Decision(False, "out_of_stock", order_item_id=item.order_item_id)
    return Decision(True, key_date=last_day)


def check_request(
    kind: str, items: list[ItemFacts], delivered_at: datetime | None, now: datetime, rules: PolicyRules
) -> Decision:
    """The first refusal among the items (with what else is possible), else the approval."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    if not items:
        raise ValueError("no items chosen")
    decisions = [check_item(kind, item, delivered_at, now, rules) for item in items]
    refused = next((d for d in decisions if not d.allowed), None)
    if refused is None:
        return decisions[0]
    alternatives = tuple(
        other for other in KINDS
        if other != kind and all(check_item(other, i, delivered_at, now, rules).allowed for i in items)
    )
    return Decision(False, refused.reason, refused.key_date, refused.order_item_id, alternatives)
