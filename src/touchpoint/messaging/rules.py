"""Contact rules for every proactive message, in one place: consent, reachability, context,
quiet hours in the customer's own time zone, frequency caps and repeats.

The same check runs when a message is queued and again just before it is sent (the sender judges
a group of messages at once). The rules themselves are one pure function, ``_judge``; what they
need from other tables (messages already planned, and the vetoes capabilities registered: an open
service case, an active handoff) is loaded set-based.

Messaging sits below the capabilities and imports none of them: a capability that must silence
marketing while something of its own is open calls :func:`register_veto` when it is imported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.checks import saved_id
from touchpoint.config import Settings
from touchpoint.customers.models import Customer
from touchpoint.messaging.models import OutboxMessage


class Lane(StrEnum):
    """Lanes in sending order: replies never wait behind nudges."""

    REPLY = "reply"
    TRANSACTIONAL = "transactional"
    SERVICE = "service"
    MARKETING = "marketing"
    STAFF = "staff"  # posts into staff groups (messaging.staff), drained by the staff desk

    @property
    def priority(self) -> int:
        return list(Lane).index(self)


COUNTED_STATUSES = ("pending", "claimed", "sending", "sent")

# (session, customer ids) → those of them the veto silences.
VetoCheck = Callable[[AsyncSession, set[int]], Awaitable[set[int]]]


@dataclass(frozen=True, slots=True)
class Veto:
    """A capability's reason to keep messages away from a customer (``name`` is the skip reason)."""

    name: str
    check: VetoCheck
    rank: int  # lower is reported first when several apply
    lanes: frozenset[Lane] = frozenset({Lane.MARKETING})  # the lanes it silences
    spares: frozenset[str] = frozenset()  # templates it lets through all the same

    def covers(self, lane: Lane, template: str) -> bool:
        return lane in self.lanes and template not in self.spares


_VETOES: dict[str, Veto] = {}


def register_veto(name: str, check: VetoCheck, *, rank: int = 100,
                  lanes: Collection[Lane] = (Lane.MARKETING,), spares: Collection[str] = ()) -> None:
    """Silence messages of ``lanes`` (marketing unless told), except the ``spares`` templates, to the
    customers ``check`` returns; the skip is recorded as ``name``. Replies are never vetoed.
    Registering the same name again replaces it (a module reloaded in tests)."""
    if Lane.REPLY in lanes:
        raise ValueError("a reply to the customer's own message is never vetoed")
    _VETOES[name] = Veto(name, check, rank, frozenset(lanes), frozenset(spares))


def _vetoes_covering(lane: Lane, template: str) -> list[Veto]:
    return [veto for veto in registered_vetoes() if veto.covers(lane, template)]


def registered_vetoes() -> list[Veto]:
    return sorted(_VETOES.values(), key=lambda veto: (veto.rank, veto.name))


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


@dataclass(frozen=True, slots=True)
class ContactQuestion:
    """May this customer get a message of this lane and template (``exclude_outbox_id``: its own row)?"""

    customer: Customer
    lane: Lane
    template: str
    wait_for_quiet_hours: bool = True
    exclude_outbox_id: int | None = None


@dataclass(frozen=True, slots=True)
class Planned:
    """A proactive message sent or planned for the customer (it counts towards caps and repeats)."""

    id: int
    lane: str
    template: str
    due_at: datetime


@dataclass(frozen=True, slots=True)
class ContactFacts:
    """What the rules read from other tables about one customer."""

    vetoes: tuple[str, ...] = ()  # the registered vetoes that apply, in rank order
    planned: tuple[Planned, ...] = ()  # within the widest cap window either side of the time judged


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
    question = ContactQuestion(customer, lane, template, wait_for_quiet_hours, exclude_outbox_id)
    [verdict] = await check_contacts(session, settings, [question], at)
    return verdict


async def check_contacts(
    session: AsyncSession, settings: Settings, questions: Sequence[ContactQuestion], at: datetime
) -> list[Verdict]:
    """``check_contact`` for many messages at once: a few queries whatever their number."""
    verdicts = [_judge(settings, question, at, None) for question in questions]
    open_questions = [i for i, verdict in enumerate(verdicts) if verdict is None]
    if open_questions:
        facts = await _load_facts(session, settings, [questions[i] for i in open_questions], at)
        for i in open_questions:
            verdicts[i] = _judge(settings, questions[i], at, facts[questions[i].customer.id])
    return [verdict for verdict in verdicts if verdict is not None]


