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


@pytest.mark.parametrize("weak", [
    "x",
    "demo-events-secret-not-for-production",  # the README's old example
    "0123456789abcdef",  # 16 characters
    "a" * 64,
    "ab" * 32,
    "abcdefghijklmnopqrstuvwxyz0123456789",
    "passwordpasswordpasswordpassword1",
    "changeme-changeme-0f3a9c2e6b14d8f0a5c3e7b92d16",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
])
def test_a_weak_events_secret_is_refused_naming_the_variable_and_the_fix(weak: str) -> None:
    settings = load_settings(_env_file=None, events_secret=weak)
    with pytest.raises(ConfigError) as refused:
        settings.require_events_secret()
    message = str(refused.value)
    assert message.startswith("TOUCHPOINT_EVENTS_SECRET is too weak") and "\n" not in message
    assert "openssl rand -hex 32" in message
    assert weak not in message or len(weak) < 2  # the secret itself is not echoed


def test_generated_events_secrets_are_accepted() -> None:
    import base64
    import secrets

    for _ in range(200):
        for secret in (secrets.token_hex(32), secrets.token_urlsafe(32), secrets.token_urlsafe(24),
                       base64.b64encode(secrets.token_bytes(32)).decode()):
            assert load_settings(_env_file=None, events_secret=secret).require_events_secret() == secret


def test_the_demo_generates_a_strong_secret_of_its_own() -> None:
    from touchpoint.config import events_secret_weakness
    from touchpoint.events_api.signing import demo_secret

    first, second = demo_secret(), demo_secret()
    assert first != second
    assert events_secret_weakness(first) is None


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOUCHPOINT_STAFF_CHAT_ID", "")
    monkeypatch.setenv("TOUCHPOINT_REDIS_URL", "")
    settings = load_settings(_env_file=None)
    assert settings.staff_chat_id is None and settings.redis_url is None


def test_database_time_outs_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOUCHPOINT_DB_STATEMENT_TIMEOUT_S", "2.5")
    settings = load_settings(_env_file=None)
    assert settings.database_engine_options() == {
        "connect_timeout_s": 5.0, "statement_timeout_s": 2.5, "pool_timeout_s": 5.0,
        "sqlite_busy_timeout_s": 10.0}
    with pytest.raises(ConfigError, match="TOUCHPOINT_DB_CONNECT_TIMEOUT_S"):
        load_settings(_env_file=None, db_connect_timeout_s=0)
