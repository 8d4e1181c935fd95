"""Contact rules for every proactive message, in one place: consent, reachability, context,
quiet hours in the customer's own time zone, frequency caps and repeats.

The same check runs when a message is queued and again just before it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.aftersales.service import has_open_service_case
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.handoff.service import has_active_handoff
from touchpoint.journeys.models import OutboxMessage


class Lane(StrEnum):
    """Lanes in sending order: replies never wait behind nudges."""

    REPLY = "reply"
    TRANSACTIONAL = "transactional"
    SERVICE = "service"
    MARKETING = "marketing"

    @property
    def priority(self) -> int:
        return list(Lane).index(self)


COUNTED_STATUSES = ("pending", "claimed", "sending", "sent")


@dataclass(frozen=True, slots=True)
class Verdict:
    action: str  # "send" | "delay" | "skip"
    reason: str | None = None
    not_before: datetime | None = None

    @classmethod
    def send(cls) -> Verdict:
        return cls("send")


def quiet_hours_end(now: datetime, timezone: str, start_hour: int, end_hour: int) -> datetime | None:
    """When the customer's quiet hours end, or None if it is not quiet time for them now."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    wraps = start_hour > end_hour
    quiet = (local.hour >= start_hour or local.hour < end_hour) if wraps else (
        start_hour <= local.hour < end_hour
    )
    if not quiet:
        return None
    day = local.date() + timedelta(days=1) if wraps and local.hour >= start_hour else local.date()
    # Wall-clock arithmetic in the zone, so a DST change moves the UTC instant, not 09:00 itself.
    return datetime(day.year, day.month, day.day, end_hour, tzinfo=zone).astimezone(now.tzinfo)


def in_evening(now: datetime, timezone: str, quiet_start: int) -> bool:
    """Marketing in the late evening goes out silently (disable_notification)."""
    return now.astimezone(ZoneInfo(timezone)).hour >= quiet_start - 3


async def check_contact(
    session: AsyncSession,
    settings: Settings,
    customer: Customer,
    lane: Lane,
    at: datetime,
    *,
    template: str,
    wait_for_quiet_hours: bool = True,
    exclude_outbox_id: int | None = None,
) -> Verdict:
    """May this customer get this message at ``at``? Send, delay (until when) or skip (why)."""
    if lane is Lane.REPLY:
        return Verdict.send()
    if not customer.reachable:
        return Verdict("skip", "unreachable")
    assert customer.id is not None
    if lane is not Lane.TRANSACTIONAL:
        if customer.nudges_paused:
            return Verdict("skip", "opted_out")
        if lane is Lane.MARKETING:
            if not customer.marketing_consent:
                return Verdict("skip", "no_consent")
            if await has_open_service_case(session, customer.id):
                return Verdict("skip", "open_service_case")
            if await has_active_handoff(session, customer.id):
                return Verdict("skip", "active_handoff")
        if settings.repeat_template_days and await _count(
            session, customer.id, at, timedelta(days=settings.repeat_template_days),
            exclude_outbox_id, template=template,
        ):
            return Verdict("skip", "repeat_template")
        if await _count(session, customer.id, at, timedelta(days=1), exclude_outbox_id) >= (
            settings.messages_per_day
        ):
            return Verdict("skip", "cap_total_day")
        if lane is Lane.MARKETING:
            marketing = dict(lane=Lane.MARKETING.value)
            if await _count(session, customer.id, at, timedelta(days=1), exclude_outbox_id,
                            **marketing) >= settings.marketing_per_day:
                return Verdict("skip", "cap_marketing_day")
            if await _count(session, customer.id, at, timedelta(days=7), exclude_outbox_id,
                            **marketing) >= settings.marketing_per_week:
                return Verdict("skip", "cap_marketing_week")
    if lane is not Lane.TRANSACTIONAL or wait_for_quiet_hours:
        quiet_end = quiet_hours_end(
            at, customer.timezone, settings.quiet_hours_start, settings.quiet_hours_end
        )
        if quiet_end is not None:
            return Verdict("delay", "quiet_hours", quiet_end)
    return Verdict.send()


async def _count(
    session: AsyncSession,
    customer_id: int,
    at: datetime,
    window: timedelta,
    exclude_outbox_id: int | None,
    *,
    lane: str | None = None,
    template: str | None = None,
) -> int:
    """Proactive messages sent or planned for this customer within ``window`` either side of ``at``."""
    query = select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.customer_id == customer_id,
        OutboxMessage.lane != Lane.REPLY.value,
        OutboxMessage.status.in_(COUNTED_STATUSES),  # type: ignore[attr-defined]
        OutboxMessage.due_at > at - window,
        OutboxMessage.due_at < at + window,
    )
    if exclude_outbox_id is not None:
        query = query.where(OutboxMessage.id != exclude_outbox_id)
    if lane is not None:
        query = query.where(OutboxMessage.lane == lane)
    if template is not None:
        query = query.where(OutboxMessage.template == template)
    return int((await session.exec(query)).one())
