"""The aiohttp application the store's backend talks to (served by the bot's own process).

    POST /api/v1/events        one event, or {"events": [...]} applied all-or-nothing
    POST /api/v1/link-tokens   {"customer_id": "..."} → a one-time /start payload
    GET  /api/v1/openapi.json  the OpenAPI document
    GET  /healthz

Every POST is signed (see signing.py). Answers: 200 applied/duplicate per event; 400 bad JSON or
shape; 401 unsigned, stale or bad signature; 413 too large; 422 an invalid event, by index and field;
503 the database is unavailable or too slow (nothing applied: send the same request again later).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import DBAPIError

from touchpoint import untrusted_json
from touchpoint.config import Settings
from touchpoint.db import Database
from touchpoint.db.faults import is_database_unavailable
from touchpoint.events_api.connectors.http import add_connectors
from touchpoint.events_api.hooks import after_batch
from touchpoint.events_api.openapi import openapi_document
from touchpoint.events_api.schemas import EventError, EventErrors, Id, parse_events
from touchpoint.events_api.service import apply_events
from touchpoint.events_api.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from touchpoint.orders.service import issue_link_token
from touchpoint.wiring import load_all_templates

log = logging.getLogger(__name__)
APPLY_ATTEMPTS = 5
TRANSIENT_SQLSTATES = {"40P01", "40001", "23505"}  # deadlock, serialization failure, unique race
DATABASE_RETRY_AFTER_S = 5
SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("db", Database)
SECRET = web.AppKey("secret", str)
CLOCK = web.AppKey("clock", Callable[[], float])
POKE_SENDER = web.AppKey("poke_sender", Callable[[], None])


def _error(status: int, error: str, **extra: Any) -> web.Response:
    return web.json_response({"error": error, **extra}, status=status)


class _Refused(Exception):
    def __init__(self, status: int, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.response = _error(status, error, **extra)


async def _signed_json(request: web.Request) -> Any:
    """The request's JSON once its size, signature and timestamp check out; else raises a response."""
    settings = request.app[SETTINGS]
    if (request.content_length or 0) > settings.events_max_body_bytes:
        raise _Refused(413, "payload_too_large", limit=settings.events_max_body_bytes)
    body = await request.content.read(settings.events_max_body_bytes + 1)
    if len(body) > settings.events_max_body_bytes:
        raise _Refused(413, "payload_too_large", limit=settings.events_max_body_bytes)
    reason = verify(request.app[SECRET], request.headers.get(TIMESTAMP_HEADER),
                    request.headers.get(SIGNATURE_HEADER), body,
                    now=request.app[CLOCK](), max_age_s=settings.events_max_age_s)
    if reason is not None:
        log.warning("events API refused a request: %s", reason)
        raise _Refused(401, reason)
    try:
        return untrusted_json.loads(body)
    except untrusted_json.UntrustedJSONError as exc:
        raise _Refused(400, "invalid_json", message=str(exc)) from None


async def post_events(request: web.Request) -> web.Response:
    settings, db = request.app[SETTINGS], request.app[DATABASE]
    body = await _signed_json(request)
    try:
        events, is_batch = parse_events(body, max_batch=settings.events_max_batch,
                                        phone_region=settings.orders_phone_region,
                                        now=datetime.fromtimestamp(request.app[CLOCK](), UTC))
    except EventErrors as exc:
        return _error(422, "invalid_event", errors=[e.as_json() for e in exc.errors])
    except ValueError as exc:
        return _error(400, "invalid_body", message=str(exc))
    for attempt in range(APPLY_ATTEMPTS):
        try:
            async with db.session() as session:
                result = await apply_events(session, settings, events)
            break
        except EventError as exc:
            if not is_batch:
                exc.index = None
            return _error(422, "invalid_event", errors=[exc.as_json()])
        except DBAPIError as exc:
            # Concurrent batches touching the same orders or carts may deadlock or race on an insert;
            # the transaction rolled back as a whole, so applying it again is safe.
            if not _transient(exc):
                raise
            log.info("events batch hit %s, attempt %d", type(exc.orig).__name__, attempt + 1)
            await asyncio.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
    else:
        return _error(503, "busy", retry_after_s=1)
    # Journeys react to store events at once (abandoned cart, check-in, back in stock, exits), not at
    # the next tick, and order updates go out now, not at the sender's next poll.
    await after_batch(db, result.applied, request.app.get(POKE_SENDER))
    applied = sum(r["status"] == "applied" for r in result.results)
    return web.json_response({"applied": applied, "duplicates": len(result.results) - applied,
                              "results": result.results})


def _transient(exc: DBAPIError) -> bool:
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return state in TRANSIENT_SQLSTATES or "database is locked" in str(exc.orig)


async def post_link_token(request: web.Request) -> web.Response:
    settings, db = request.app[SETTINGS], request.app[DATABASE]
    body = await _signed_json(request)
    customer_id = body.get("customer_id") if isinstance(body, dict) else None
    try:
        customer_id = TypeAdapter(Id).validate_python(customer_id)
    except ValidationError:
        return _error(422, "invalid_event", errors=[{"index": None, "field": "customer_id",
                                                     "message": "a store customer id is required"}])
    async with db.session() as session:
        token, expires = await issue_link_token(session, settings, customer_id)
    return web.json_response({"start_payload": f"link_{token}", "expires_at": expires.isoformat()})


async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


@web.middleware
async def _responses_as_values(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except _Refused as refused:
        return refused.response
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        # A stalled or unreachable database: answer within the configured time-outs, so the store's
        # client retries later instead of timing out itself. One line, no traceback.
        log.warning("events API: database unavailable (%s) on %s", type(exc).__name__, request.path)
        response = _error(503, "database_unavailable", message="the database is unavailable; nothing "
                          "was applied, send the same request again later",
                          retry_after_s=DATABASE_RETRY_AFTER_S)
        response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        return response


def create_events_app(settings: Settings, db: Database, *, secret: str | None = None,
                      clock: Callable[[], float] = time.time,
                      poke_sender: Callable[[], None] | None = None) -> web.Application:
    """``secret`` overrides the configured one (the demo's fixed secret); ``poke_sender`` wakes the
    outbox sender of this process after a batch is applied."""
    load_all_templates()  # the capabilities' store-event listeners subscribed
    app = web.Application(middlewares=[_responses_as_values],
                          client_max_size=settings.events_max_body_bytes + 1)
    app[SETTINGS], app[DATABASE], app[CLOCK] = settings, db, clock
    app[SECRET] = secret or settings.require_events_secret()
    if poke_sender is not None:
        app[POKE_SENDER] = poke_sender
    app.router.add_post("/api/v1/events", post_events)
    app.router.add_post("/api/v1/link-tokens", post_link_token)
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_get("/healthz", health)
    # POST /webhooks/shopify and /webhooks/woocommerce: the platforms' own signed webhooks, queued
    # and applied in the background (events_api/connectors/).
    add_connectors(app, settings, db, demo=secret is not None, poke_sender=poke_sender)
    return app


async def start_events_api(settings: Settings, db: Database, *, secret: str | None = None,
                           poke_sender: Callable[[], None] | None = None) -> web.AppRunner:
    """Serve the events API on the configured host and port; stop it with ``await runner.cleanup()``."""
    app = create_events_app(settings, db, secret=secret, poke_sender=poke_sender)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.events_api_host, settings.events_api_port).start()
    return runner
