"""Store events → journeys at once (rather than at the next tick).

Called by the events API after the store's batch committed; the tick would see the same events
later, which is harmless: enrolments are unique per occurrence and exit goals are conditional UPDATEs.
"""

from __future__ import annotations

from sqlmodel import col, select

from touchpoint.customers.models import BehaviourEvent
from touchpoint.db import Database
from touchpoint.events_api.hooks import AppliedEvent
from touchpoint.journeys.engine import get_engine


async def evaluate_store_events(db: Database, applied: list[AppliedEvent]) -> None:
    """One session and one evaluation for the whole batch: what the journeys need is read once."""
    engine = get_engine()
    ids = [a.behaviour_event_id for a in applied
           if a.behaviour_event_id is not None and a.type in engine.event_types]
    if not ids:
        return
    async with db.session() as session:
        events = (await session.exec(
            select(BehaviourEvent).where(col(BehaviourEvent.id).in_(ids)).order_by(col(BehaviourEvent.id))
        )).all()
        await engine.evaluate(session, events)
