"""Per-journey numbers: enrolled, held out, sent, delivered, clicked, converted, uplift, skips.

Customers who blocked the bot count as opted out: they leave both the treatment and the holdout
denominators (their conversions cannot be attributed to messages they could not receive).

``journey_stats`` is the one definition: the daily log line, ``touchpoint journeys stats`` and the
console's journey numbers (console/queries.py) all read it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.customers.models import Customer
from touchpoint.journeys.models import Enrolment
from touchpoint.messaging.models import Delivery, OutboxMessage


@dataclass
class JourneyStats:
    journey: str
    enrolled: int = 0
    held_out: int = 0
    sent: int = 0
    delivered: int = 0
    clicked: int = 0
    converted: int = 0
    converted_holdout: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def conversion_rate(self) -> float:
        return self.converted / self.enrolled if self.enrolled else 0.0

    @property
    def holdout_rate(self) -> float:
        return self.converted_holdout / self.held_out if self.held_out else 0.0

    @property
    def uplift(self) -> float:
        """Percentage points of conversion the messages added over the control group."""
        return (self.conversion_rate - self.holdout_rate) * 100

    def as_dict(self) -> dict[str, object]:
        return {
            "journey": self.journey, "enrolled": self.enrolled, "held_out": self.held_out,
            "sent": self.sent, "delivered": self.delivered, "clicked": self.clicked,
            "converted": self.converted, "conversion_rate": round(self.conversion_rate, 4),
            "holdout_rate": round(self.holdout_rate, 4), "uplift_pp": round(self.uplift, 2),
            "skipped": self.skipped,
        }


async def journey_stats(session: AsyncSession, since: datetime | None = None) -> list[JourneyStats]:
    """Every journey with enrolments or messages; ``since``: only enrolments, messages and
    deliveries from then on (the console's period)."""
    stats: dict[str, JourneyStats] = {}

    def of(key: str) -> JourneyStats:
        return stats.setdefault(key, JourneyStats(key))

    enrolled = (
        select(Enrolment.journey_key, Enrolment.holdout, func.count(),
               func.count(col(Enrolment.converted_at)))
        .join(Customer, col(Customer.id) == col(Enrolment.customer_id))
        .where(Customer.reachable)
    )
    if since is not None:
        enrolled = enrolled.where(col(Enrolment.enrolled_at) >= since)
    enrolments = await session.exec(enrolled.group_by(Enrolment.journey_key, Enrolment.holdout))
    for key, holdout, count, converted in enrolments.all():
        if holdout:
            of(key).held_out, of(key).converted_holdout = count, converted
        else:
            of(key).enrolled, of(key).converted = count, converted

    messages = (select(OutboxMessage.journey_key, OutboxMessage.status, OutboxMessage.reason, func.count())
                .where(col(OutboxMessage.journey_key).is_not(None)))
    if since is not None:
        messages = messages.where(col(OutboxMessage.created_at) >= since)
    outbox = await session.exec(
        messages.group_by(OutboxMessage.journey_key, OutboxMessage.status, OutboxMessage.reason))
    skipped: dict[str, dict[str, int]] = defaultdict(dict)
    for key, status, reason, count in outbox.all():
        of(key)  # a journey with only queued or skipped messages is listed too
        if status == "sent":
            of(key).sent += count
        elif status in ("skipped", "failed"):
            skipped[key][reason or status] = skipped[key].get(reason or status, 0) + count
    for key, reasons in skipped.items():
        of(key).skipped = dict(sorted(reasons.items()))

    delivered = (
        select(OutboxMessage.journey_key, func.count(), func.count(col(Delivery.clicked_at)))
        .join(OutboxMessage, col(OutboxMessage.id) == col(Delivery.outbox_id))
        .where(col(OutboxMessage.journey_key).is_not(None), Delivery.status == "sent")
    )
    if since is not None:
        delivered = delivered.where(col(Delivery.sent_at) >= since)
    deliveries = await session.exec(delivered.group_by(OutboxMessage.journey_key))
    for key, delivered, clicked in deliveries.all():
        of(key).delivered, of(key).clicked = delivered, clicked
    return sorted(stats.values(), key=lambda s: s.journey)
