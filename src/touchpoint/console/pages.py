"""The console's pages: aiohttp handlers that read through ``queries`` and act through ``actions``."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.web_request import FileField
from aiohttp_session import get_session
from aiohttp_session import setup as setup_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from sqlmodel import col, select

from touchpoint.aftersales import service as aftersales
from touchpoint.aftersales.models import Ticket
from touchpoint.business import service as business
from touchpoint.catalog import service as catalog
from touchpoint.clock import utcnow
from touchpoint.config import SUPPORTED_LOCALES, Settings
from touchpoint.console import actions, charts, queries
from touchpoint.console import assistant as console_assistant
from touchpoint.console.auth import (
    DB,
    DEMO_MODE,
    FORM_BYTES,
    MIN_PASSWORD_LENGTH,
    PASSWORDS,
    POKE_SENDER,
    SETTINGS,
    STAFF,
    THROTTLE,
    TRUSTED_PROXIES,
    add_staff,
    authenticate,
    client_address,
    csrf_token,
    disable_staff,
    end_staff_session,
    error_pages_middleware,
    find_staff,
    logout_staff,
    manager_only,
    safe_target,
    security_headers,
    security_middleware,
    session_key,
    set_staff_preferences,
    set_staff_role,
    staff_words_for,
    start_staff_session,
    time_zones,
    ui,
)
from touchpoint.console.models import ROLES, Campaign, StaffAccount
from touchpoint.console.passwords import PasswordWorkBusy, PasswordWorker
from touchpoint.console.telegram_files import (
    MAX_ATTACHMENT_BYTES,
    AttachmentRefused,
    SendFailed,
    accept_attachment,
    content_disposition,
    fetch_file,
)
from touchpoint.console.templates import campaign_language
from touchpoint.console.throttle import LoginThrottle, MemoryCounters, RedisCounters, parse_networks
from touchpoint.customers.models import Customer
from touchpoint.db import Database
from touchpoint.handoff.models import Conversation, TranscriptMessage
from touchpoint.i18n import get_translator, resolve_locale
from touchpoint.messaging.broadcast import estimate_broadcast
from touchpoint.messaging.templates import render
from touchpoint.orders.models import Order
from touchpoint.understanding.text import guess_locale
from touchpoint.wiring import load_all_templates

HERE = Path(__file__).parent
PERIODS = {"7": 7, "30": 30, "90": 90}
MAX_TEXT = 4000
MAX_CAPTION = 900  # Telegram's 1024 for a caption, with room for the "💬 name:" line
routes = web.RouteTableDef()


def create_console_app(settings: Settings, db: Database, *, demo_mode: bool = False) -> web.Application:
    """``demo_mode``: only `touchpoint demo` passes True; the demo's own account logs in only then."""
    load_all_templates()
    # Forms are small; a reply's attachment may be bigger (``security_middleware`` keeps the rest small).
    app = web.Application(client_max_size=MAX_ATTACHMENT_BYTES + FORM_BYTES)
    app[SETTINGS], app[DB], app[DEMO_MODE] = settings, db, demo_mode
    app[PASSWORDS] = PasswordWorker(settings.console_password_workers, settings.console_password_queue)
    app[TRUSTED_PROXIES] = parse_networks(settings.console_trusted_proxies)
    app[THROTTLE] = _login_throttle(app, settings)
    app.on_response_prepare.append(security_headers)  # every answer, errors included
    app.middlewares.append(error_pages_middleware)  # outermost: errors in words
    setup_session(app, EncryptedCookieStorage(
        session_key(settings), cookie_name="touchpoint_console", httponly=True, samesite="Strict",
        secure=settings.console_cookie_secure, max_age=settings.console_session_hours * 3600,
    ))
    app.middlewares.append(security_middleware)
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
        context_processors=[_page_context],
    )
    env.filters["when"] = _when
    env.filters["minutes"] = _minutes
    env.globals["money"] = _money
    app.router.add_routes(routes)
    console_assistant.setup(app)
    app.router.add_static("/static", HERE / "static", append_version=True)
    return app


def _login_throttle(app: web.Application, settings: Settings) -> LoginThrottle:
    """Counted in Redis (every process together) when it is configured, else in this process."""
    counters: MemoryCounters | RedisCounters = MemoryCounters()
    if settings.redis_url:
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        counters = RedisCounters(redis)

        async def close_redis(_app: web.Application) -> None:
            await redis.aclose()

        app.on_cleanup.append(close_redis)

    async def close_passwords(app: web.Application) -> None:
        app[PASSWORDS].close()

    app.on_cleanup.append(close_passwords)
    return LoginThrottle(
        counters, attempts=settings.console_login_attempts, window_s=settings.console_login_window_s,
        address_attempts=settings.console_login_address_attempts,
        lockout_max_s=settings.console_login_lockout_max_s, prefix=settings.redis_prefix,
    )


