"""Store events → journeys at once (rather than at the next tick).

Called by the events API after the store's batch committed; the tick would see the same events
later, which is harmless: enrolments are unique per occurrence and exit goals are conditional UPDATEs.
"""

from __future__ import annotations

from touchpoint.db import Database
from touchpoint.events_api.hooks import AppliedEvent, on_batch_applied
from touchpoint.journeys.engine import EventRecord, get_engine


async def evaluate_store_events(db: Database, applied: list[AppliedEvent]) -> None:
    """One session and one evaluation for the whole batch: what the journeys need is read once."""
    engine = get_engine()
    # The batch's own record of each event: no need to read the rows it has just written.
    events = [EventRecord(a.behaviour_event_id, a.type, a.customer_id, a.store_customer_id, a.payload,
                          a.occurred_at)
              for a in applied if a.type in engine.event_types and a.occurred_at is not None]
    if not events:
        return
    async with db.session() as session:
        await engine.evaluate(session, events)


on_batch_applied.append(evaluate_store_events)
