"""The after-sales policy as pure rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from touchpoint.aftersales.policy import ItemFacts, PolicyRules, add_months, check_request

DELIVERED = datetime(2026, 3, 1, 12, tzinfo=UTC)
RULES = PolicyRules(return_window_days=30, window_by_category={"kitchen": 14},
                    non_returnable_categories=frozenset({"software"}))


def item(**fields: object) -> ItemFacts:
    values: dict[str, object] = dict(order_item_id=1, sku="ESP-001", category_id="espresso", returnable=True,
                                     warranty_months=24, quantity=1, already_claimed=0, in_stock=3)
    values.update(fields)
    return ItemFacts(**values)  # type: ignore[arg-type]


def days_after(days: int) -> datetime:
    return DELIVERED + timedelta(days=days)


def test_return_inside_window_is_allowed_with_last_day() -> None:
    decision = check_request("return", [item()], DELIVERED, days_after(30), RULES)
    assert decision.allowed and decision.key_date == date(2026, 3, 31)


def test_return_after_window_offers_repair_and_names_the_date() -> None:
    decision = check_request("return", [item()], DELIVERED, days_after(31), RULES)
    assert not decision.allowed
    assert decision.reason == "window_passed" and decision.key_date == date(2026, 3, 31)
    assert decision.alternatives == ("repair", "complaint", "other")


def test_window_per_category() -> None:
    kitchen = item(category_id="kitchen")
    assert check_request("return", [kitchen], DELIVERED, days_after(14), RULES).allowed
    assert check_request("return", [kitchen], DELIVERED, days_after(15), RULES).reason == "window_passed"


@pytest.mark.parametrize("facts", [item(returnable=False), item(category_id="software")])
def test_non_returnable(facts: ItemFacts) -> None:
    decision = check_request("exchange", [facts], DELIVERED, days_after(1), RULES)
    assert decision.reason == "non_returnable" and "repair" in decision.alternatives


def test_already_returned_units_are_counted() -> None:
    partly = item(quantity=2, already_claimed=1)
    assert check_request("return", [partly], DELIVERED, days_after(1), RULES).allowed
    decision = check_request("return", [item(already_claimed=1)], DELIVERED, days_after(1), RULES)
    assert decision.reason == "already_returned"


def test_exchange_needs_stock() -> None:
    decision = check_request("exchange", [item(in_stock=0)], DELIVERED, days_after(1), RULES)
    assert decision.reason == "out_of_stock" and "return" in decision.alternatives


def test_warranty_end_and_no_warranty() -> None:
    assert check_request("repair", [item()], DELIVERED, datetime(2028, 3, 1, tzinfo=UTC), RULES).allowed
    expired = check_request("repair", [item()], DELIVERED, datetime(2028, 3, 2, tzinfo=UTC), RULES)
    assert expired.reason == "warranty_expired" and expired.key_date == date(2028, 3, 1)
    assert check_request("repair", [item(warranty_months=0)], DELIVERED, days_after(1), RULES).reason == (
        "no_warranty"
    )


def test_not_delivered_allows_only_complaints() -> None:
    decision = check_request("return", [item()], None, days_after(1), RULES)
    assert decision.reason == "not_delivered" and decision.alternatives == ("complaint", "other")


def test_the_first_refused_item_is_named() -> None:
    items = [item(), item(order_item_id=2, returnable=False)]
    decision = check_request("return", items, DELIVERED, days_after(1), RULES)
    assert decision.order_item_id == 2


def test_add_months_clamps_to_month_end() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
