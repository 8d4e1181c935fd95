"""Staff log-in: argon2 password hashes (off the loop), revocable server-side sessions, CSRF, roles
and the security headers every answer carries."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import available_timezones

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session
from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.clock import utcnow
from touchpoint.config import SUPPORTED_LOCALES, Settings
from touchpoint.console.models import ROLES, ConsoleSession, StaffAccount
from touchpoint.console.passwords import PasswordWorker, hash_password_off_loop
from touchpoint.console.telegram_files import MAX_ATTACHMENT_BYTES
from touchpoint.console.throttle import LoginThrottle, Network
from touchpoint.console.throttle import client_address as _client_address
from touchpoint.console.words import Words, staff_words
from touchpoint.db import Database
from touchpoint.i18n import get_translator

log = logging.getLogger(__name__)
MIN_PASSWORD_LENGTH = 8

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DB = web.AppKey("console_db", Database)
SETTINGS = web.AppKey("console_settings", Settings)
DEMO_MODE = web.AppKey("console_demo_mode", bool)  # True only inside `touchpoint demo`
PASSWORDS = web.AppKey("console_passwords", PasswordWorker)
THROTTLE = web.AppKey("console_throttle", LoginThrottle)
TRUSTED_PROXIES = web.AppKey("console_trusted_proxies", tuple[Network, ...])
POKE_SENDER = web.AppKey("console_poke_sender", Callable[[], None])  # wakes the outbox sender
STAFF = web.RequestKey("console_staff", StaffAccount)


# --- accounts ---

async def add_staff(
    session: AsyncSession, username: str, password: str, role: str, display_name: str = "",
    locale: str | None = None, *, is_demo: bool = False,
) -> StaffAccount:
    """Create (or reset the password and role of) a staff account; a reset ends its sessions."""
    username = username.strip().lower()
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not username or len(username) > 64:
        raise ValueError("username must be 1 to 64 characters")
    if locale is not None and locale not in SUPPORTED_LOCALES:
        raise ValueError(f"locale must be one of {', '.join(SUPPORTED_LOCALES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    password_hash = await hash_password_off_loop(password)
    account = await find_staff(session, username)
    if account is None:
        account = StaffAccount(username=username, password_hash="", created_at=utcnow())
    else:
        await end_sessions(session, account)
    account.password_hash = password_hash
    account.role = role
    account.display_name = display_name or account.display_name or username
    account.locale = locale or account.locale or "en"
    account.active = True
    account.is_demo = is_demo
    session.add(account)
    await session.flush()
    return account


async def find_staff(session: AsyncSession, username: str) -> StaffAccount | None:
    name = username.strip().lower()
    if not name or len(name) > 64:
        return None
    return (await session.exec(select(StaffAccount).where(StaffAccount.username == name))).first()


async def end_sessions(session: AsyncSession, account: StaffAccount) -> int:
    """Sign the account out everywhere: every browser's next request goes to the log-in page."""
    result = await session.exec(  # type: ignore[call-overload]
        delete(ConsoleSession).where(col(ConsoleSession.staff_id) == account.id))
    return int(result.rowcount or 0)


async def disable_staff(session: AsyncSession, username: str) -> StaffAccount:
    """No more log-ins, and the open sessions stop working (`touchpoint staff add` re-enables)."""
    account = await find_staff(session, username)
    if account is None:
        raise ValueError(f"no staff account {username.strip().lower()!r}")
    account.active = False
    session.add(account)
    await end_sessions(session, account)
    return account


