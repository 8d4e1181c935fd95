"""Every knob of Touchpoint, read from the environment (prefix ``TOUCHPOINT_``) or ``.env``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SUPPORTED_LOCALES = ("en", "ru", "zh")
TELEGRAM_API_BASE = "https://api.telegram.org"
# A syntactically valid token for the sandbox, where no real token exists.
SANDBOX_TOKEN = "123456789:sandbox-token-not-a-secret"


class ConfigError(SystemExit):
    """Start-up stops with one clear line naming the variable at fault."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TOUCHPOINT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    bot_token: SecretStr | None = None
    telegram_api_base: str = TELEGRAM_API_BASE
    database_url: str = "sqlite+aiosqlite:///./touchpoint.db"
    redis_url: str | None = None
    staff_chat_id: int | None = None

    brand_name: str = "Brewhaus"
    default_locale: str = "en"
    default_timezone: str = "Europe/Berlin"
    locales_dir: Path | None = None

    # Contact rules for proactive messages (the customer's own time zone).
    quiet_hours_start: int = Field(default=21, ge=0, le=23)
    quiet_hours_end: int = Field(default=9, ge=0, le=23)
    marketing_per_day: int = Field(default=1, ge=0)
    marketing_per_week: int = Field(default=3, ge=0)
    messages_per_day: int = Field(default=6, ge=1)  # every proactive lane together
    repeat_template_days: int = Field(default=7, ge=0)

    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = Field(default=8081, ge=1, le=65535)

    # Flood control: more than `flood_max_messages` in `flood_window_s` → one warning, then silence.
    flood_max_messages: int = Field(default=8, ge=1)
    flood_window_s: float = Field(default=10.0, gt=0)
    flood_mute_s: float = Field(default=30.0, gt=0)

    # --- console ---
    # The staff web console, started by `touchpoint run` / `demo` on its own port.
    console_enabled: bool = True
    console_host: str = "127.0.0.1"
    console_port: int = Field(default=8082, ge=0, le=65535)
    # Fernet key (32 url-safe base64 bytes) for the encrypted session cookie; unset: a random key
    # per process (everyone logs in again after a restart).
    console_secret_key: SecretStr | None = None
    console_cookie_secure: bool = False  # True behind HTTPS
    console_session_hours: int = Field(default=12, ge=1)
    console_login_attempts: int = Field(default=5, ge=1)  # failures per window, per name and per address
    console_login_window_s: float = Field(default=900.0, gt=0)

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if value not in SUPPORTED_LOCALES:
            raise ValueError(f"must be one of {', '.join(SUPPORTED_LOCALES)}")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("is not an IANA time zone such as Europe/Berlin") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def require_bot_token(self) -> str:
        if self.bot_token is None or not self.bot_token.get_secret_value().strip():
            raise ConfigError("TOUCHPOINT_BOT_TOKEN is not set: get one from @BotFather")
        return self.bot_token.get_secret_value()


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning a validation error into one line that names the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"TOUCHPOINT_{field.upper()}: {message}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
