"""The one hook point after store events are applied (and committed).

Other capabilities subscribe by appending an async listener::

    from touchpoint.events_api.hooks import on_event_applied
    on_event_applied.append(my_listener)  # async def my_listener(db, event: AppliedEvent) -> None

Listeners run after the batch committed, in order, once per newly applied event (never for a
duplicate delivery). A failing listener is logged and does not affect the store's answer or the
other listeners: the durable record is the BehaviourEvent row, which a listener may re-read.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from touchpoint.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppliedEvent:
    event_id: str  # the store's id
    type: str  # e.g. "order.status_changed", also the BehaviourEvent type
    behaviour_event_id: int | None
    customer_id: int | None  # the linked chat customer, if any
    store_customer_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)  # as stored on the BehaviourEvent
    occurred_at: datetime | None = None


EventListener = Callable[[Database, AppliedEvent], Awaitable[None]]
on_event_applied: list[EventListener] = []


async def notify_listeners(db: Database, events: list[AppliedEvent]) -> None:
    for event in events:
        for listener in list(on_event_applied):
            try:
                await listener(db, event)
            except Exception:
                log.exception("event listener %s failed on %s", getattr(listener, "__name__", listener),
                              event.event_id)
