"""APScheduler ticks in the bot process. All durable state lives in our tables, never in a
pickled job store: a tick that dies simply runs again next time."""

from __future__ import annotations

from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import delete

from touchpoint.catalog.service import release_expired_reservations
from touchpoint.channels.models import ProcessedUpdate
from touchpoint.clock import utcnow
from touchpoint.db import Database

PROCESSED_UPDATES_KEPT = timedelta(days=2)


async def prune_processed_updates(db: Database) -> int:
    """Telegram redelivers within hours, not days: old de-duplication rows can go."""
    async with db.session() as session:
        result = await session.exec(
            delete(ProcessedUpdate).where(
                ProcessedUpdate.received_at < utcnow() - PROCESSED_UPDATES_KEPT
            )
        )
        return int(result.rowcount or 0)


def create_scheduler(db: Database) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(prune_processed_updates, "interval", hours=1, args=[db],
                      id="prune_processed_updates")
    scheduler.add_job(release_expired_reservations, "interval", minutes=5, args=[db], id="release_holds")
    return scheduler