def _judge(settings: Settings, question: ContactQuestion, at: datetime,
           facts: ContactFacts | None) -> Verdict | None:
    """The rules, in order. None: the answer depends on ``facts``, which were not loaded yet."""
    customer, lane = question.customer, question.lane
    if lane is Lane.REPLY:
        return Verdict.send()
    if not customer.reachable:
        return Verdict("skip", "unreachable")
    saved_id(customer)
    if lane is not Lane.TRANSACTIONAL:
        if customer.nudges_paused:
            return Verdict("skip", "opted_out")
        if lane is Lane.MARKETING and not customer.marketing_consent:
            return Verdict("skip", "no_consent")
    if facts is None and (lane is not Lane.TRANSACTIONAL or _vetoes_covering(lane, question.template)):
        return None
    if facts is not None and (vetoed := [name for name in facts.vetoes
                                         if _VETOES[name].covers(lane, question.template)]):
        return Verdict("skip", vetoed[0])
    if lane is not Lane.TRANSACTIONAL:
        if facts is None:
            return None

        def count(window: timedelta, **match: str) -> int:
            return _count(facts.planned, at, window, question.exclude_outbox_id, **match)

        if settings.repeat_template_days and count(timedelta(days=settings.repeat_template_days),
                                                   template=question.template):
            return Verdict("skip", "repeat_template")
        if count(timedelta(days=1)) >= settings.messages_per_day:
            return Verdict("skip", "cap_total_day")
        if lane is Lane.MARKETING:
            if count(timedelta(days=1), lane=Lane.MARKETING.value) >= settings.marketing_per_day:
                return Verdict("skip", "cap_marketing_day")
            if count(timedelta(days=7), lane=Lane.MARKETING.value) >= settings.marketing_per_week:
                return Verdict("skip", "cap_marketing_week")
    if lane is not Lane.TRANSACTIONAL or question.wait_for_quiet_hours:
        quiet_end = quiet_hours_end(
            at, customer.timezone, settings.quiet_hours_start, settings.quiet_hours_end
        )
        if quiet_end is not None:
            return Verdict("delay", "quiet_hours", quiet_end)
    return Verdict.send()


def _count(planned: Collection[Planned], at: datetime, window: timedelta, exclude_outbox_id: int | None,
           *, lane: str | None = None, template: str | None = None) -> int:
    """Proactive messages sent or planned for the customer within ``window`` either side of ``at``."""
    return sum(1 for p in planned
               if at - window < p.due_at < at + window and p.id != exclude_outbox_id
               and (lane is None or p.lane == lane) and (template is None or p.template == template))


async def _load_facts(session: AsyncSession, settings: Settings, questions: Sequence[ContactQuestion],
                      at: datetime) -> dict[int | None, ContactFacts]:
    customer_ids = {q.customer.id for q in questions if q.customer.id is not None}
    window = timedelta(days=max(7, settings.repeat_template_days))
    query = select(OutboxMessage.customer_id, OutboxMessage.id, OutboxMessage.lane,
                   OutboxMessage.template, OutboxMessage.due_at).where(
        col(OutboxMessage.customer_id).in_(customer_ids),
        OutboxMessage.lane != Lane.REPLY.value,
        col(OutboxMessage.status).in_(COUNTED_STATUSES),
        OutboxMessage.due_at > at - window,
        OutboxMessage.due_at < at + window,
    )
    planned: dict[int | None, list[Planned]] = {}
    for customer_id, *fields in (await session.exec(query)).all():
        planned.setdefault(customer_id, []).append(Planned(*fields))
    vetoed: dict[int, list[str]] = {}
    for veto in registered_vetoes():
        # Each veto asks only about the customers it could silence here.
        covered = {q.customer.id for q in questions
                   if q.customer.id is not None and veto.covers(q.lane, q.template)}
        if covered:
            for customer_id in await veto.check(session, covered):
                vetoed.setdefault(customer_id, []).append(veto.name)
    return {customer_id: ContactFacts(tuple(vetoed.get(customer_id, ()) if customer_id else ()),
                                      tuple(planned.get(customer_id, ())))
            for customer_id in customer_ids}
