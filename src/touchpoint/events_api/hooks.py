"""The one hook point after store events are applied (and committed).

Other capabilities subscribe by appending an async listener when their module is imported (the
module is named in ``touchpoint.wiring``, so the events API never imports a capability)::

    from touchpoint.events_api.hooks import on_batch_applied, on_event_applied
    on_batch_applied.append(my_batch_listener)  # async def my_batch_listener(db, events) -> None
    on_event_applied.append(my_listener)  # async def my_listener(db, event: AppliedEvent) -> None

Listeners run after the batch committed: the batch listeners first (journeys read what they need
once per batch), then the per-event ones, in order, once per newly applied event (never for a
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
BatchListener = Callable[[Database, list[AppliedEvent]], Awaitable[None]]
on_event_applied: list[EventListener] = []
on_batch_applied: list[BatchListener] = []


async def after_batch(db: Database, events: list[AppliedEvent],
                      poke_sender: Callable[[], None] | None = None) -> None:
    """What follows every committed batch, from the events API or a store connector: the listeners,
    then a poke to this process's outbox sender so that what they queued goes out now."""
    if not events:
        return
    for batch_listener in list(on_batch_applied):
        try:
            await batch_listener(db, events)
        except Exception:
            log.exception("batch listener %s failed", getattr(batch_listener, "__name__", batch_listener))
    await notify_listeners(db, events)
    if poke_sender is not None:
        poke_sender()


async def notify_listeners(db: Database, events: list[AppliedEvent]) -> None:
    for event in events:
        for listener in list(on_event_applied):
            try:
                await listener(db, event)
            except Exception:
                log.exception("event listener %s failed on %s", getattr(listener, "__name__", listener),
                              event.event_id)
