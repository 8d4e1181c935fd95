"""Every knob of Touchpoint, read from the environment (prefix ``TOUCHPOINT_``) or ``.env``."""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import math
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from touchpoint.orders.status import OrderStatus

SUPPORTED_LOCALES = ("en", "ru", "zh")
TELEGRAM_API_BASE = "https://api.telegram.org"
# A syntactically valid token for the sandbox, where no real token exists.
SANDBOX_TOKEN = "123456789:sandbox-token-not-a-secret"
# The events secret: a shared HMAC key anyone could forge link tokens with if it were guessable.
EVENTS_SECRET_MIN_LENGTH = 32
EVENTS_SECRET_MIN_BITS = 128
# Values printed in documentation over the years: known to everyone, so never accepted.
DOCUMENTED_EVENTS_SECRETS = frozenset({"demo-events-secret-not-for-production"})
LLM_KEY_MIN_LENGTH = 20
_PLACEHOLDER_WORDS = ("not-for-production", "changeme", "change-me", "example", "placeholder")


class ConfigError(SystemExit):
    """Start-up stops with one clear line naming the variable at fault."""


class Settings(BaseSettings):
    # An empty variable (`TOUCHPOINT_STAFF_CHAT_ID=`, or compose's `${VAR:-}`) means "not set".
    model_config = SettingsConfigDict(
        env_prefix="TOUCHPOINT_", env_file=".env", env_file_encoding="utf-8", extra="ignore",
        env_ignore_empty=True,
    )

    bot_token: SecretStr | None = None
    telegram_api_base: str = TELEGRAM_API_BASE
    database_url: str = "sqlite+aiosqlite:///./touchpoint.db"
    # A stalled database must fail fast (customers get the outage reply, the events API a 503)
    # rather than hang every caller: seconds to open a connection, to run one statement, to wait
    # for a free pooled connection, and for SQLite to wait on another writer's lock.
    db_connect_timeout_s: float = Field(default=5.0, gt=0)
    db_statement_timeout_s: float = Field(default=10.0, gt=0)
    db_pool_timeout_s: float = Field(default=5.0, gt=0)
    db_sqlite_busy_timeout_s: float = Field(default=10.0, gt=0)
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
    # Button taps are navigation, not flooding: their own, far looser budget in the same window.
    flood_max_callbacks: int = Field(default=40, ge=1)
    # A reply Telegram refuses with 429: waited out in the handler up to this long, else queued
    # through the outbox to go when Telegram allows.
    reply_retry_max_wait_s: float = Field(default=3.0, ge=0)

    # --- orders ---
    orders_phone_region: str = "DE"  # numbers shared without a country code are read as this region
    orders_number_pattern: str = r"^[A-Z]{2,4}-?\d{4,10}$"  # checked before any look-up query
    orders_link_token_ttl_min: int = Field(default=30, ge=1)
    orders_lookup_max_failures: int = Field(default=5, ge=1)  # per customer per hour
    # Statuses that post a new message (with sound); the others silently edit the live order card.
    orders_attention_statuses: list[str] = ["out_for_delivery", "ready_for_pickup",
                                            "delivery_problem", "cancelled"]
    # Statuses sent even during the customer's quiet hours; every other update waits for morning.
    orders_urgent_statuses: list[str] = []

    # --- events_api ---
    events_api_enabled: bool = True
    events_api_host: str = "127.0.0.1"
    events_api_port: int = Field(default=8082, ge=0, le=65535)
    events_secret: SecretStr | None = None  # HMAC-SHA256 key shared with the store's backend
    events_max_age_s: int = Field(default=300, ge=1)  # older signed timestamps are replays
    events_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    events_max_batch: int = Field(default=500, ge=1)

    # --- store platform connectors (served by the events API's process and port) ---
    # Webhook signing secrets; several comma-separated ones are all accepted (rotation).
    shopify_webhook_secret: SecretStr | None = None
    # Shopify location id → our store id, JSON in env: '{"123456": "mitte"}'.
    shopify_locations: dict[str, str] = Field(default_factory=dict)
    woocommerce_webhook_secret: SecretStr | None = None
    # WooCommerce "completed" means fulfilled: shipped for most shops, delivered for some.
    woocommerce_completed_status: str = "shipped"
    # WooCommerce keeps one stock figure per product: the store it is counted for (unset: ignored).
    woocommerce_stock_store: str | None = None
    connectors_max_attempts: int = Field(default=5, ge=1)  # a delivery failing this often is parked
    connectors_poll_s: float = Field(default=2.0, gt=0)  # queue re-check (rows from other processes)

    # --- aftersales ---
    return_window_days: int = Field(default=30, ge=0)  # from delivery
    return_window_days_by_category: dict[str, int] = Field(default_factory=dict)  # JSON in env
    non_returnable_categories: list[str] = Field(default_factory=list)  # on top of Category.returnable
    ticket_first_response_hours: int = Field(default=24, ge=1)
    ticket_max_photos: int = Field(default=5, ge=0, le=10)

    # --- catalog ---
    reservation_hold_hours: int = Field(default=24, ge=1, le=24 * 14)  # click-and-collect hold
    reservation_max_active: int = Field(default=3, ge=1)  # active holds per customer
    reservation_max_per_product: int = Field(default=1, ge=1)  # active holds per customer × product
    reservation_max_per_hour: int = Field(default=5, ge=1)  # reservations per customer per hour

    # --- handoff ---
    # Staff supergroups beyond `staff_chat_id`; customers are spread over all of them.
    handoff_extra_staff_chat_ids: list[int] = Field(default_factory=list)
    # Staff working hours in `handoff_timezone` (end exclusive), weekdays 0=Monday.
    handoff_timezone: str = "Europe/Berlin"
    handoff_hours_start: int = Field(default=9, ge=0, le=23)
    handoff_hours_end: int = Field(default=18, ge=1, le=24)
    handoff_work_days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    handoff_minutes_per_customer: int = Field(default=4, ge=1)  # wait estimate per customer ahead
    handoff_reminder_minutes: int = Field(default=10, ge=1)  # no staff answer → reminder in the topic
    # Bot posts into one group: Telegram allows ~20 per minute per group.
    handoff_group_max_posts: int = Field(default=20, ge=1)
    handoff_group_window_s: float = Field(default=60.0, gt=0)
    handoff_staff_cache_s: float = Field(default=60.0, gt=0)
    handoff_transcript_keep: int = Field(default=20, ge=1)  # card context: last N messages
    # Distress/anger lexicon: a message with any of these escalates (handoff/rules.py::is_distress):
    # whole words or phrases; "stem*" = a word starting with the stem (for inflected Russian);
    # Chinese anywhere.
    handoff_distress_words: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "en": ["angry", "furious", "terrible", "awful", "scam", "fraud", "disgusting",
                   "unacceptable", "worst", "lawyer", "refund now", "ridiculous", "useless"],
            "ru": ["ужас*", "отвратительн*", "обман*", "мошенни*", "безобрази*", "возмутительн*",
                   "кошмар*", "верните деньги", "верните мои деньги", "худш*", "бесит", "бесят",
                   "позор*", "достали"],
            "zh": ["生气", "愤怒", "太差", "垃圾", "骗子", "欺骗", "投诉", "气死", "糟糕"],
        }
    )
    # Canned replies for /t NAME: {name: {locale: text}}; an empty dict uses locales' handoff.canned.NAME.
    handoff_canned: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {"hello": {}, "wait": {}, "thanks": {}}
    )

    # --- business (the brand's own Telegram account, connected to the bot) ---
    # The owner typed in a customer's chat: the bot stays quiet there this long (a human took over).
    business_owner_quiet_minutes: int = Field(default=30, ge=0)

    # --- referrals ---
    referral_join_window_days: int = Field(default=7, ge=0)  # a code counts only this soon after joining
    referral_min_order_minor: int = Field(default=2000, ge=0)  # the first order must reach this…
    referral_currency: str = "EUR"  # …in this currency (how the minimum is shown)
    # A return within it takes back rewards already credited. Rewards are held as pending until the
    # qualifying order's own return window (return_window_days, per category) has ended.
    referral_return_window_days: int = Field(default=30, ge=0)
    referral_referrer_points: int = Field(default=500, ge=0)
    referral_referee_points: int = Field(default=300, ge=0)  # the newcomer's welcome bonus…
    referral_referee_voucher_minor: int = Field(default=0, ge=0)  # …and/or a welcome voucher (0: none)
    referral_monthly_cap: int = Field(default=10, ge=0)  # paid referrals per referrer per month
    referral_velocity_max: int = Field(default=5, ge=1)  # more joins than this within the window…
    referral_velocity_hours: int = Field(default=24, ge=1)  # …are held for staff review
    loyalty_points_per_unit: int = Field(default=1, ge=0)  # points per major currency unit delivered

    # --- production ---
    # Webhook mode (`touchpoint run --webhook`): Telegram posts to `webhook_url`, which a load
    # balancer forwards to `webhook_host:webhook_port` + `webhook_path` of every process.
    webhook_url: str | None = None
    webhook_host: str = "0.0.0.0"
    webhook_port: int = Field(default=8080, ge=0, le=65535)
    webhook_path: str = "/telegram/webhook"
    webhook_secret: SecretStr | None = None  # default: derived from the bot token
    shutdown_grace_s: float = Field(default=20.0, ge=0)
    redis_prefix: str = "touchpoint"
    log_format: str = Field(default="text", pattern="^(text|json)$")

    # --- journeys ---
    journeys_file: Path | None = None  # None: the defaults shipped in touchpoint/journeys/journeys.yaml
    shop_url: str = "https://shop.example.com"  # cart, product and reorder links in nudges
    vip_spend_minor: int = Field(default=50_000, ge=0)  # "vip" tier from this lifetime spend
    journey_tick_s: float = Field(default=30.0, gt=0)  # trigger evaluation and due steps
    send_rate_per_s: float = Field(default=25.0, gt=0)  # global outbox rate (Telegram allows ~30)
    # Paid broadcasts (0: off): campaigns and marketing journeys may go up to this rate with
    # allow_paid_broadcast, 0.1 Star per message above the free 30/s (Telegram allows up to 1000/s).
    paid_broadcast_rate: float = Field(default=0.0, ge=0, le=1000)
    journey_time_scale: float = Field(default=1.0, ge=1)  # demos: 360 turns a 1 h wait into 10 s
    # --- console ---
    # The staff web console, started by `touchpoint run` / `demo` on its own port.
    console_enabled: bool = True
    console_host: str = "127.0.0.1"
    console_port: int = Field(default=8083, ge=0, le=65535)
    # Fernet key (32 url-safe base64 bytes) for the encrypted session cookie; unset: a random key
    # per process (everyone logs in again after a restart).
    console_secret_key: SecretStr | None = None
    console_cookie_secure: bool = False  # True behind HTTPS
    console_session_hours: int = Field(default=12, ge=1)
    # Log-in throttle (shared through Redis when `redis_url` is set): `console_login_attempts`
    # failures in `console_login_window_s` from one address for one name lock that pair, each
    # further failure doubles the wait up to `console_login_lockout_max_s`; one address may fail
    # `console_login_address_attempts` times in the window whatever names it tries.
    console_login_attempts: int = Field(default=5, ge=1)
    console_login_window_s: float = Field(default=900.0, gt=0)
    console_login_address_attempts: int = Field(default=30, ge=1)
    console_login_lockout_max_s: float = Field(default=4 * 3600.0, gt=0)
    # Reverse proxies (addresses or CIDRs) whose X-Forwarded-For is believed; none: the peer's address.
    console_trusted_proxies: list[str] = Field(default_factory=list)
    # argon2 runs in these many threads, never on the event loop; log-ins beyond
    # workers + queue get "busy, try again" instead of waiting.
    console_password_workers: int = Field(default=1, ge=1, le=16)
    console_password_queue: int = Field(default=8, ge=0)

    # --- assistant (optional; everything off while `llm_base_url` is unset) ---
    # Any OpenAI-compatible chat-completions endpoint: OpenAI, vLLM, Ollama (".../v1").
    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = None  # a self-hosted model may need none
    llm_timeout_s: float = Field(default=15.0, gt=0)  # one request, streaming included
    llm_max_retries: int = Field(default=2, ge=0, le=5)  # with exponential back-off
    llm_max_concurrency: int = Field(default=4, ge=1)  # requests in flight per process
    llm_breaker_failures: int = Field(default=5, ge=1)  # failures in a row open the breaker ...
    llm_breaker_cooldown_s: float = Field(default=60.0, gt=0)  # ... for this long (offline answers)
    llm_max_sources: int = Field(default=4, ge=1, le=10)  # FAQ entries and products per prompt
    llm_max_tokens: int = Field(default=400, ge=16)

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

    @field_validator("woocommerce_completed_status")
    @classmethod
    def _known_status(cls, value: str) -> str:
        if value not in set(OrderStatus):
            raise ValueError(f"unknown order status {value} (known: {', '.join(OrderStatus)})")
        return value

    @field_validator("orders_attention_statuses", "orders_urgent_statuses")
    @classmethod
    def _known_statuses(cls, value: list[str]) -> list[str]:
        unknown = [status for status in value if status not in set(OrderStatus)]
        if unknown:
            raise ValueError(f"unknown order status {', '.join(unknown)} "
                             f"(known: {', '.join(OrderStatus)})")
        return value

    @field_validator("console_trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR such as 10.0.0.0/8") from None
        return [item.strip() for item in value]

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("llm_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value.strip()):
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:11434/v1")
        return value.strip().rstrip("/") if value else value

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_base_url)

    def llm_key(self) -> str:
        """The model endpoint's API key; a placeholder or a short key is refused (a self-hosted
        model without one gets a dummy the client needs, sent to that endpoint only)."""
        key = self.llm_api_key.get_secret_value().strip() if self.llm_api_key else ""
        if not key:
            return "none"
        if any(word in key.lower() for word in _PLACEHOLDER_WORDS) or len(key) < LLM_KEY_MIN_LENGTH:
            raise ConfigError(f"TOUCHPOINT_LLM_API_KEY looks like a placeholder (at least "
                              f"{LLM_KEY_MIN_LENGTH} characters of a real key are needed); unset it "
                              "for a model that needs no key")
        if not _private_http_or_https(self.llm_base_url or ""):
            raise ConfigError("TOUCHPOINT_LLM_BASE_URL: the API key would cross the network unencrypted; "
                              "use https:// (plain http only to this machine or a private network)")
        return key

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def require_events_secret(self) -> str:
        if self.events_secret is None or not self.events_secret.get_secret_value().strip():
            raise ConfigError("TOUCHPOINT_EVENTS_SECRET is not set: the events API needs the store's "
                              "shared secret, generate one with `openssl rand -hex 32` "
                              "(or set TOUCHPOINT_EVENTS_API_ENABLED=false)")
        secret = self.events_secret.get_secret_value()
        weakness = events_secret_weakness(secret)
        if weakness is not None:
            raise ConfigError(f"TOUCHPOINT_EVENTS_SECRET is too weak ({weakness}): anyone who guesses "
                              "it can sign events; generate one with `openssl rand -hex 32`")
        return secret

    def database_engine_options(self) -> dict[str, float]:
        """The time-outs ``touchpoint.db.Database`` takes (see ``db.engine.create_engine``)."""
        return {"connect_timeout_s": self.db_connect_timeout_s,
                "statement_timeout_s": self.db_statement_timeout_s,
                "pool_timeout_s": self.db_pool_timeout_s,
                "sqlite_busy_timeout_s": self.db_sqlite_busy_timeout_s}

    def require_demo_database(self) -> None:
        """`touchpoint demo` seeds data and a manager with a published password: never into a shared
        database (it reads .env, which may point at production)."""
        if not self.is_sqlite:
            raise ConfigError("touchpoint demo runs on a SQLite file of its own, but TOUCHPOINT_DATABASE_URL "
                              "is PostgreSQL (production?): unset it for the demo, e.g. "
                              "TOUCHPOINT_DATABASE_URL=sqlite+aiosqlite:///./demo.db touchpoint demo")

    def require_bot_token(self) -> str:
        if self.bot_token is None or not self.bot_token.get_secret_value().strip():
            raise ConfigError("TOUCHPOINT_BOT_TOKEN is not set: get one from @BotFather")
        return self.bot_token.get_secret_value()

    def webhook_secrets(self, platform: str, *, demo: bool = False) -> list[str]:
        """The platform's webhook signing secrets (several while rotating); none: not configured.

        Outside the demo each must pass the events secret's strength check: a guessable one lets
        anyone forge the shop's orders."""
        secret = getattr(self, f"{platform}_webhook_secret")
        secrets = [s.strip() for s in (secret.get_secret_value() if secret else "").split(",") if s.strip()]
        weakness = next((w for s in secrets if (w := events_secret_weakness(s))), None)
        if weakness and not demo:
            raise ConfigError(f"TOUCHPOINT_{platform.upper()}_WEBHOOK_SECRET: a secret is too weak "
                              f"({weakness}); use the one the platform shows, or `openssl rand -hex 32`")
        return secrets

    def webhook_secret_token(self) -> str:
        """The same in every process: set explicitly, or derived from the token (never the token)."""
        if self.webhook_secret is not None and self.webhook_secret.get_secret_value():
            return self.webhook_secret.get_secret_value()
        digest = hashlib.sha256(b"touchpoint-webhook:" + self.require_bot_token().encode()).hexdigest()
        return digest[:48]