async def _page_context(request: web.Request) -> dict[str, Any]:
    return {"staff": request.get(STAFF), "csrf_token": await csrf_token(request), "path": request.path,
            "_": functools.partial(ui, request), "w": staff_words_for(request),
            "command": "touchpoint staff add NAME --role agent|manager"}


@jinja2.pass_context
def _when(context: Any, value: datetime | None) -> str:
    """A moment in the staff member's language and the staff's time zone."""
    return str(context["w"].when(value))


@jinja2.pass_context
def _minutes(context: Any, value: float | None) -> str:
    return str(context["w"].minutes(value))


@jinja2.pass_context
def _money(context: Any, minor: int | None, currency: str | None) -> str:
    return str(context["w"].money(minor, currency))


def _db(request: web.Request) -> Database:
    return request.app[DB]


def _settings(request: web.Request) -> Settings:
    return request.app[SETTINGS]


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise web.HTTPNotFound() from None


async def _text(request: web.Request, name: str = "text") -> str:
    text = str((await request.post()).get(name, "")).strip()
    if not text or len(text) > MAX_TEXT:
        raise web.HTTPBadRequest(text=ui(request, "console.ui.err.text_length", max=MAX_TEXT))
    return text


async def _flash(request: web.Request, key: str, /, **params: object) -> None:
    """A one-time notice for the next page, shown in the staff member's language."""
    (await get_session(request))["flash"] = [key, params]


async def _pop_flash(request: web.Request) -> str | None:
    flash = (await get_session(request)).pop("flash", None)
    return ui(request, flash[0], **flash[1]) if flash else None


# --- access ---

