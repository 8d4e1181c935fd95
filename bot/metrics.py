"""aiogram's side of observability: per-update metrics and log ids, Bot API call outcomes."""

from __future__ import annotations

import time
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import TelegramObject, Update
from aiogram.types.update import UpdateTypeLookupError

from bot.middlewares import Handler
from touchpoint.customers.models import Customer
from touchpoint.observability import (
    HANDLER_ERRORS,
    HANDLER_SECONDS,
    TELEGRAM_REQUESTS,
    TELEGRAM_RETRY_AFTER,
    UPDATES,
    bind_ids,
    start_context,
)


class ObserveUpdates(BaseMiddleware):
    """Outermost of ours: counts and times every update and tags its log lines with its id."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        try:
            kind = event.event_type
        except UpdateTypeLookupError:  # a kind of update this aiogram does not know: nothing to route
            return UNHANDLED
        UPDATES.labels(kind).inc()
        started = time.perf_counter()
        start_context(update_id=event.update_id)
        try:
            return await handler(event, data)
        except Exception as exc:
            HANDLER_ERRORS.labels(kind, type(exc).__name__).inc()
            raise
        finally:
            HANDLER_SECONDS.labels(kind).observe(time.perf_counter() - started)


class BindCustomer(BaseMiddleware):
    """Inner update middleware: the customer is known by now; their id goes on every log line."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        customer: Customer | None = data.get("customer")
        bind_ids(customer_id=customer.id if customer else None)
        return await handler(event, data)


class TelegramRequestMetrics(BaseRequestMiddleware):
    """Every Bot API call by outcome: 429s and 403s are what operators watch."""

    async def __call__(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        name = method.__api_method__
        try:
            response = await make_request(bot, method)
        except TelegramRetryAfter:
            TELEGRAM_RETRY_AFTER.inc()
            TELEGRAM_REQUESTS.labels(name, "retry_after").inc()
            raise
        except TelegramForbiddenError:
            TELEGRAM_REQUESTS.labels(name, "forbidden").inc()
            raise
        except TelegramBadRequest:
            TELEGRAM_REQUESTS.labels(name, "bad_request").inc()
            raise
        except (TelegramNetworkError, TelegramServerError, TimeoutError):
            TELEGRAM_REQUESTS.labels(name, "unavailable").inc()
            raise
        except Exception:
            TELEGRAM_REQUESTS.labels(name, "error").inc()
            raise
        TELEGRAM_REQUESTS.labels(name, "ok").inc()
        return response
