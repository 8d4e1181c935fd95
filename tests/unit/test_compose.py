"""compose.yaml cannot drift from the settings: its environment, rendered the way docker compose
renders it, is validated by the real Settings class (no docker needed)."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from touchpoint.config import SANDBOX_TOKEN, ConfigError, Settings, load_settings

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alt}, $VAR, and $$.
_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
# What an operator must provide (compose.yaml's own header says so); everything else may be unset.
REQUIRED = {
    "TOUCHPOINT_BOT_TOKEN": SANDBOX_TOKEN,
    "TOUCHPOINT_WEBHOOK_URL": "https://bot.example.com/telegram/webhook",
    "TOUCHPOINT_EVENTS_SECRET": secrets.token_hex(32),
}


class ComposeError(Exception):
    """What `docker compose` would refuse the file with."""


def interpolate(value: str, env: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        current = env.get(name)
        is_set, non_empty = current is not None, bool(current)
        if op == ":-":
            return current if non_empty else arg  # type: ignore[return-value]
        if op == "-":
            return current if is_set else arg  # type: ignore[return-value]
        if op in (":?", "?") and not (non_empty if op == ":?" else is_set):
            raise ComposeError(f"required variable {name} is missing a value: {arg}")
        if op == ":+":
            return arg if non_empty else ""
        if op == "+":
            return arg if is_set else ""
        return current or ""

    return _REFERENCE.sub(substitute, value)


def service_environments(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """Each service's environment as compose hands it to the container."""
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    rendered: dict[str, dict[str, str]] = {}
    for name, service in document["services"].items():
        environment: Any = service.get("environment") or {}
        if isinstance(environment, list):  # ["KEY=value", ...]
            environment = dict(item.split("=", 1) if "=" in item else (item, env.get(item, ""))
                               for item in environment)
        rendered[name] = {key: interpolate("" if value is None else str(value), env)
                          for key, value in environment.items()}
    return rendered


def settings_from(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in [k for k in os.environ if k.startswith("TOUCHPOINT_")]:
        monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    return load_settings(_env_file=None)


@pytest.mark.parametrize("service", ["bot", "migrate"])
def test_the_compose_environment_is_valid_settings(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    environment = service_environments(dict(REQUIRED))[service]
    unknown = [key for key in environment if key.startswith("TOUCHPOINT_")
               and key.removeprefix("TOUCHPOINT_").lower() not in Settings.model_fields]
    assert unknown == [], f"compose.yaml sets variables the settings do not know: {unknown}"
    settings = settings_from(environment, monkeypatch)
    assert settings.database_url.startswith("postgresql+asyncpg://touchpoint:touchpoint@postgres:5432/")
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.staff_chat_id is None  # "${TOUCHPOINT_STAFF_CHAT_ID:-}" renders as ""
    assert settings.events_api_host == "0.0.0.0"
    # What `touchpoint run --webhook` checks at start.
    assert settings.require_bot_token() == SANDBOX_TOKEN
    assert settings.require_events_secret() == REQUIRED["TOUCHPOINT_EVENTS_SECRET"]
    assert settings.webhook_url and settings.webhook_secret_token()


def test_optional_values_given_in_the_environment_reach_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    env = REQUIRED | {"TOUCHPOINT_STAFF_CHAT_ID": "-1001234567890", "POSTGRES_PASSWORD": "p4ss",
                      "TOUCHPOINT_WEBHOOK_SECRET": "hook-secret"}
    settings = settings_from(service_environments(env)["bot"], monkeypatch)
    assert settings.staff_chat_id == -1001234567890
    assert ":p4ss@postgres:" in settings.database_url
    assert settings.webhook_secret_token() == "hook-secret"


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_compose_refuses_to_start_without_a_required_variable(missing: str) -> None:
    env = {key: value for key, value in REQUIRED.items() if key != missing}
    with pytest.raises(ComposeError, match=missing):
        service_environments(env)


def test_the_events_secret_compose_asks_for_is_checked_for_strength(monkeypatch: pytest.MonkeyPatch) -> None:
    environment = service_environments(REQUIRED | {"TOUCHPOINT_EVENTS_SECRET": "x"})["bot"]
    with pytest.raises(ConfigError, match=r"TOUCHPOINT_EVENTS_SECRET.*openssl rand -hex 32"):
        settings_from(environment, monkeypatch).require_events_secret()


def test_interpolation_follows_compose() -> None:
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${UNSET:-d} ${EMPTY-d} ${UNSET-d} $$SET $SET", env) == \
        "v d d  d $SET v"
    assert interpolate("${SET:+alt}|${EMPTY:+alt}|${EMPTY+alt}", env) == "alt||alt"
    with pytest.raises(ComposeError):
        interpolate("${EMPTY:?needed}", env)
    assert interpolate("${EMPTY?needed}", env) == ""
