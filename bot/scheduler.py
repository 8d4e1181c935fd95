"""APScheduler ticks in the bot process. All durable state lives in our tables, never in a
pickled job store: a tick that dies simply runs again next time."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import delete

from touchpoint.aftersales.warranty import remind_expiring_warranties
from touchpoint.catalog.service import release_expired_reservations
from touchpoint.channels.models import ProcessedUpdate
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.db import Database
from touchpoint.events_api.connectors.models import ConnectorDelivery
from touchpoint.events_api.models import ProcessedStoreEvent
from touchpoint.journeys.engine import JourneyEngine
from touchpoint.journeys.stats import journey_stats
from touchpoint.messaging.sender import OutboxSender, reap_expired_leases
from touchpoint.messaging.staff import prune_staff_posts
from touchpoint.orders.models import LinkToken, LookupAttempt
from touchpoint.referrals.service import release_due_rewards

log = logging.getLogger(__name__)
# How long each kind of bookkeeping row is worth keeping: past that, it only grows the tables.
KEPT = (
    # Telegram redelivers an update within hours, not days.
    (ProcessedUpdate, ProcessedUpdate.received_at, timedelta(days=2)),
    # A store's retry queue may hold an event for days; the same id a month later is applied again.
    (ProcessedStoreEvent, ProcessedStoreEvent.received_at, timedelta(days=30)),
    # Shopify / WooCommerce deliveries once handled (pending ones have no done_at and stay).
    (ConnectorDelivery, ConnectorDelivery.done_at, timedelta(days=30)),
    # Expired link tokens, used or not, can link nobody.
    (LinkToken, LinkToken.expires_at, timedelta(days=1)),
    # The guest look-up lock counts the last hour's failures.
    (LookupAttempt, LookupAttempt.attempted_at, timedelta(days=1)),
)


async def prune_bookkeeping(db: Database) -> int:
    """Old de-duplication ids, spent link tokens and look-up attempts go; returns how many rows."""
    pruned = 0
    now = utcnow()
    async with db.session() as session:
        for model, stamp, kept in KEPT:
            result = await session.exec(delete(model).where(stamp < now - kept))  # type: ignore[call-overload]
            pruned += int(result.rowcount or 0)
    return pruned


async def journey_tick(db: Database, engine: JourneyEngine, sender: OutboxSender | None) -> None:
    """New events → enrolments; due steps → outbox rows; then wake the sender."""
    await engine.evaluate_new_events(db)
    if await engine.run_due_steps(db) and sender is not None:
        sender.poke()


async def scan_tick(db: Database, engine: JourneyEngine, sender: OutboxSender | None) -> None:
    if await engine.run_scans(db) and sender is not None:
        sender.poke()


async def remind_warranties_tick(db: Database, settings: Settings, sender: OutboxSender | None = None) -> int:
    """Registered warranties ending within 30 days: one reminder each, however often this runs and
    however many processes run it (remind_expiring_warranties claims each registration once)."""
    async with db.session() as session:
        queued = await remind_expiring_warranties(session, settings)
    if queued and sender is not None:
        sender.poke()
    return queued


async def release_referral_rewards_tick(
    db: Database, settings: Settings, sender: OutboxSender | None = None
) -> int:
    """Referral rewards whose qualifying order can no longer be returned become spendable (and
    their owners are told); safe from several processes: each reward is claimed once."""
    async with db.session() as session:
        released = await release_due_rewards(session, settings)
    if released and sender is not None:
        sender.poke()
    return released


async def log_daily_stats(db: Database) -> None:
    """The day's numbers in the log (counts only, never who)."""
    async with db.session() as session:
        for stats in await journey_stats(session):
            log.info("journey stats %s", stats.as_dict())


def add_desk_job(scheduler: AsyncIOScheduler, tick: Callable[[], Awaitable[None]], every_s: float) -> None:
    """The staff desk's beat (topics for new conversations, console lines, reminders, pruning)."""
    scheduler.add_job(tick, "interval", seconds=every_s, id="staff_desk", next_run_time=utcnow())


def create_scheduler(db: Database, engine: JourneyEngine | None = None,
                     sender: OutboxSender | None = None, tick_s: float = 30.0) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(prune_bookkeeping, "interval", hours=1, args=[db], id="prune_bookkeeping")
    scheduler.add_job(release_expired_reservations, "interval", minutes=5, args=[db], id="release_holds")
    scheduler.add_job(reap_expired_leases, "interval", minutes=1, args=[db], id="reap_expired_leases")
    scheduler.add_job(prune_staff_posts, "interval", hours=1, args=[db], id="prune_staff_posts")
    if engine is not None:
        scheduler.add_job(journey_tick, "interval", seconds=tick_s, args=[db, engine, sender],
                          id="journey_tick", next_run_time=utcnow())
        scheduler.add_job(scan_tick, "interval", hours=1, args=[db, engine, sender], id="journey_scans",
                          next_run_time=utcnow() + timedelta(minutes=1))
        scheduler.add_job(log_daily_stats, "cron", hour=0, minute=5, args=[db], id="journey_daily_stats")
        # Daily, and soon after start-up: a process that restarts often still gets its turn.
        scheduler.add_job(remind_warranties_tick, "interval", days=1, args=[db, engine.settings, sender],
                          id="warranty_reminders", next_run_time=utcnow() + timedelta(minutes=2))
        # Hourly: a reward is spendable within the hour its return window ends.
        scheduler.add_job(release_referral_rewards_tick, "interval", hours=1,
                          args=[db, engine.settings, sender], id="referral_rewards",
                          next_run_time=utcnow() + timedelta(minutes=3))
    return scheduler