def _private_http_or_https(url: str) -> bool:
    """https, or plain http to a loopback or private address (a model served next to the bot)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private


def _estimated_bits(secret: str) -> float:
    """A conservative guess at a secret's entropy: its length times the bits per character of the
    alphabet it draws from (hex, digits, letters, punctuation), but never more than its observed
    per-character (Shannon) entropy allows a little headroom for."""
    if re.fullmatch(r"[0-9a-f]+|[0-9A-F]+", secret):
        alphabet = 16
    else:
        alphabet = sum(size for pattern, size in ((r"[0-9]", 10), (r"[a-z]", 26), (r"[A-Z]", 26))
                       if re.search(pattern, secret))
        alphabet += 33 if re.search(r"[^0-9A-Za-z]", secret) else 0
    by_alphabet = len(secret) * math.log2(max(alphabet, 2))
    counts = Counter(secret)
    shannon = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts.values())
    # Random text of this length rarely shows fewer than ~2/3 of the alphabet's bits per character
    # in its letter frequencies; "aaaa…" or "abab…" show far fewer.
    by_frequency = len(secret) * shannon * 1.5
    return min(by_alphabet, by_frequency)


def _has_period(secret: str) -> bool:
    """"abcabcabc…", one block repeated, or a run of 5+ characters three times or more."""
    if any(secret == (secret[:p] * (len(secret) // p + 1))[:len(secret)]
           for p in range(1, len(secret) // 2 + 1)):
        return True
    return any(secret.count(secret[i:i + 5]) >= 3 for i in range(len(secret) - 4))


def _mostly_sequential(secret: str) -> bool:
    """"abcdef…", "123456…", "zyxw…": neighbours one code point apart most of the way."""
    steps = [ord(b) - ord(a) for a, b in itertools.pairwise(secret)]
    return sum(step in (-1, 0, 1) for step in steps) > len(steps) / 2


def events_secret_weakness(secret: str) -> str | None:
    """Why an events secret cannot be trusted, or None when it looks like a random key."""
    if secret in DOCUMENTED_EVENTS_SECRETS or any(w in secret.lower() for w in _PLACEHOLDER_WORDS):
        return "it is a documented example value"
    if len(secret) < EVENTS_SECRET_MIN_LENGTH:
        return f"{len(secret)} characters, at least {EVENTS_SECRET_MIN_LENGTH} are needed"
    if _has_period(secret) or _mostly_sequential(secret):
        return "it is a repeated or sequential pattern"
    bits = _estimated_bits(secret)
    if bits < EVENTS_SECRET_MIN_BITS:
        return f"about {bits:.0f} bits of entropy, at least {EVENTS_SECRET_MIN_BITS} are needed"
    return None


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
