"""Metrics and logs for operators: Prometheus series and structured JSON log lines.

Logs carry ids (update id, customer id, outbox id), never personal data: no names, phone
numbers or message text. ``bind_ids`` puts ids into every log line written while handling.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select

from touchpoint.db import Database
from touchpoint.handoff.models import Conversation
from touchpoint.journeys.models import Enrolment
from touchpoint.messaging.models import Delivery, OutboxMessage

REGISTRY = CollectorRegistry()

UPDATES = Counter("touchpoint_updates_total", "Updates received, by type", ["type"], registry=REGISTRY)
HANDLER_SECONDS = Histogram(
    "touchpoint_handler_seconds", "Time to handle one update, middlewares included", ["type"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0), registry=REGISTRY,
)
HANDLER_ERRORS = Counter(
    "touchpoint_handler_errors_total", "Updates whose handling raised, by type and error class",
    ["type", "error"], registry=REGISTRY,
)
TELEGRAM_REQUESTS = Counter(
    "touchpoint_telegram_requests_total", "Bot API calls by method and outcome",
    ["method", "outcome"], registry=REGISTRY,
)
TELEGRAM_RETRY_AFTER = Counter(
    "touchpoint_telegram_retry_after_total", "Bot API calls answered 429 (retry after)",
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge(
    "touchpoint_outbox_depth", "Outbox rows not yet sent, by lane", ["lane"], registry=REGISTRY
)
OUTBOX_SENDS = Gauge(
    "touchpoint_outbox_deliveries", "Outbox deliveries recorded, by outcome", ["outcome"],
    registry=REGISTRY,
)
ENROLMENTS = Gauge(
    "touchpoint_journey_enrolments", "Journey enrolments by journey and status",
    ["journey", "status"], registry=REGISTRY,
)
CONVERSIONS = Gauge(
    "touchpoint_journey_conversions", "Journey enrolments that converted", ["journey"],
    registry=REGISTRY,
)
HANDOFF_QUEUE = Gauge(
    "touchpoint_handoff_queue", "Open conversations with staff: waiting for a first answer or answered",
    ["state"], registry=REGISTRY,
)
DB_UP = Gauge("touchpoint_database_up", "1 if the last metrics query reached the database",
              registry=REGISTRY)


async def refresh_database_gauges(db: Database) -> None:
    """Gauges that are counts of rows: read at scrape time, so every process reports the same."""
    try:
        async with db.session() as session:
            depth = (await session.execute(
                select(OutboxMessage.lane, func.count())
                .where(OutboxMessage.status.in_(("pending", "claimed", "sending")))  # type: ignore[attr-defined]
                .group_by(OutboxMessage.lane)
            )).all()
            sends = (await session.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)
            )).all()
            enrolments = (await session.execute(
                select(Enrolment.journey_key, Enrolment.status, func.count(),
                       func.count(Enrolment.converted_at))
                .group_by(Enrolment.journey_key, Enrolment.status)
            )).all()
            handoff = (await session.execute(
                select(Conversation.first_response_at.is_(None), func.count())  # type: ignore[union-attr]
                .where(Conversation.status == "open")
                .group_by(Conversation.first_response_at.is_(None))  # type: ignore[union-attr]
            )).all()
    except Exception:
        DB_UP.set(0)
        logging.getLogger(__name__).warning("metrics: database unavailable")
        return
    DB_UP.set(1)
    for gauge in (OUTBOX_DEPTH, OUTBOX_SENDS, ENROLMENTS, CONVERSIONS, HANDOFF_QUEUE):
        gauge.clear()
    for lane, count in depth:
        OUTBOX_DEPTH.labels(lane).set(count)
    for status, count in sends:
        OUTBOX_SENDS.labels(status).set(count)
    converted: dict[str, int] = {}
    for journey, status, count, conversions in enrolments:
        ENROLMENTS.labels(journey, status).set(count)
        converted[journey] = converted.get(journey, 0) + conversions
    for journey, count in converted.items():
        CONVERSIONS.labels(journey).set(count)
    for waiting, count in handoff:
        HANDOFF_QUEUE.labels("waiting" if waiting else "answered").set(count)


def render_metrics() -> bytes:
    return generate_latest(REGISTRY)


# ------------------------------------------------------------------ logs

_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_json_logging(level: int = logging.INFO, stream: Any = None) -> None:
    """Every log line (ours, aiogram's, aiohttp's) as one JSON object on stderr."""
    structlog.configure(
        processors=[*_SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED_PROCESSORS,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_chatty_loggers()


def quiet_chatty_loggers() -> None:
    """Per-update and per-job lines from the libraries would drown our own at INFO."""
    for name in ("aiogram.event", "aiohttp.access", "apscheduler"):
        logging.getLogger(name).setLevel(logging.WARNING)


def start_context(**ids: int | str | None) -> None:
    """A fresh log context for one unit of work (an update runs in its own task and context)."""
    structlog.contextvars.clear_contextvars()
    bind_ids(**ids)


def bind_ids(**ids: int | str | None) -> None:
    """Ids (never personal data) added to every later log line of this context, error logs included."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in ids.items() if v is not None})
