"""One-off broadcasts: a segment, a template, a time — through the same contact rules and outbox.

A campaign is a one-step marketing journey without a trigger: its rows carry the campaign's key
(so `journeys stats` shows it) and a dedupe key per customer (running it twice sends nothing new).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.db import Database
from touchpoint.journeys.engine import JourneyEngine
from touchpoint.journeys.pause import is_paused
from touchpoint.journeys.spec import Conditions, Journey, JourneysFile, ScanTrigger, Step
from touchpoint.messaging.models import OutboxMessage
from touchpoint.messaging.outbox import enqueue
from touchpoint.messaging.templates import known_templates
from touchpoint.wiring import load_all_templates

LIST_FIELDS = ("languages", "tiers")


class CampaignError(ValueError):
    pass


def parse_segment(segment: str) -> Conditions:
    """``languages=ru+en,linked=true,min_spend_minor=1000,last_order_older_than=60d``."""
    values: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in segment.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise CampaignError(f"segment: {part!r} is not name=value")
        values[name.strip()] = value.split("+") if name.strip() in LIST_FIELDS else value.strip()
    try:
        return Conditions.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CampaignError(f"segment: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def campaign_key(name: str) -> str:
    return "campaign_" + re.sub(r"[^a-z0-9_]", "_", name.lower())[:38]


async def send_campaign(db: Database, settings: Settings, template: str, segment: str, *,
                        at: datetime | None = None, name: str | None = None) -> dict[str, int]:
    load_all_templates()
    if template not in known_templates():
        raise CampaignError(f"unknown template {template!r}")
    at = (at.replace(tzinfo=UTC) if at and at.tzinfo is None else at) or utcnow()
    conditions = parse_segment(segment)
    async with db.session() as session:
        customers = list((await session.exec(select(Customer).where(Customer.reachable)
                                              .order_by(col(Customer.id)))).all())
        return await queue_campaign(session, settings, campaign_key(name or f"{template}_{at:%Y%m%d%H%M}"),
                                    template, {}, customers, at=at, conditions=conditions)


async def queue_campaign(session: AsyncSession, settings: Settings, key: str, template: str,
                         params: dict[str, Any], customers: Sequence[Customer], *, at: datetime,
                         conditions: Conditions | None = None) -> dict[str, int]:
    """Queue ``template`` for each of ``customers`` in the segment and eligible for marketing
    (the CLI and the console both come here); the caller commits."""
    journey = Journey(key=key, category="marketing", trigger=ScanTrigger(scan="inactive"),
                      conditions=conditions or Conditions(), steps=[Step(send=template)])
    engine = JourneyEngine(settings, JourneysFile(journeys=[]))
    counts = {"queued": 0, "skipped": 0, "not_in_segment": 0}
    if await is_paused(session, key):
        return counts
    done = set((await session.exec(select(OutboxMessage.customer_id)
                                   .where(OutboxMessage.journey_key == journey.key))).all())
    for customer in customers:
        if customer.id in done:  # run twice: nobody gets it twice
            counts["already"] = counts.get("already", 0) + 1
            continue
        if not await engine.eligible(session, journey, customer):
            counts["not_in_segment"] += 1
            continue
        row_params = {**params, **await engine.render_params(session, customer, params)}
        row = await enqueue(session, settings, customer, template, row_params, lane=journey.lane,
                            due_at=at, dedupe_key=f"{journey.key}:{customer.id}", journey_key=journey.key)
        await session.flush()
        counts["queued" if row.status == "pending" else "skipped"] += 1
    return counts