async def set_staff_role(session: AsyncSession, username: str, role: str) -> StaffAccount:
    """A new role from the next request on (the session looks the account up every time)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    account = await find_staff(session, username)
    if account is None:
        raise ValueError(f"no staff account {username.strip().lower()!r}")
    account.role = role
    session.add(account)
    return account


@functools.cache
def time_zones() -> tuple[str, ...]:
    """Every IANA time zone name this machine knows (for pickers), sorted."""
    return tuple(sorted(zone for zone in available_timezones() if "/" in zone or zone == "UTC"))


async def set_staff_preferences(
    session: AsyncSession, username: str, *, timezone: str, telegram_id: int | None,
) -> StaffAccount:
    """The account's time zone (empty: the shop's) and own Telegram user id (None: not linked).
    Raises ValueError and changes nothing for an unknown zone, a bad id or an unknown account."""
    if timezone and timezone not in time_zones():
        raise ValueError("unknown time zone")
    if telegram_id is not None and not 0 < telegram_id < 2**52:
        raise ValueError("not a Telegram user id")
    account = await find_staff(session, username)
    if account is None:
        raise ValueError(f"no staff account {username.strip().lower()!r}")
    account.timezone, account.telegram_id = timezone, telegram_id
    session.add(account)
    return account


async def logout_staff(session: AsyncSession, username: str) -> int:
    account = await find_staff(session, username)
    if account is None:
        raise ValueError(f"no staff account {username.strip().lower()!r}")
    return await end_sessions(session, account)


DEMO_STAFF = ("demo", "touchpoint-demo")  # the demo's manager account, created only by `touchpoint demo`


async def seed_demo_staff(db: Database) -> None:
    """The demo's manager (flagged ``is_demo``: usable only while ``touchpoint demo`` runs), made
    when the database has no staff yet, or switched back on if a non-demo run disabled it."""
    async with db.session() as session:
        existing = await find_staff(session, DEMO_STAFF[0])
        if existing is not None and existing.is_demo:
            existing.active = True
            session.add(existing)
        elif (await session.exec(select(StaffAccount.id).limit(1))).first() is None:
            await add_staff(session, DEMO_STAFF[0], DEMO_STAFF[1], "manager", "Demo manager", is_demo=True)


async def disable_demo_staff(db: Database) -> int:
    """Outside the demo, any account the demo made is switched off and signed out."""
    async with db.session() as session:
        accounts = (await session.exec(
            select(StaffAccount).where(col(StaffAccount.is_demo), col(StaffAccount.active)))).all()
        for account in accounts:
            account.active = False
            session.add(account)
            await end_sessions(session, account)
    if accounts:
        log.warning("%d demo staff account(s) disabled: they log in only under `touchpoint demo`",
                    len(accounts))
    return len(accounts)


def usable(account: StaffAccount | None, *, demo_mode: bool) -> bool:
    return account is not None and account.active and (demo_mode or not account.is_demo)


async def authenticate(
    db: Database, passwords: PasswordWorker, username: str, password: str, *, demo_mode: bool = False,
) -> StaffAccount | None:
    """The account, when the name and password match and it may log in here. The password is
    checked (in a worker thread) even for an unknown name, so both cost the same time.
    Raises ``PasswordWorkBusy`` when too many log-ins are being checked already."""
    async with db.session() as session:
        account = await find_staff(session, username)
    allowed = account if usable(account, demo_mode=demo_mode) else None
    ok = await passwords.verify(allowed.password_hash if allowed is not None else None, password)
    if allowed is None or not ok:
        if account is not None and account.is_demo and not demo_mode:
            log.warning("console: the demo account is refused outside `touchpoint demo`")
        return None
    async with db.session() as session:
        await session.exec(update(StaffAccount).where(  # type: ignore[call-overload]
            col(StaffAccount.id) == allowed.id).values(last_login_at=utcnow()))
    return allowed


# --- sessions ---

def session_key(settings: Settings) -> bytes:
    if settings.console_secret_key is not None:
        key = base64.urlsafe_b64decode(settings.console_secret_key.get_secret_value())
        if len(key) != 32:
            raise ValueError("TOUCHPOINT_CONSOLE_SECRET_KEY must be 32 bytes, url-safe base64")
        return key
    log.warning("TOUCHPOINT_CONSOLE_SECRET_KEY is not set: sessions end when the process restarts")
    return secrets.token_bytes(32)


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def csrf_token(request: web.Request) -> str:
    session = await get_session(request)
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


async def start_staff_session(request: web.Request, account: StaffAccount) -> None:
    """A fresh cookie (and CSRF token) at log-in, naming a new server-side session row."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    hours = request.app[SETTINGS].console_session_hours
    async with request.app[DB].session() as db_session:
        await db_session.exec(  # type: ignore[call-overload]
            delete(ConsoleSession).where(col(ConsoleSession.expires_at) < now))
        db_session.add(ConsoleSession(id=_session_id(token), staff_id=account.id, created_at=now,
                                      expires_at=now + timedelta(hours=hours)))
    session = await new_session(request)
    session["sid"] = token
    session["csrf"] = secrets.token_urlsafe(32)


async def end_staff_session(request: web.Request) -> None:
    """Log-out: the row goes, so a copy of the cookie opens nothing either."""
    session = await get_session(request)
    token = session.get("sid")
    if isinstance(token, str):
        async with request.app[DB].session() as db_session:
            await db_session.exec(  # type: ignore[call-overload]
                delete(ConsoleSession).where(col(ConsoleSession.id) == _session_id(token)))
    session.invalidate()


async def current_staff(request: web.Request) -> StaffAccount | None:
    session = await get_session(request)
    token = session.get("sid")
    if not isinstance(token, str):
        return None
    query = (select(StaffAccount)
             .join(ConsoleSession, col(ConsoleSession.staff_id) == col(StaffAccount.id))
             .where(col(ConsoleSession.id) == _session_id(token), col(ConsoleSession.expires_at) > utcnow()))
    async with request.app[DB].session() as db_session:
        account = (await db_session.exec(query)).first()
    if not usable(account, demo_mode=request.app[DEMO_MODE]):
        session.invalidate()
        return None
    return account


# --- requests ---

