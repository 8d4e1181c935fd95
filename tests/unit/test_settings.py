"""Settings refuse what would silently do nothing: the variable and the reason are named."""

from __future__ import annotations

import pytest

from touchpoint.config import ConfigError, load_settings


def test_a_misspelt_order_status_in_the_config_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"TOUCHPOINT_ORDERS_URGENT_STATUSES: unknown order status shiped"):
        load_settings(_env_file=None, orders_urgent_statuses=["shiped"])
    with pytest.raises(ConfigError, match="TOUCHPOINT_ORDERS_ATTENTION_STATUSES"):
        load_settings(_env_file=None, orders_attention_statuses=["ready"])
    settings = load_settings(_env_file=None, orders_urgent_statuses=["delivery_problem"])
    assert settings.orders_urgent_statuses == ["delivery_problem"]
