"""Store events → journeys at once (rather than at the next tick).

Registered on ``touchpoint.events_api.hooks.on_event_applied`` by the events API app. It runs after
the store's batch committed; the tick would see the same event later, which is harmless: enrolments
are unique per occurrence and exit goals are plain conditional UPDATEs.
"""

from __future__ import annotations

from touchpoint.customers.models import BehaviourEvent
from touchpoint.db import Database
from touchpoint.events_api.hooks import AppliedEvent
from touchpoint.journeys.engine import get_engine


async def evaluate_store_event(db: Database, applied: AppliedEvent) -> None:
    engine = get_engine()
    if applied.behaviour_event_id is None or applied.type not in engine.event_types:
        return
    async with db.session() as session:
        event = await session.get(BehaviourEvent, applied.behaviour_event_id)
        if event is not None:
            await engine.handle_event(session, event)