@routes.get("/login")
@aiohttp_jinja2.template("login.html")
async def login_page(request: web.Request) -> dict[str, Any]:
    return {"next": safe_target(request.query.get("next")), "error": None}


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    target = safe_target(form.get("next"))
    throttle, address = request.app[THROTTLE], client_address(request)
    wait = await throttle.retry_after(address, username)
    if wait > 0:
        minutes = int(wait // 60) + 1
        return _login_error(request, target, ui(request, "console.ui.err.throttled", minutes=minutes), 429)
    try:
        account = await authenticate(_db(request), request.app[PASSWORDS], username, password,
                                     demo_mode=request.app[DEMO_MODE])
    except PasswordWorkBusy:
        response = _login_error(request, target, ui(request, "console.ui.err.busy"), 503)
        response.headers["Retry-After"] = "5"
        return response
    if account is None:
        await throttle.failed(address, username)
        return _login_error(request, target, ui(request, "console.ui.err.wrong_login"), 401)
    await throttle.succeeded(address, username)
    await start_staff_session(request, account)
    raise web.HTTPSeeOther(target)


def _login_error(request: web.Request, target: str, error: str, status: int) -> web.Response:
    return aiohttp_jinja2.render_template("login.html", request, {"next": target, "error": error},
                                          status=status)


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    await end_staff_session(request)
    raise web.HTTPSeeOther("/login")


# --- dashboard ---

@routes.get("/")
@aiohttp_jinja2.template("dashboard.html")
async def dashboard(request: web.Request) -> dict[str, Any]:
    period = request.query.get("days", "30")
    days = PERIODS.get(period, 30)
    now = utcnow()
    since = now - timedelta(days=days)
    async with _db(request).session() as session:
        stages = await queries.funnel(session, since)
        journeys = sorted((await queries.journey_numbers(session, since)).values(), key=lambda j: j.key)
        words = staff_words_for(request)
        csat = await queries.csat_trend(session, since, now, words.day)
        times = await queries.handoff_times(session, since)
        csat_average, csat_count = await queries.csat_summary(session, since)
        weekly = await queries.weekly_counts(session, since, now, words.day)
        gaps = await queries.content_gaps(session, since)
        revenue = await queries.journey_revenue(session, _settings(request), since)
        staff = request[STAFF]
        faq = await queries.faq_choices(session, staff.locale) if staff.role == "manager" else []
    series = [ui(request, f"console.ui.col.{name}") for name in ("sent", "delivered", "clicked", "converted")]
    labelled = [(ui(request, f"console.ui.stage.{stage}"), count) for stage, count in stages]
    # One bar per journey and currency, the largest first, each amount in the reader's locale.
    earned = sorted(((words.journey(key), amount, currency) for key, amounts in revenue.items()
                     for currency, amount in amounts.items()), key=lambda row: (-row[1], row[0]))
    weekly_series = [ui(request, f"console.ui.dash.{name}")
                     for name in ("conversations", "tickets", "conversions")]
    return {
        "days": days, "periods": PERIODS, "stages": stages, "journeys": journeys, "times": times,
        "gaps": gaps, "faq": faq, "flash": await _pop_flash(request),
        "csat_average": csat_average, "csat_count": csat_count, "earned": earned,
        "weekly_chart": charts.grouped_bars(weekly, weekly_series,
                                            ui(request, "console.ui.dash.weekly_activity"))
        if any(sum(v) for _, v in weekly) else None,
        "revenue_chart": charts.bars([(name, float(amount)) for name, amount, _ in earned],
                                     ui(request, "console.ui.dash.revenue"),
                                     shown=[words.money(amount, currency) for _, amount, currency in earned])
        if earned else None,
        "funnel": charts.funnel(labelled, ui(request, "console.ui.dash.funnel")),
        "journey_chart": charts.grouped_bars(
            [(words.journey(j.key), [j.sent, j.delivered, j.clicked, j.converted]) for j in journeys], series,
            ui(request, "console.ui.nav.journeys")) if journeys else None,
        "csat_chart": charts.line([(label, average) for label, average, _ in csat],
                                  ui(request, "console.ui.dash.csat"), counts=[count for _, _, count in csat])
        if any(count for _, _, count in csat) else None,
        "gaps_chart": charts.bars([(gap.text, float(gap.total)) for gap in gaps],
                                  ui(request, "console.ui.dash.gaps"))
        if gaps else None,
    }


# --- content gaps: the FAQ learns (managers) ---

@routes.post("/gaps/phrasing")
@manager_only
async def gap_to_phrasing(request: web.Request) -> web.StreamResponse:
    """An unanswered question becomes a new phrasing of an existing entry, answered from now on."""
    form = await request.post()
    question, faq_id = str(form.get("question", "")), str(form.get("faq_id", ""))[:64]
    added = await catalog.add_faq_phrasing(_db(request), faq_id, guess_locale(question), question)
    await _flash(request, "console.ui.flash.phrasing_added" if added else "console.ui.flash.faq_invalid",
                 id=faq_id)
    raise web.HTTPSeeOther("/#gaps")


@routes.post("/gaps/entry")
@manager_only
async def gap_to_entry(request: web.Request) -> web.StreamResponse:
    """An unanswered question and a manager's answer become a new FAQ entry."""
    form = await request.post()
    question, faq_id = str(form.get("question", "")), str(form.get("faq_id", "")).strip()[:64]
    problem = await catalog.create_faq_entry(_db(request), faq_id, guess_locale(question), question,
                                             str(form.get("answer", "")))
    await _flash(request, f"console.ui.flash.faq_{problem}" if problem else "console.ui.flash.entry_created",
                 id=faq_id)
    raise web.HTTPSeeOther("/#gaps")


# --- inbox ---

def _view(request: web.Request) -> str:
    view = request.query.get("view", "open")
    return view if view in queries.INBOX_VIEWS else "open"


async def _inbox_rows(request: web.Request, session: Any, view: str) -> list[Any]:
    return await queries.inbox(session, view, actions.author_name(request[STAFF]))


@routes.get("/inbox")
async def inbox(request: web.Request) -> web.StreamResponse:
    view = _view(request)
    async with _db(request).session() as session:
        rows = await _inbox_rows(request, session, view)
    current = request.query.get("current", "")
    context = {"rows": rows, "now": utcnow(), "view": view, "views": queries.INBOX_VIEWS,
               "current": int(current) if current.isdigit() else None,
               "flash": await _pop_flash(request) if not request.query.get("partial") else None}
    name = "inbox_list.html" if request.query.get("partial") else "inbox.html"
    return aiohttp_jinja2.render_template(name, request, context)


async def _conversation(request: web.Request, session: Any) -> Conversation:
    conversation = await session.get(Conversation, _int(request.match_info["id"]))
    if conversation is None:
        raise web.HTTPNotFound(text=ui(request, "console.ui.err.no_conversation"))
    return conversation  # type: ignore[no-any-return]


@routes.get("/inbox/{id}")
@aiohttp_jinja2.template("conversation.html")
async def conversation_page(request: web.Request) -> dict[str, Any]:
    async with _db(request).session() as session:
        conversation = await _conversation(request, session)
        customer = await session.get(Customer, conversation.customer_id)
        if customer is None:
            raise web.HTTPNotFound(text=ui(request, "console.ui.err.no_customer"))
        messages = await queries.transcript(session, conversation)
        card = await queries.context_card(session, customer)
        view = _view(request)
        rows = await _inbox_rows(request, session, view)
        assistant = await console_assistant.conversation_panel(request, session, conversation, customer,
                                                               messages)
    canned = _canned(request, card.locale)
    return {**assistant,
            "conversation": conversation, "customer": customer, "messages": messages, "card": card,
            "claimed_by": queries.claimed_by(messages), "flash": await _pop_flash(request),
            "last_id": messages[-1].id if messages else 0, "rows": rows, "view": view,
            "views": queries.INBOX_VIEWS, "current": conversation.id, "now": utcnow(), "canned": canned,
            "attachment_mb": MAX_ATTACHMENT_BYTES // 2**20, "max_caption": MAX_CAPTION}


def _canned(request: web.Request, locale: str) -> list[tuple[str, str]]:
    """The Telegram desk's canned replies (`/t NAME`): (name, the text the customer would get)."""
    settings = _settings(request)
    translate = get_translator(settings.locales_dir, settings.default_locale)
    return [(name, texts.get(locale) or translate(locale, f"handoff.canned.{name}"))
            for name, texts in sorted(settings.handoff_canned.items())]


@routes.post("/inbox/{id}/canned")
async def conversation_canned(request: web.Request) -> web.StreamResponse:
    """A canned reply, as `/t NAME` sends it from the staff topic: in the customer's language."""
    name = str((await request.post()).get("name", ""))
    async with _db(request).session() as session:
        conversation = await _conversation(request, session)
        if conversation.status != "open":
            raise web.HTTPConflict(text=ui(request, "console.ui.err.closed"))
        customer = await session.get(Customer, conversation.customer_id)
        if customer is None:
            raise web.HTTPNotFound(text=ui(request, "console.ui.err.no_customer"))
        locale = resolve_locale(customer.locale, customer.language_code, _settings(request).default_locale)
        texts = dict(_canned(request, locale))
        if name not in texts:
            raise web.HTTPBadRequest(text=ui(request, "console.ui.err.no_canned"))
        await actions.send_staff_reply(session, _settings(request), conversation, request[STAFF], texts[name])
    _poke_sender(request)
    await _flash(request, "console.ui.flash.reply_sent")
    raise web.HTTPSeeOther(f"/inbox/{conversation.id}")


@routes.get("/inbox/{id}/messages")
async def conversation_feed(request: web.Request) -> web.Response:
    """New transcript lines since ``after`` as HTML, polled by console.js: no manual reload."""
    after = _int(request.query.get("after", "0"))
    async with _db(request).session() as session:
        conversation = await _conversation(request, session)
        messages = await queries.transcript(session, conversation, after_id=after)
        translations = await console_assistant.customer_words_translated(request, session,
                                                                         conversation.customer_id, messages)
    html = aiohttp_jinja2.render_string("transcript_items.html", request,
                                        {"messages": messages, "translations": translations,
                                         "conversation": conversation})
    body = {"html": html, "last_id": messages[-1].id if messages else after, "status": conversation.status}
    return web.json_response(body)


@routes.post("/inbox/{id}/reply")
async def conversation_reply(request: web.Request) -> web.StreamResponse:
    text = await _text(request)
    async with _db(request).session() as session:
        conversation = await _conversation(request, session)
        if conversation.status != "open":
            raise web.HTTPConflict(text=ui(request, "console.ui.err.closed"))
        await actions.send_staff_reply(session, _settings(request), conversation, request[STAFF], text)
    _poke_sender(request)
    await _flash(request, "console.ui.flash.reply_sent")
    raise web.HTTPSeeOther(f"/inbox/{conversation.id}")


@routes.post("/inbox/{id}/note")
async def conversation_note(request: web.Request) -> web.StreamResponse:
    text = await _text(request)
    async with _db(request).session() as session:
        conversation = await _conversation(request, session)
        actions.add_conversation_note(session, conversation, request[STAFF], text)
    await _flash(request, "console.ui.flash.note_added_private")
    raise web.HTTPSeeOther(f"/inbox/{conversation.id}")


@routes.post("/inbox/{id}/attach")
async def conversation_attach(request: web.Request) -> web.StreamResponse:
    """A photo or document (with an optional caption) for the customer: checked, sent to their chat,
    then kept in the transcript; a refused file changes nothing and is explained."""
    form = await request.post()
    upload, caption = form.get("file"), str(form.get("text", "")).strip()
    problem: str | None = None
    async with _db(request).session() as session:
        conversation = await _conversation(request, session)
        if conversation.status != "open":
            raise web.HTTPConflict(text=ui(request, "console.ui.err.closed"))
        try:
            if len(caption) > MAX_CAPTION:
                raise AttachmentRefused("caption")
            attachment = accept_attachment(upload.file.read() if isinstance(upload, FileField) else b"",
                                           upload.filename if isinstance(upload, FileField) else "")
            await actions.send_staff_attachment(session, _settings(request), conversation, request[STAFF],
                                                attachment, caption)
        except (AttachmentRefused, SendFailed) as exc:
            problem = exc.code  # nothing was sent or kept (a customer who blocked the bot is marked so)
    await _flash(request, f"console.ui.file.err.{problem}" if problem else "console.ui.flash.file_sent",
                 mb=MAX_ATTACHMENT_BYTES // 2**20, max=MAX_CAPTION)
    raise web.HTTPSeeOther(f"/inbox/{conversation.id}")


@routes.get("/inbox/{id}/files/{message}")
async def conversation_file(request: web.Request) -> web.StreamResponse:
    """A photo or document of this conversation, fetched through the Bot API for signed-in staff
    (Telegram keeps the file; the console never stores it or hands out its address)."""
    async with _db(request).session() as session:
        conversation = await _conversation(request, session)
        message = await session.get(TranscriptMessage, _int(request.match_info["message"]))
    settings = _settings(request)
    if message is None or message.customer_id != conversation.customer_id or not message.file_id \
            or settings.bot_token is None:
        raise web.HTTPNotFound(text=ui(request, "console.ui.err.no_file"))
    token = settings.bot_token.get_secret_value()
    data = await fetch_file(settings.telegram_api_base, token, message.file_id)
    if data is None:
        raise web.HTTPNotFound(text=ui(request, "console.ui.err.no_file"))
    headers = {"Cache-Control": "private, max-age=3600"}
    if message.kind == "photo":
        return web.Response(body=data, content_type="image/jpeg", headers=headers)
    headers["Content-Disposition"] = content_disposition(message.file_name or "file")
    return web.Response(body=data, content_type="application/octet-stream", headers=headers)


@routes.post("/inbox/{id}/claim")
async def conversation_claim(request: web.Request) -> web.StreamResponse:
    async with _db(request).session() as session:
        conversation = await _conversation(request, session)
        actions.claim_conversation(session, _settings(request), conversation, request[STAFF])
    await _flash(request, "console.ui.flash.taken")
    raise web.HTTPSeeOther(f"/inbox/{conversation.id}")


@routes.post("/inbox/{id}/close")
async def conversation_close(request: web.Request) -> web.StreamResponse:
    async with _db(request).session() as session:
        conversation = await _conversation(request, session)
        closed = await actions.close_conversation(session, _settings(request), conversation, request[STAFF])
    _poke_sender(request)
    await _flash(request, "console.ui.flash.closed" if closed else "console.ui.flash.already_closed")
    raise web.HTTPSeeOther("/inbox")


def _poke_sender(request: web.Request) -> None:
    """Wake the outbox sender (when the runner gave us one) so replies go out at once."""
    poke = request.app.get(POKE_SENDER)
    if poke is not None:
        poke()


# --- tickets ---

@routes.get("/tickets")
@aiohttp_jinja2.template("tickets.html")
async def tickets_page(request: web.Request) -> dict[str, Any]:
    kind = request.query.get("kind", "")
    status = request.query.get("status", "open")
    overdue = request.query.get("overdue") == "1"
    now = utcnow()
    async with _db(request).session() as session:
        rows = await queries.tickets(session, now, kind if kind in queries.TICKET_KINDS else "",
                                     status if status in (*aftersales.STATUSES, "open") else "", overdue)
    return {"rows": rows, "kind": kind, "status": status, "overdue": overdue, "now": now,
            "kinds": queries.TICKET_KINDS, "statuses": aftersales.STATUSES, "is_overdue": queries.is_overdue}


async def _ticket(request: web.Request, session: Any) -> Ticket:
    ticket = await session.get(Ticket, _int(request.match_info["id"]))
    if ticket is None:
        raise web.HTTPNotFound(text=ui(request, "console.ui.err.no_ticket"))
    return ticket  # type: ignore[no-any-return]


@routes.get("/tickets/{id}")
@aiohttp_jinja2.template("ticket.html")
async def ticket_page(request: web.Request) -> dict[str, Any]:
    async with _db(request).session() as session:
        ticket = await _ticket(request, session)
        customer = await session.get(Customer, ticket.customer_id)
        order = await session.get(Order, ticket.order_id) if ticket.order_id else None
        history = await queries.ticket_history(session, ticket)
    # Only the moves the after-sales lifecycle allows from here.
    return {"ticket": ticket, "customer": customer, "order": order, "history": history,
            "statuses": aftersales.TRANSITIONS.get(ticket.status, ()),
            "overdue": queries.is_overdue(ticket, utcnow()), "flash": await _pop_flash(request)}


@routes.post("/tickets/{id}/status")
async def ticket_status(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    status, note = str(form.get("status", "")), str(form.get("note", "")).strip()[:2000]
    async with _db(request).session() as session:
        ticket = await _ticket(request, session)
        try:
            await actions.change_ticket_status(session, _settings(request), ticket, status, request[STAFF],
                                               note)
        except aftersales.TicketError as exc:
            # Refused by the lifecycle: nothing was written; say why in the staff member's language.
            await _flash(request, f"console.ui.ticket.err.{exc.code}", status=status, current=ticket.status)
            raise web.HTTPSeeOther(f"/tickets/{ticket.id}") from None
    _poke_sender(request)
    await _flash(request, "console.ui.flash.status_changed")
    raise web.HTTPSeeOther(f"/tickets/{ticket.id}")


@routes.post("/tickets/{id}/note")
async def ticket_note(request: web.Request) -> web.StreamResponse:
    text = await _text(request)
    async with _db(request).session() as session:
        ticket = await _ticket(request, session)
        actions.add_ticket_note(session, ticket, request[STAFF], text)
    await _flash(request, "console.ui.flash.note_added")
    raise web.HTTPSeeOther(f"/tickets/{ticket.id}")


@routes.get("/tickets/{id}/photos/{index}")
async def ticket_photo(request: web.Request) -> web.StreamResponse:
    """Photos are Telegram file ids, fetched through the Bot API (the console never stores them)."""
    async with _db(request).session() as session:
        ticket = await _ticket(request, session)
    index = _int(request.match_info["index"])
    settings = _settings(request)
    if settings.bot_token is None or not 0 <= index < len(ticket.photos):
        raise web.HTTPNotFound(text=ui(request, "console.ui.err.no_photo"))
    data = await fetch_file(settings.telegram_api_base, settings.bot_token.get_secret_value(),
                            ticket.photos[index])
    if data is None:
        raise web.HTTPNotFound(text=ui(request, "console.ui.err.no_photo"))
    return web.Response(body=data, content_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=3600"})


# --- customers ---

@routes.get("/customers")
@aiohttp_jinja2.template("customers.html")
async def customers_page(request: web.Request) -> dict[str, Any]:
    text = request.query.get("q", "")[:100]
    async with _db(request).session() as session:
        found = await queries.find_customers(session, text)
        accounts = await queries.store_accounts(session, found)
    return {"customers": found, "q": text, "accounts": accounts}


@routes.get("/customers/{id}")
@aiohttp_jinja2.template("customer.html")
async def customer_page(request: web.Request) -> dict[str, Any]:
    async with _db(request).session() as session:
        customer = await session.get(Customer, _int(request.match_info["id"]))
        if customer is None:
            raise web.HTTPNotFound(text=ui(request, "console.ui.err.no_customer"))
        items = await queries.timeline(session, customer)
        card = await queries.context_card(session, customer)
    locale = resolve_locale(customer.locale, customer.language_code, _settings(request).default_locale)
    kind = request.query.get("kind", "")
    if kind in queries.TIMELINE_KINDS:
        items = [item for item in items if item.kind == kind]
    else:
        kind = ""
    return {"customer": customer, "timeline": items, "card": card, "locale": locale, "kind": kind,
            "kinds": queries.TIMELINE_KINDS}


# --- business accounts (managers) ---

@routes.get("/business")
@manager_only
@aiohttp_jinja2.template("business.html")
async def business_page(request: web.Request) -> dict[str, Any]:
    """The brand's Telegram accounts connected to the bot (Telegram Business): whose, with which
    rights, and whether the bot may answer there now."""
    async with _db(request).session() as session:
        connections = await business.connections(session)
    return {"connections": connections}


# --- journeys (managers) ---

@routes.get("/journeys")
@manager_only
@aiohttp_jinja2.template("journeys.html")
async def journeys_page(request: web.Request) -> dict[str, Any]:
    definitions = queries.load_journey_specs(_settings(request))
    async with _db(request).session() as session:
        numbers = await queries.journey_numbers(session)
    keys = sorted(set(definitions) | {k for k in numbers if not k.startswith("campaign_")})
    words = staff_words_for(request)
    rows = [(key, numbers.get(key) or queries.JourneyNumbers(key),
             words.describe_journey(definitions[key]) if key in definitions else None) for key in keys]
    return {"rows": rows, "flash": await _pop_flash(request)}


@routes.post("/journeys/{key}/pause")
@manager_only
async def journey_pause(request: web.Request) -> web.StreamResponse:
    return await _set_paused(request, True)


@routes.post("/journeys/{key}/resume")
@manager_only
async def journey_resume(request: web.Request) -> web.StreamResponse:
    return await _set_paused(request, False)


async def _set_paused(request: web.Request, paused: bool) -> web.StreamResponse:
    key = request.match_info["key"][:64]
    async with _db(request).session() as session:
        await actions.set_journey_paused(session, key, paused, request[STAFF])
    await _flash(request, f"console.ui.flash.journey_{'paused' if paused else 'resumed'}",
                 key=staff_words_for(request).journey(key))
    raise web.HTTPSeeOther("/journeys")


# --- campaigns (managers) ---

@routes.get("/campaigns")
@manager_only
@aiohttp_jinja2.template("campaigns.html")
async def campaigns_page(request: web.Request) -> dict[str, Any]:
    async with _db(request).session() as session:
        rows = await queries.campaigns(session)
    return _campaigns_context(request, rows, {}, None, await _pop_flash(request))


def _campaigns_context(request: web.Request, rows: list[Campaign], form: dict[str, str], error: str | None,
                       flash: str | None) -> dict[str, Any]:
    words = staff_words_for(request)
    return {"rows": rows, "segments": queries.SEGMENTS, "locales": SUPPORTED_LOCALES, "form": form,
            "error": error, "flash": flash, "shop_zone": _settings(request).handoff_timezone,
            "held": {c.id: words.held_back(c.held_back) for c in rows}}


def _texts(values: dict[str, str]) -> dict[str, str]:
    """The languages the campaign is written in (any subset), with their texts."""
    return {locale: values[f"text_{locale}"] for locale in SUPPORTED_LOCALES if values[f"text_{locale}"]}


def _campaign_form(form: Any, zone: str) -> tuple[dict[str, str], str | None]:
    values = {name: str(form.get(name, "")).strip() for name in ("name", "segment", "when")}
    values |= {f"text_{locale}": str(form.get(f"text_{locale}", "")).strip() for locale in SUPPORTED_LOCALES}
    if not values["name"] or len(values["name"]) > 120:
        return values, "console.ui.camp.err.name"
    if values["segment"] not in queries.SEGMENTS:
        return values, "console.ui.camp.err.segment"
    if not _texts(values) or any(len(values[f"text_{locale}"]) > 3500 for locale in SUPPORTED_LOCALES):
        return values, "console.ui.camp.err.some_text"
    try:
        actions.parse_when(values["when"], utcnow(), zone)
    except ValueError:
        return values, "console.ui.camp.err.when_local"
    return values, None


async def _preview(request: web.Request, values: dict[str, str], notice: str | None = None) -> web.Response:
    """The message as each language's customers will see it (text and buttons, the "no more offers"
    one), which written language they get, the audience, and how long sending takes."""
    settings = _settings(request)
    async with _db(request).session() as session:
        audience = await queries.segment_customers(session, values["segment"], utcnow())
    translate = get_translator(settings.locales_dir, settings.default_locale)
    texts = _texts(values)
    previews = {locale: (render(translate, locale, "console.campaign", {"texts": texts}),
                         campaign_language(texts, locale)) for locale in SUPPORTED_LOCALES}
    when = actions.parse_when(values["when"], utcnow(), settings.handoff_timezone)
    estimate = estimate_broadcast(len(audience), settings.send_rate_per_s, settings.paid_broadcast_rate)
    return aiohttp_jinja2.render_template("campaign_preview.html", request, {
        "form": values, "previews": previews, "audience": len(audience), "when": when,
        "segment_label": queries.SEGMENTS[values["segment"]], "estimate": estimate, "notice": notice,
        "free_rate": settings.send_rate_per_s, "paid_rate": settings.paid_broadcast_rate})


async def _checked_form(request: web.Request) -> tuple[dict[str, str], web.Response | None]:
    """The campaign form and, if something needs fixing, the form page again saying what (400):
    then nothing is queued or sent."""
    values, error = _campaign_form(await request.post(), _settings(request).handoff_timezone)
    if not error:
        return values, None
    async with _db(request).session() as session:
        rows = await queries.campaigns(session)
    words = ui(request, error, zone=_settings(request).handoff_timezone)
    return values, aiohttp_jinja2.render_template(
        "campaigns.html", request, _campaigns_context(request, rows, values, words, None), status=400)


@routes.post("/campaigns/preview")
@manager_only
async def campaign_preview(request: web.Request) -> web.StreamResponse:
    """Show the message as each language's customers will see it before anything is queued."""
    values, refused = await _checked_form(request)
    return refused or await _preview(request, values)


@routes.post("/campaigns/test")
@manager_only
async def campaign_test(request: web.Request) -> web.StreamResponse:
    """The campaign to the manager's own Telegram chat, then the preview again (nothing is queued)."""
    values, refused = await _checked_form(request)
    if refused:
        return refused
    async with _db(request).session() as session:
        problem = await actions.send_campaign_test(session, _settings(request), request[STAFF],
                                                   _texts(values))
    _poke_sender(request)
    return await _preview(request, values, ui(request, f"console.ui.camp.test_{problem or 'sent'}"))


@routes.post("/campaigns")
@manager_only
async def campaign_create(request: web.Request) -> web.StreamResponse:
    values, refused = await _checked_form(request)
    if refused:
        return refused
    now = utcnow()
    staff = request[STAFF]
    campaign = Campaign(
        name=values["name"], segment=values["segment"], created_by=actions.author_name(staff)[:64],
        texts=_texts(values), created_at=now,
        scheduled_at=max(actions.parse_when(values["when"], now, _settings(request).handoff_timezone), now),
    )
    async with _db(request).session() as session:
        # Everyone in the segment: the contact rules say who is held back, and why.
        segment = await queries.segment_customers(session, campaign.segment, now, marketable_only=False)
        queued = await actions.schedule_campaign(session, _settings(request), campaign, segment)
    _poke_sender(request)
    words = staff_words_for(request)
    await _flash(request, "console.ui.flash.campaign_queued", queued=words.number(queued),
                 total=words.number(len(segment)),
                 held=words.held_back(campaign.held_back) or ui(request, "console.ui.none"))
    raise web.HTTPSeeOther("/campaigns")


# --- my settings (everyone) ---

@routes.get("/me")
@aiohttp_jinja2.template("me.html")
async def my_settings(request: web.Request) -> dict[str, Any]:
    return {"zones": time_zones(), "shop_zone": _settings(request).handoff_timezone,
            "flash": await _pop_flash(request), "now": utcnow()}


@routes.post("/me")
async def my_settings_save(request: web.Request) -> web.StreamResponse:
    """Each staff member's own time zone (every console time is shown in it) and Telegram user id."""
    form = await request.post()
    telegram = str(form.get("telegram_id", "")).strip()
    try:
        if telegram and not telegram.isdigit():
            raise ValueError("not a Telegram user id")
        async with _db(request).session() as session:
            await set_staff_preferences(session, request[STAFF].username,
                                        timezone=str(form.get("timezone", "")).strip(),
                                        telegram_id=int(telegram) if telegram else None)
    except ValueError:
        await _flash(request, "console.ui.me.err")
        raise web.HTTPSeeOther("/me") from None
    await _flash(request, "console.ui.me.saved")
    raise web.HTTPSeeOther("/me")


# --- staff list (managers) ---

@routes.get("/staff")
@manager_only
@aiohttp_jinja2.template("staff.html")
async def staff_page(request: web.Request) -> dict[str, Any]:
    async with _db(request).session() as session:
        accounts = (await session.exec(select(StaffAccount).order_by(col(StaffAccount.username)))).all()
    return {"accounts": accounts, "roles": ROLES, "locales": SUPPORTED_LOCALES, "zones": time_zones(),
            "shop_zone": _settings(request).handoff_timezone,
            "flash": await _pop_flash(request), "min_password": MIN_PASSWORD_LENGTH}


STAFF_ACTIONS = ("add", "role", "password", "disable", "logout", "timezone")


@routes.post("/staff")
@manager_only
async def staff_action(request: web.Request) -> web.StreamResponse:
    """What `touchpoint staff add/disable/logout` does, from the console (managers only). A manager
    cannot disable, demote or sign out their own account here: that is how a desk locks itself out."""
    form = await request.post()
    action = str(form.get("action", ""))
    username = str(form.get("username", "")).strip().lower()[:64]
    me = request[STAFF]
    if action not in STAFF_ACTIONS:
        raise web.HTTPBadRequest(text=ui(request, "console.ui.err.generic"))
    if username == me.username and action in ("role", "disable", "logout"):
        await _flash(request, "console.ui.staff.err.self")
        raise web.HTTPSeeOther("/staff")
    role, locale = str(form.get("role", "agent")), str(form.get("locale", "")) or None
    password = str(form.get("password", ""))
    async with _db(request).session() as session:
        existing = await find_staff(session, username)
        if action != "add" and existing is None:
            await _flash(request, "console.ui.staff.err.unknown", name=username)
            raise web.HTTPSeeOther("/staff")
        if action == "add" and existing is not None:
            await _flash(request, "console.ui.staff.err.exists", name=username)
            raise web.HTTPSeeOther("/staff")
        try:
            if action == "add":
                shown = str(form.get("display_name", "")).strip()[:120]
                await add_staff(session, username, password, role, shown, locale)
            elif action == "password" and existing is not None:
                # A reset keeps the role and language, and ends the account's sessions.
                await add_staff(session, username, password, existing.role, existing.display_name,
                                existing.locale)
            elif action == "role":
                await set_staff_role(session, username, role)
            elif action == "disable":
                await disable_staff(session, username)
            elif action == "timezone" and existing is not None:
                await set_staff_preferences(session, username, timezone=str(form.get("timezone", "")).strip(),
                                            telegram_id=existing.telegram_id)
            else:
                await logout_staff(session, username)
        except ValueError:  # checked before anything is written: a short password, a bad name or zone
            await _flash(request, "console.ui.staff.err.zone" if action == "timezone"
                         else "console.ui.staff.err.invalid", min=MIN_PASSWORD_LENGTH)
            raise web.HTTPSeeOther("/staff") from None
    await _flash(request, f"console.ui.staff.done.{action}", name=username)
    raise web.HTTPSeeOther("/staff")