PUBLIC_PATHS = ("/login", "/static/")
FORM_BYTES = 64 * 1024  # any form but an upload
UPLOAD_SUFFIX = "/attach"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
}
_DEFAULT_ERROR_TEXT = re.compile(r"^\d{3}: ")  # aiohttp's own "404: Not Found"
_ERROR_WORDS = {404: "console.ui.err.not_found", 405: "console.ui.err.not_found",
                413: "console.ui.err.too_large", 403: "console.ui.err.forbidden"}
_ERROR_TITLES = {403: "console.ui.err.title_forbidden", 404: "console.ui.err.title_not_found",
                 405: "console.ui.err.title_not_found"}


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the one place that sets the headers, just before any answer goes
    out (pages, redirects, error pages, crashes, static files, whatever their final status)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith("/static/") or response.status >= 400:
        response.headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def error_pages_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The outermost layer: staff read words, never "404: Not Found" or a stack trace."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        text = exc.text or ""
        if exc.status == 413 and request.path.endswith(UPLOAD_SUFFIX):  # aiohttp's own words otherwise
            text = ui(request, "console.ui.file.err.too_large", mb=MAX_ATTACHMENT_BYTES // 2**20)
        elif _DEFAULT_ERROR_TEXT.match(text) or exc.status == 413:
            text = ui(request, _ERROR_WORDS.get(exc.status, "console.ui.err.generic"))
        return await _error_page(request, exc.status, text, exc.headers)
    except Exception:
        resource = request.match_info.route.resource  # the route, not the path: no search text in logs
        log.exception("console: unhandled error on %s %s", request.method,
                      resource.canonical if resource is not None else "?")
        return await _error_page(request, 500, ui(request, "console.ui.err.server"))


async def _error_page(request: web.Request, status: int, text: str,
                      headers: Any = None) -> web.StreamResponse:
    """The console's own page (styled, with navigation) around the words; plain words for the
    scripts' background requests and if the page itself cannot be drawn."""
    keep = {name: headers[name] for name in ("Retry-After", "Allow") if headers and name in headers}
    if request.path.startswith("/static/") or request.path.endswith("/messages") \
            or request.query.get("partial"):
        return web.Response(status=status, text=text, headers=keep)
    try:
        title = ui(request, _ERROR_TITLES.get(status, "console.ui.err.title"))
        # The page's whole context here: the error may come before the template context was made.
        context = {"title": title, "message": text, "status": status, "staff": request.get(STAFF),
                   "csrf_token": await csrf_token(request), "path": request.path,
                   "_": functools.partial(ui, request), "w": staff_words_for(request)}
        response = aiohttp_jinja2.render_template("error.html", request, context, status=status)
    except Exception:  # never let the error page hide the error
        log.exception("console: the error page could not be drawn")
        return web.Response(status=status, text=text, headers=keep)
    response.headers.update(keep)
    return response


@web.middleware
async def security_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CSRF on every unsafe request, a live staff session on every page but log-in. Only a reply's
    attachment may be bigger than a form (the app's ``client_max_size`` caps that)."""
    if request.method in UNSAFE_METHODS:
        if (request.content_length or 0) > FORM_BYTES and not request.path.endswith(UPLOAD_SUFFIX):
            raise web.HTTPRequestEntityTooLarge(FORM_BYTES, request.content_length or 0)
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
                raise web.HTTPFound(f"/login?next={quote(safe_target(request.path_qs), safe='')}")
            raise web.HTTPUnauthorized(text=ui(request, "console.ui.err.login_first"))
        request[STAFF] = staff
    return await handler(request)


DEFAULT_TARGET = "/"
_UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f\u3000\ufeff]")


def safe_target(value: object) -> str:
    """Where to go after log-in: a path on this site, or the dashboard. Browsers drop tabs and
    new lines and read ``\\`` as ``/``, so ``/\\t/evil.example`` would be ``//evil.example``:
    such characters are removed first, then anything that is not a plain local path is refused."""
    target = _UNSAFE_CHARS.sub("", str(value or ""))
    for candidate in (target, unquote(target)):  # also what a second decoding would make of it
        if not candidate.startswith("/") or candidate.startswith(("//", "/\\")) or "\\" in candidate:
            return DEFAULT_TARGET
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return DEFAULT_TARGET
    return target


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
    return staff_words_for(request)(key, **params)


def staff_words_for(request: web.Request) -> Words:
    """Words, dates and money for this request's staff member: their language (the default locale
    before log-in) and their time zone (unless they chose one: the shop's, ``handoff_timezone``)."""
    settings = request.app[SETTINGS]
    staff = request.get(STAFF)
    locale = staff.locale if staff is not None else settings.default_locale
    zone = staff.timezone if staff is not None and staff.timezone else settings.handoff_timezone
    return staff_words(get_translator(settings.locales_dir, settings.default_locale), locale, zone)


def client_address(request: web.Request) -> str:
    """The real client: the peer, or behind TOUCHPOINT_CONSOLE_TRUSTED_PROXIES the last hop they saw."""
    return _client_address(request.remote, request.headers.getall("X-Forwarded-For", []),
                           request.app[TRUSTED_PROXIES])
