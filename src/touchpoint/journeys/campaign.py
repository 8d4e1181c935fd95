"""One-off broadcasts: a segment, a template, a time — through the same contact rules and outbox.

A campaign is a one-step marketing journey without a trigger: its rows carry the campaign's key
(so `journeys stats` shows it) and a dedupe key per customer (running it twice sends nothing new).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlmodel import col, select

from touchpoint.channels.all_templates import load_all_templates
from touchpoint.channels.templates import known_templates
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.db import Database
from touchpoint.journeys.engine import JourneyEngine
from touchpoint.journeys.models import OutboxMessage
from touchpoint.journeys.outbox import enqueue
from touchpoint.journeys.spec import Conditions, Journey, JourneysFile, ScanTrigger, Step

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


async def send_campaign(db: Database, settings: Settings, template: str, segment: str, *,
                        at: datetime | None = None, name: str | None = None) -> dict[str, int]:
    load_all_templates()
    if template not in known_templates():
        raise CampaignError(f"unknown template {template!r}")
    at = (at.replace(tzinfo=UTC) if at and at.tzinfo is None else at) or utcnow()
    slug = re.sub(r"[^a-z0-9_]", "_", (name or f"{template}_{at:%Y%m%d%H%M}").lower())[:38]
    journey = Journey(key=f"campaign_{slug}", category="marketing", trigger=ScanTrigger(scan="inactive"),
                      conditions=parse_segment(segment), steps=[Step(send=template)])
    engine = JourneyEngine(settings, JourneysFile(journeys=[]))
    counts = {"queued": 0, "skipped": 0, "not_in_segment": 0}
    async with db.session() as session:
        done = set((await session.exec(select(OutboxMessage.customer_id)
                                       .where(OutboxMessage.journey_key == journey.key))).all())
        customers = (await session.exec(select(Customer).where(Customer.reachable)
                                        .order_by(col(Customer.id)))).all()
        for customer in customers:
            if customer.id in done:  # run twice: nobody gets it twice
                counts["already"] = counts.get("already", 0) + 1
                continue
            if not await engine.eligible(session, journey, customer):
                counts["not_in_segment"] += 1
                continue
            params = await engine.render_params(session, customer, {})
            row = await enqueue(session, settings, customer, template, params, lane=journey.lane,
                                due_at=at, dedupe_key=f"{journey.key}:{customer.id}", journey_key=journey.key)
            await session.flush()
            counts["queued" if row.status == "pending" else "skipped"] += 1
    return counts
