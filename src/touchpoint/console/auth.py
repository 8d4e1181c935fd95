"""Staff log-in: argon2 password hashes, throttled attempts, encrypted session, CSRF and roles."""

from __future__ import annotations

import base64
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp_session import get_session, new_session
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.clock import utcnow
from touchpoint.config import SUPPORTED_LOCALES, Settings
from touchpoint.console.models import ROLES, StaffAccount
from touchpoint.db import Database
from touchpoint.i18n import get_translator

log = logging.getLogger(__name__)
_hasher = PasswordHasher()
# Verified when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))
MIN_PASSWORD_LENGTH = 8

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DB = web.AppKey("console_db", Database)
SETTINGS = web.AppKey("console_settings", Settings)
POKE_SENDER = web.AppKey("console_poke_sender", Callable[[], None])  # wakes the outbox sender
STAFF = web.RequestKey("console_staff", StaffAccount)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def add_staff(
    session: AsyncSession, username: str, password: str, role: str, display_name: str = "",
    locale: str | None = None,
) -> StaffAccount:
    """Create (or reset the password and role of) a staff account."""
    username = username.strip().lower()
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not username or len(username) > 64:
        raise ValueError("username must be 1 to 64 characters")
    if locale is not None and locale not in SUPPORTED_LOCALES:
        raise ValueError(f"locale must be one of {', '.join(SUPPORTED_LOCALES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    account = (await session.exec(select(StaffAccount).where(StaffAccount.username == username))).first()
    if account is None:
        account = StaffAccount(username=username, password_hash="", created_at=utcnow())
    account.password_hash = hash_password(password)
    account.role = role
    account.display_name = display_name or account.display_name or username
    account.locale = locale or account.locale or "en"
    account.active = True
    session.add(account)
    await session.flush()
    return account


DEMO_STAFF = ("demo", "touchpoint-demo")  # the demo's manager account, created only by `touchpoint demo`


async def seed_demo_staff(db: Database) -> None:
    async with db.session() as session:
        if (await session.exec(select(StaffAccount.id).limit(1))).first() is None:
            await add_staff(session, DEMO_STAFF[0], DEMO_STAFF[1], "manager", "Demo manager")


async def authenticate(session: AsyncSession, username: str, password: str) -> StaffAccount | None:
    name = username.strip().lower()
    account = (await session.exec(select(StaffAccount).where(StaffAccount.username == name))).first()
    usable = account is not None and account.active
    ok = verify_password(account.password_hash if usable and account else None, password)
    if not ok or account is None:
        return None
    account.last_login_at = utcnow()
    session.add(account)
    return account


class LoginThrottle:
    """At most ``attempts`` failed log-ins per ``window_s``, counted per name and per address."""

    def __init__(self, attempts: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        cutoff = self.clock() - self.window_s
        while failures and failures[0] < cutoff:
            failures.popleft()
        return failures

    def retry_after(self, *keys: str) -> float:
        """Seconds until another attempt is allowed (0: allowed now)."""
        waits = [
            failures[0] + self.window_s - self.clock()
            for failures in map(self._recent, keys) if len(failures) >= self.attempts
        ]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        for key in keys:
            self._recent(key).append(self.clock())

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)


def session_key(settings: Settings) -> bytes:
    if settings.console_secret_key is not None:
        key = base64.urlsafe_b64decode(settings.console_secret_key.get_secret_value())
        if len(key) != 32:
            raise ValueError("TOUCHPOINT_CONSOLE_SECRET_KEY must be 32 bytes, url-safe base64")
        return key
    log.warning("TOUCHPOINT_CONSOLE_SECRET_KEY is not set: sessions end when the process restarts")
    return secrets.token_bytes(32)


async def csrf_token(request: web.Request) -> str:
    session = await get_session(request)
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


async def start_staff_session(request: web.Request, account: StaffAccount) -> None:
    """A fresh session (and CSRF token) at log-in: a planted session id is worthless."""
    session = await new_session(request)
    session["staff_id"] = account.id
    session["csrf"] = secrets.token_urlsafe(32)


PUBLIC_PATHS = ("/login", "/static/")
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@web.middleware
async def security_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CSRF on every unsafe request, a staff session on every page but log-in, safe headers."""
    if request.method in UNSAFE_METHODS:
        session = await get_session(request)
        form = await request.post()
        sent = str(form.get("csrf_token", "")) or request.headers.get("X-CSRF-Token", "")
        expected = str(session.get("csrf", ""))
        if not expected or not hmac.compare_digest(sent, expected):
            raise web.HTTPForbidden(text=ui(request, "console.ui.err.csrf"))
    if not request.path.startswith(PUBLIC_PATHS):
        staff = await current_staff(request)
        if staff is None:
            if request.method == "GET":
                raise web.HTTPFound(f"/login?next={_safe_next(request.path_qs)}")
            raise web.HTTPUnauthorized(text=ui(request, "console.ui.err.login_first"))
        request[STAFF] = staff
    response = await handler(request)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'",
    )
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _safe_next(path: str) -> str:
    from urllib.parse import quote

    return quote(path if path.startswith("/") and not path.startswith("//") else "/", safe="")


async def current_staff(request: web.Request) -> StaffAccount | None:
    session = await get_session(request)
    staff_id = session.get("staff_id")
    if staff_id is None:
        return None
    db = request.app[DB]
    async with db.session() as db_session:
        account = await db_session.get(StaffAccount, staff_id)
    if account is None or not account.active:
        session.invalidate()
        return None
    return account


def manager_only(handler: Handler) -> Handler:
    """Agents see the inbox and tickets; journeys, campaigns and staff are for managers."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        staff = request[STAFF]
        if staff.role != "manager":
            raise web.HTTPForbidden(text=ui(request, "console.ui.err.managers_only"))
        return await handler(request)

    wrapper.__name__ = handler.__name__
    wrapper.__doc__ = handler.__doc__
    return wrapper


def ui(request: web.Request, key: str, /, **params: object) -> str:
    """Console text in the staff member's language (the default locale before log-in)."""
    settings = request.app[SETTINGS]
    staff = request.get(STAFF)
    locale = staff.locale if staff is not None else settings.default_locale
    return get_translator(settings.locales_dir, settings.default_locale)(locale, key, **params)


def client_address(request: web.Request) -> str:
    return request.remote or "unknown"


def throttle_keys(request: web.Request, username: str) -> tuple[str, str]:
    return f"name:{username.strip().lower()}", f"addr:{client_address(request)}"

