"""Paid broadcasts: the console's estimate, and only marketing goes out paid (and only when on)."""

from __future__ import annotations

import pytest

from touchpoint.messaging.broadcast import estimate_broadcast


def test_estimate_at_free_and_paid_rates() -> None:
    estimate = estimate_broadcast(20_000, free_rate=25, paid_rate=1000)
    assert estimate.free_seconds == 800  # 20,000 at 25/s
    assert estimate.paid_seconds == 20  # at 1000/s
    # Each second 1000 go, 30 of them free: 970/1000 of the messages cost 0.1 Star.
    assert estimate.stars == pytest.approx(20_000 * 0.97 * 0.1)


def test_estimate_without_paid_broadcasts() -> None:
    estimate = estimate_broadcast(100, free_rate=25, paid_rate=0)
    assert (estimate.paid_seconds, estimate.stars) == (None, 0.0)


def test_a_paid_rate_below_the_free_one_costs_nothing() -> None:
    assert estimate_broadcast(100, free_rate=25, paid_rate=30).stars == 0.0
