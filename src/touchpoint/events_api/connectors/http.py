"""The platforms' webhook endpoints, on the events API's application:

    POST /webhooks/shopify       X-Shopify-Hmac-Sha256, X-Shopify-Topic, X-Shopify-Event-Id
    POST /webhooks/woocommerce   X-WC-Webhook-Signature, X-WC-Webhook-Topic, X-WC-Webhook-Delivery-ID

Thin handlers: size, signature, topic and JSON are checked, the delivery is committed to the queue
and answered 200 at once (Shopify allows 5 s); the worker applies it after. Answers: 200
``{"status": "queued" | "duplicate" | "ignored" | "ping"}``; 400 ``invalid_json`` /
``invalid_body`` / ``missing_topic``; 401 ``missing_signature`` / ``bad_signature``; 404
``not_configured``; 413 ``payload_too_large``; 503 ``busy`` (the database is away: the platform
retries).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from aiohttp import web
from prometheus_client import Counter
from sqlalchemy.exc import SQLAlchemyError

from touchpoint import untrusted_json
from touchpoint.config import Settings
from touchpoint.db import Database
from touchpoint.events_api.connectors import shopify, woocommerce
from touchpoint.events_api.connectors.common import base64_hmac_valid
from touchpoint.events_api.connectors.queue import ConnectorWorker, enqueue
from touchpoint.events_api.hooks import AppliedEvent, after_batch
from touchpoint.observability import REGISTRY
from touchpoint.untrusted_json import UntrustedJSONError

log = logging.getLogger(__name__)

WEBHOOKS = Counter("touchpoint_connector_webhooks_total",
                   "Platform webhook requests by answer (queued, duplicate, ignored = unknown topic, "
                   "ping, bad_signature, invalid_json, too_large, busy)", ["platform", "outcome"],
                   registry=REGISTRY)


@dataclass(frozen=True, slots=True)
class Platform:
    name: str
    signature_header: str
    topic_header: str
    id_headers: tuple[str, ...]
    topics: frozenset[str]


PLATFORMS = (
    Platform(shopify.PLATFORM, shopify.SIGNATURE_HEADER, shopify.TOPIC_HEADER, shopify.ID_HEADERS,
             frozenset(shopify.TOPICS)),
    Platform(woocommerce.PLATFORM, woocommerce.SIGNATURE_HEADER, woocommerce.TOPIC_HEADER,
             woocommerce.ID_HEADERS, frozenset(woocommerce.TOPICS)),
)
SECRETS = web.AppKey("connector_secrets", dict[str, list[str]])
WORKER = web.AppKey("connector_worker", ConnectorWorker)
CONNECTOR_DB = web.AppKey("connector_db", Database)
MAX_BODY = web.AppKey("connector_max_body", int)


def _answer(platform: str, status: int, outcome: str, **body: object) -> web.Response:
    WEBHOOKS.labels(platform, outcome).inc()
    key = "status" if status == 200 else "error"
    return web.json_response({key: outcome, **body}, status=status)


def _is_ping(body: bytes) -> bool:
    """WooCommerce's test delivery when a webhook is saved: ``webhook_id=<n>``, form-encoded, unsigned."""
    try:
        fields = parse_qs(body.decode("ascii"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return False
    return set(fields) == {"webhook_id"} and all(v.isdigit() for v in fields["webhook_id"])


def _handler(platform: Platform) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def receive(request: web.Request) -> web.Response:
        name = platform.name
        secrets = request.app[SECRETS].get(name) or []
        if not secrets:
            return _answer(name, 404, "not_configured")
        limit = request.app[MAX_BODY]
        if (request.content_length or 0) > limit:
            return _answer(name, 413, "payload_too_large", limit=limit)
        body = await request.content.read(limit + 1)
        if len(body) > limit:
            return _answer(name, 413, "payload_too_large", limit=limit)
        signature = request.headers.get(platform.signature_header)
        if name == woocommerce.PLATFORM and not signature and _is_ping(body):
            return _answer(name, 200, "ping")
        if not signature:
            return _answer(name, 401, "missing_signature")
        if not base64_hmac_valid(secrets, body, signature):
            log.warning("%s webhook refused: bad signature", name)
            return _answer(name, 401, "bad_signature")
        topic = (request.headers.get(platform.topic_header) or "").strip()
        if not topic:
            return _answer(name, 400, "missing_topic")
        if topic not in platform.topics:
            return _answer(name, 200, "ignored")  # counted: a topic subscribed by mistake shows up
        try:
            payload = untrusted_json.loads(body)
        except UntrustedJSONError:
            return _answer(name, 400, "invalid_json")
        if not isinstance(payload, dict):
            return _answer(name, 400, "invalid_body", message="the body is not a JSON object")
        delivery_id = next((v.strip() for h in platform.id_headers if (v := request.headers.get(h))
                            and v.strip()), None) or "b" + hashlib.sha256(body).hexdigest()[:40]
        try:
            async with request.app[WORKER].receiving(), request.app[CONNECTOR_DB].session() as session:
                queued = await enqueue(session, name, delivery_id[:64], topic, payload)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:  # the database is away
            log.warning("%s webhook not queued: %s", name, type(exc).__name__)
            return _answer(name, 503, "busy", retry_after_s=5)
        if queued:
            request.app[WORKER].poke()
        return _answer(name, 200, "queued" if queued else "duplicate")

    return receive


def add_connectors(app: web.Application, settings: Settings, db: Database, *, demo: bool = False,
                   poke_sender: Callable[[], None] | None = None) -> None:
    """Register the platforms' endpoints and the queue's worker (it runs while the app is up).

    Raises ConfigError for a weak secret (outside the demo)."""
    app[SECRETS] = {p.name: settings.webhook_secrets(p.name, demo=demo) for p in PLATFORMS}
    app[CONNECTOR_DB], app[MAX_BODY] = db, settings.events_max_body_bytes

    async def after_apply(applied: list[AppliedEvent]) -> None:
        await after_batch(db, applied, poke_sender)

    app[WORKER] = ConnectorWorker(db, settings, after_apply=after_apply)
    for platform in PLATFORMS:
        app.router.add_post(f"/webhooks/{platform.name}", _handler(platform))
    if any(app[SECRETS].values()):
        app.cleanup_ctx.append(_run_worker)


async def _run_worker(app: web.Application) -> AsyncIterator[None]:
    """Started with the app (pending rows of a previous run are applied at once), stopped with it."""
    worker = app[WORKER]
    worker.start()
    yield
    await worker.stop()
