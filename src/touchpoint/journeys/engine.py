"""The journey engine: behaviour events and scheduled scans enrol customers, due steps queue
messages through the outbox, exit goals end journeys and count conversions.

Everything durable lives in our tables, so several bot processes can run the same ticks:
enrolments are unique per customer × journey × occurrence (INSERT … ON CONFLICT DO NOTHING), a
step is taken by a conditional UPDATE (only one process wins it), and outbox rows carry a dedupe
key per enrolment step.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.catalog.models import Product
from touchpoint.checks import of_type, present, saved_id
from touchpoint.clock import utcnow
from touchpoint.config import ConfigError, Settings, get_settings
from touchpoint.customers.models import BehaviourEvent, Customer
from touchpoint.customers.service import insert_ignoring_conflicts
from touchpoint.db import Database
from touchpoint.i18n import resolve_locale
from touchpoint.journeys.models import Enrolment, JourneyCursor
from touchpoint.journeys.pause import paused_keys
from touchpoint.journeys.spec import (
    EventTrigger,
    Journey,
    JourneyFileError,
    JourneysFile,
    ScanTrigger,
    Step,
    load_journeys,
)
from touchpoint.messaging.outbox import enqueue
from touchpoint.messaging.rules import Lane
from touchpoint.messaging.templates import known_templates
from touchpoint.orders.models import Order, OrderItem
from touchpoint.wiring import load_all_templates

log = logging.getLogger(__name__)

LIVE_STATUSES = ("active", "completed")  # an enrolment whose messages may still go out
NOT_SPENT = ("cancelled", "refunded", "returned")
# The trigger tick re-reads events this young: a slow transaction may commit a lower id late.
SETTLE = timedelta(seconds=30)
TICK_BATCH = 5_000
GOAL_HORIZON = timedelta(days=7)


class History:
    """A customer's recent events as sorted times, by type and by type + payload key value:
    "viewed this sku 3 times in 2 days" is two binary searches, however long the history."""

    def __init__(self) -> None:
        self._times: dict[tuple[str, str, str], list[datetime]] = defaultdict(list)

    def add(self, kind: str, at: datetime, keys: dict[str, str]) -> None:
        self._times[(kind, "", "")].append(at)
        for key, value in keys.items():
            self._times[(kind, key, value)].append(at)

    def count(self, kind: str, since: datetime, until: datetime, key: str = "", value: str = "") -> int:
        times = self._times.get((kind, key, value), [])
        return bisect_right(times, until) - bisect_left(times, since)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event as the engine reads it, when its BehaviourEvent row is not at hand."""

    id: int | None
    type: str
    customer_id: int | None
    store_customer_id: str | None
    payload: dict[str, Any]
    occurred_at: datetime


Event = BehaviourEvent | EventRecord


@dataclass(slots=True)
class _Batch:
    """What evaluating a batch of events needs, read once for all of them."""

    events: list[Event]
    customers: dict[int, Customer]  # by event id
    live: set[tuple[str, int]]  # (journey, customer) pairs a goal may still end
    taken: set[tuple[str, int, str]]  # (journey, customer, occurrence) already enrolled
    paused: set[str]
    history: dict[int, History] | None = None  # by customer id, read when first needed


class JourneyEngine:
    def __init__(self, settings: Settings, journeys: JourneysFile) -> None:
        self.settings = settings
        self.journeys = {j.key: j for j in journeys.enabled()}
        self.triggers: dict[str, list[Journey]] = {}
        self.goals: dict[str, list[Journey]] = {}
        for journey in self.journeys.values():
            if isinstance(journey.trigger, EventTrigger):
                self.triggers.setdefault(journey.trigger.event, []).append(journey)
            for goal in journey.exit:
                if journey not in self.goals.setdefault(goal.event, []):
                    self.goals[goal.event].append(journey)
        # Triggers that look back at the customer's recent events ("viewed 3 times", "unless…").
        event_triggers = [j.trigger for j in self.journeys.values() if isinstance(j.trigger, EventTrigger)]
        self.repeat_triggers = [t for t in event_triggers if t.times > 1 or t.unless]
        self.repeat_kinds = {t.event for t in self.repeat_triggers}
        self.repeat_keys = sorted({t.key for t in self.repeat_triggers if t.key})
        self.repeat_depth = max((t.times for t in self.repeat_triggers), default=1)
        self.repeat_window = max((t.within or timedelta(days=1) for t in self.repeat_triggers),
                                 default=timedelta(days=1))
        # How long a completed or held-out enrolment may still be ended or converted by a goal.
        self.goal_horizon = max([GOAL_HORIZON, *(g.within for j in self.journeys.values() for g in j.exit)])
        # How far back an occurrence may already be enrolled (`once_per` periods).
        self.lookback = max([self.goal_horizon, *(t.once_per for t in event_triggers if t.once_per)])

    @property
    def event_types(self) -> set[str]:
        return set(self.triggers) | set(self.goals)

    # --- events ---------------------------------------------------------------------------

    async def handle_event(self, session: AsyncSession, event: Event) -> int:
        """Apply exit goals, then enrol: returns how many enrolments were created."""
        return await self.evaluate(session, [event])

    async def evaluate(self, session: AsyncSession, events: Sequence[Event]) -> int:
        """Goals and enrolments for recorded events, in order; what they need (their customers,
        enrolments, recent history, paused journeys) is read once for all of them."""
        events = [e for e in events if e.type in self.triggers or e.type in self.goals]
        if not events:
            return 0
        if any(e.id is None for e in events):
            await session.flush()
        customers = await _customers_for(session, events)
        live, taken = await self._enrolments(session, {c.id for c in customers.values() if c.id})
        paused = await paused_keys(session) if any(e.type in self.triggers for e in events) else set()
        batch = _Batch(events, customers, live, taken, paused)
        enrolled = 0
        for event in events:
            enrolled += await self._handle(session, event, batch)
        return enrolled

    async def _handle(self, session: AsyncSession, event: Event, batch: _Batch) -> int:
        customer = batch.customers.get(event.id or 0)
        if customer is not None and customer.id is not None:
            await self._apply_goals(session, customer.id, event, batch.live)
        enrolled = 0
        for journey in self.triggers.get(event.type, []):
            trigger = of_type(journey.trigger, EventTrigger, "an event journey's trigger")
            if journey.key in batch.paused or not all(f.matches(event.payload) for f in trigger.where):
                continue
            if trigger.watchers:
                audience = await _watchers(session, trigger, event)
            else:
                audience = [customer] if customer is not None else []
            for person in audience:
                created = await self._enrol_on_event(session, journey, person, event, batch)
                if created and person.id is not None:
                    batch.live.add((journey.key, person.id))  # a later event in the batch may end it
                enrolled += created
        return enrolled

    async def _apply_goals(self, session: AsyncSession, customer_id: int, event: Event,
                           live: set[tuple[str, int]]) -> None:
        at = event.occurred_at
        for journey in self.goals.get(event.type, []):
            if (journey.key, customer_id) not in live:
                continue
            for goal in journey.exit:
                if goal.event != event.type or not all(f.matches(event.payload) for f in goal.where):
                    continue
                mine = (Enrolment.journey_key == journey.key, Enrolment.customer_id == customer_id,
                        Enrolment.enrolled_at <= at)
                values: dict[str, Any] = {"status": "exited", "exited_at": at,
                                          "exit_reason": f"goal:{goal.event}"}
                if goal.conversion:
                    values["converted_at"] = at
                # Live enrolments end (messages still waiting are dropped by the sender's guard);
                # a conversion counts within the goal's window after enrolment.
                await session.exec(update(Enrolment).where(  # type: ignore[call-overload]
                    *mine, col(Enrolment.status).in_(LIVE_STATUSES),
                    *(() if not goal.conversion else (Enrolment.enrolled_at >= at - goal.within,)),
                ).values(**values).execution_options(synchronize_session=False))
                if goal.conversion:
                    # The control group converts too: that is what uplift is measured against.
                    await session.exec(update(Enrolment).where(  # type: ignore[call-overload]
                        *mine, Enrolment.status == "held_out", col(Enrolment.converted_at).is_(None),
                        Enrolment.enrolled_at >= at - goal.within,
                    ).values(converted_at=at, exit_reason=f"goal:{goal.event}")
                        .execution_options(synchronize_session=False))

    async def _enrolments(self, session: AsyncSession,
                          customer_ids: set[int]) -> tuple[set[tuple[str, int]], set[tuple[str, int, str]]]:
        """The customers' recent enrolments: the (journey, customer) pairs a goal may still end or
        convert, and the occurrences already enrolled. A customer's hundredth cart update then
        costs neither an UPDATE nor an INSERT. Completed and held-out enrolments matter to goals
        only within their horizon (conversion windows, last messages still waiting)."""
        if not customer_ids:
            return set(), set()
        now = utcnow()
        rows = await session.exec(select(
            Enrolment.journey_key, Enrolment.customer_id, Enrolment.occurrence_key, Enrolment.status,
            Enrolment.converted_at, Enrolment.enrolled_at,
        ).where(col(Enrolment.customer_id).in_(customer_ids),
                or_(Enrolment.status == "active", Enrolment.enrolled_at >= now - self.lookback)))
        live, taken = set(), set()
        for key, customer_id, occurrence, status, converted_at, enrolled_at in rows.all():
            taken.add((key, customer_id, occurrence))
            recent = enrolled_at >= now - self.goal_horizon
            if status == "active" or (recent and (status == "completed" or (
                    status == "held_out" and converted_at is None))):
                live.add((key, customer_id))
        return live, taken

    async def _history(self, session: AsyncSession, events: Sequence[Event],
                       customers: dict[int, Customer]) -> dict[int, History]:
        """Recent events of every customer whose event meets a repeat/"unless" trigger, in one query."""
        wanted = {cid for e in events if e.type in self.repeat_kinds and e.id in customers
                  if (cid := customers[e.id].id) is not None}
        if not wanted:
            return {}
        first, last = min(e.occurred_at for e in events), max(e.occurred_at for e in events)
        return await self._load_history(session, wanted, first, last)

    async def _load_history(self, session: AsyncSession, customer_ids: set[int], first: datetime,
                            last: datetime) -> dict[int, History]:
        """What the repeat triggers need to judge events between ``first`` and ``last``, however busy
        the customer: of each type and key value, the latest few events before ``first`` (as many as
        the largest `times`) and all from ``first`` on. Only types and key values, no payload."""
        keys = [col(BehaviourEvent.payload)[key].as_string() for key in self.repeat_keys]
        kinds = self.repeat_kinds | {u for t in self.repeat_triggers for u in t.unless}
        event = col(BehaviourEvent.occurred_at)
        ranked = select(
            BehaviourEvent.customer_id, BehaviourEvent.type, event,
            *(key.label(f"key{i}") for i, key in enumerate(keys)),
            func.row_number().over(partition_by=[BehaviourEvent.customer_id, BehaviourEvent.type, *keys],
                                   order_by=event.desc()).label("latest"),
        ).where(col(BehaviourEvent.customer_id).in_(customer_ids), col(BehaviourEvent.type).in_(kinds),
                event >= first - self.repeat_window, event <= last).subquery()
        rows = await session.execute(select(*(c for c in ranked.c if c.name != "latest")).where(
            or_(ranked.c.latest <= self.repeat_depth, ranked.c.occurred_at >= first),
        ).order_by(ranked.c.occurred_at))
        found = {cid: History() for cid in customer_ids}
        for cid, kind, at, *values in rows.all():
            found[cid].add(kind, at, {k: str(v) for k, v in zip(self.repeat_keys, values, strict=True)
                                      if v is not None})
        return found

    async def _enrol_on_event(self, session: AsyncSession, journey: Journey, customer: Customer,
                              event: Event, batch: _Batch) -> int:
        trigger = of_type(journey.trigger, EventTrigger, "an event journey's trigger")
        saved_id(customer)
        occurrence = _occurrence(trigger, event)
        if occurrence is None or (journey.key, customer.id, occurrence) in batch.taken:
            return 0
        if trigger.times > 1 or trigger.unless:
            window_start, until = event.occurred_at - (trigger.within or timedelta(days=1)), event.occurred_at
            if batch.history is None:
                batch.history = await self._history(session, batch.events, batch.customers)
            if customer.id not in batch.history:  # a watcher, not one of the batch's own customers
                batch.history.update(await self._load_history(session, {customer.id}, until, until))
            seen = batch.history[customer.id]
            if any(seen.count(kind, window_start, until) for kind in trigger.unless):
                return 0
            key_value = str(event.payload.get(trigger.key or ""))
            if seen.count(event.type, window_start, until, trigger.key or "", key_value) < trigger.times:
                return 0
        # Enrolled or not eligible: the rest of the batch would find the same answer.
        batch.taken.add((journey.key, customer.id, occurrence))
        return await self.enrol(session, journey, customer, occurrence, dict(event.payload),
                                at=event.occurred_at)

    # --- enrolment and steps ----------------------------------------------------------------

    async def enrol(self, session: AsyncSession, journey: Journey, customer: Customer, occurrence: str,
                    context: dict[str, Any], *, at: datetime | None = None) -> int:
        """Enrol once per occurrence (whatever the number of processes); 1 if this call did."""
        saved_id(customer)
        if not await self.eligible(session, journey, customer):
            return 0
        now = utcnow()
        at = min(at or now, now)
        held_out = journey.held_out(customer.id)
        first_due = _step_due(journey.steps[0], at, context, self.settings.journey_time_scale)
        result = await session.exec(insert_ignoring_conflicts(session, Enrolment).values(
            journey_key=journey.key, customer_id=customer.id, occurrence_key=occurrence[:128],
            status="held_out" if held_out else "active", holdout=held_out, step_index=0,
            next_step_at=None if held_out else first_due, context=context, enrolled_at=at,
        ))
        if not result.rowcount:
            return 0
        if not held_out and first_due <= now:
            # An immediate step goes out in the same transaction as its cause.
            enrolment = (await session.exec(select(Enrolment).where(
                Enrolment.journey_key == journey.key, Enrolment.customer_id == customer.id,
                Enrolment.occurrence_key == occurrence[:128]))).one()
            await self.take_step(session, enrolment, customer)
        return 1

    async def eligible(self, session: AsyncSession, journey: Journey, customer: Customer) -> bool:
        """Segment conditions, and who may be contacted at all: the treatment and the control
        group are drawn from the same reachable, consenting population, so uplift compares like
        with like."""
        if not customer.reachable:
            return False
        if journey.lane is not Lane.TRANSACTIONAL and customer.nudges_paused:
            return False
        if journey.lane is Lane.MARKETING and not customer.marketing_consent:
            return False
        cond = journey.conditions
        locale = resolve_locale(customer.locale, customer.language_code, self.settings.default_locale)
        if locale not in cond.languages:
            return False
        linked = customer.store_customer_id is not None
        if cond.linked is not None and cond.linked != linked:
            return False
        needs_orders = (cond.min_spend_minor, cond.max_spend_minor, cond.tiers,
                        cond.last_order_within, cond.last_order_older_than)
        if all(c is None for c in needs_orders):
            return True
        spend, last_order = 0, None
        if linked:
            spend, last_order = (await session.exec(
                select(func.coalesce(func.sum(Order.total_minor), 0), func.max(Order.created_at)).where(
                    Order.store_customer_id == customer.store_customer_id,
                    col(Order.status).not_in(NOT_SPENT)))).one()
        now = utcnow()
        tier = "new" if last_order is None else ("vip" if spend >= self.settings.vip_spend_minor
                                                 else "regular")
        return not (
            (cond.min_spend_minor is not None and spend < cond.min_spend_minor)
            or (cond.max_spend_minor is not None and spend > cond.max_spend_minor)
            or (cond.tiers is not None and tier not in cond.tiers)
            or (cond.last_order_within is not None
                and (last_order is None or last_order < now - cond.last_order_within))
            or (cond.last_order_older_than is not None and last_order is not None
                and last_order > now - cond.last_order_older_than)
        )

    async def take_step(self, session: AsyncSession, enrolment: Enrolment,
                        customer: Customer | None = None) -> bool:
        """Queue the enrolment's current step and move on; False if another process took it."""
        saved_id(enrolment)
        journey = self.journeys.get(enrolment.journey_key)
        if journey is None:  # removed from the file: the enrolment ends quietly
            await session.exec(update(Enrolment).where(Enrolment.id == enrolment.id)  # type: ignore[call-overload]
                               .values(status="exited", exit_reason="journey_removed", next_step_at=None))
            return False
        now = utcnow()
        index = enrolment.step_index
        following = index + 1
        values: dict[str, Any] = {"step_index": following}
        if following < len(journey.steps):
            values["next_step_at"] = _step_due(journey.steps[following], now, enrolment.context,
                                               self.settings.journey_time_scale)
        else:
            values.update(status="completed", next_step_at=None)
        won = await session.exec(update(Enrolment).where(  # type: ignore[call-overload]
            Enrolment.id == enrolment.id, Enrolment.step_index == index, Enrolment.status == "active",
        ).values(**values))
        if not won.rowcount:
            return False
        step = journey.steps[index]
        params = {**enrolment.context, **step.params}
        if step.requires_param and not params.get(step.requires_param):
            return True  # nothing to offer: skip this step, keep the journey going
        customer = customer or await session.get(Customer, enrolment.customer_id)
        if customer is None:
            return True
        due = now
        if step.send_window and journey.lane is Lane.MARKETING:
            due = await preferred_send_time(session, customer, now, step.send_window)
        params.update(await self.render_params(session, customer, params))
        await enqueue(
            session, self.settings, customer, step.send, params, lane=journey.lane, due_at=due,
            expires_at=now + step.expires_after if step.expires_after else None,
            dedupe_key=f"j{enrolment.id}s{index}", journey_key=journey.key, enrolment_id=enrolment.id,
        )
        return True

    async def render_params(self, session: AsyncSession, customer: Customer,
                             params: dict[str, Any]) -> dict[str, Any]:
        """What templates need besides the trigger's payload: links, product names, the time zone."""
        shop = self.settings.shop_url.rstrip("/")
        extra: dict[str, Any] = {"name": customer.first_name, "tz": customer.timezone,
                                 "cart_url": params.get("cart_url") or f"{shop}/cart"}
        sku = params.get("sku")
        if isinstance(sku, str):
            extra["product_url"] = f"{shop}/p/{sku}"
            product = await session.get(Product, sku)
            if product is not None:
                extra["product_name"] = product.name
        if customer.store_customer_id is not None:
            items = await last_order_items(session, customer.store_customer_id)
            if items:
                # One tap rebuilds the last order's cart on the shop (a cart permalink).
                extra["reorder_url"] = f"{shop}/cart/" + ",".join(f"{s}:{q}" for s, q in items)
        return extra

    # --- ticks -----------------------------------------------------------------------------

    async def run_due_steps(self, db: Database, limit: int = 500) -> int:
        """Take every due step (highest journey priority first)."""
        now = utcnow()
        async with db.session() as session:
            # A paused journey's steps wait (and go on once it is resumed).
            query = (select(Enrolment).where(Enrolment.status == "active", col(Enrolment.next_step_at) <= now,
                                             col(Enrolment.journey_key).not_in(await paused_keys(session)))
                     .order_by(col(Enrolment.next_step_at)).limit(limit))
            if db.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            due = list((await session.exec(query)).all())
            due.sort(key=lambda e: -(self.journeys[e.journey_key].priority
                                     if e.journey_key in self.journeys else 0))
            taken = 0
            for enrolment in due:
                taken += await self.take_step(session, enrolment)
                await session.flush()  # the next customer's caps count this one's message
        return taken

    async def evaluate_new_events(self, db: Database) -> int:
        """Read the event log past the cursor; returns how many enrolments were created."""
        types = sorted(self.event_types)
        if not types:
            return 0
        now = utcnow()
        async with db.session() as session:
            cursor = await session.get(JourneyCursor, "events")
            last = cursor.last_event_id if cursor else 0
            events = list((await session.exec(
                select(BehaviourEvent)
                .where(col(BehaviourEvent.id) > last, col(BehaviourEvent.type).in_(types))
                .order_by(col(BehaviourEvent.id)).limit(TICK_BATCH))).all())
            enrolled = await self.evaluate(session, events)
            settled = last
            for event in events:
                if event.occurred_at <= now - SETTLE:
                    settled = max(settled, event.id or 0)
            if len(events) == TICK_BATCH:
                settled = max(settled, events[-1].id or 0)
            if settled != last:
                await session.merge(JourneyCursor(name="events", last_event_id=settled, updated_at=now))
        return enrolled

    async def run_scans(self, db: Database) -> int:
        enrolled = 0
        for journey in self.journeys.values():
            if isinstance(journey.trigger, ScanTrigger):
                async with db.session() as session:
                    if journey.key not in await paused_keys(session):
                        enrolled += await SCANS[journey.trigger.scan](self, session, journey)
        return enrolled

    async def _scan_inactive(self, session: AsyncSession, journey: Journey) -> int:
        """Customers silent for N days, once per silence (the occurrence is their last visit)."""
        trigger = of_type(journey.trigger, ScanTrigger, "a scan journey's trigger")
        cutoff = utcnow() - timedelta(days=trigger.days)
        already = select(Enrolment.id).where(
            Enrolment.journey_key == journey.key, Enrolment.customer_id == Customer.id,
            Enrolment.enrolled_at > Customer.last_seen_at).exists()
        found = (await session.exec(select(Customer).where(
            Customer.last_seen_at < cutoff, Customer.reachable, ~already))).all()
        enrolled = 0
        for customer in found:
            occurrence = f"inactive@{customer.last_seen_at.date().isoformat()}"
            enrolled += await self.enrol(session, journey, customer, occurrence, {})
        return enrolled

    async def _scan_replenishment(self, session: AsyncSession, journey: Journey) -> int:
        """Delivered consumables about to run out (N days before their typical run-out)."""
        of_type(journey.trigger, ScanTrigger, "a scan journey's trigger")
        now = utcnow()
        lead = timedelta(days=journey.trigger.days)
        rows = (await session.exec(
            select(Customer, Order.id, Order.delivered_at, OrderItem.sku, Product.consumable_days)
            .join(Order, col(Order.store_customer_id) == col(Customer.store_customer_id))
            .join(OrderItem, col(OrderItem.order_id) == col(Order.id))
            .join(Product, col(Product.sku) == col(OrderItem.sku))
            .where(col(Product.consumable_days).is_not(None), col(Order.delivered_at).is_not(None),
                   col(Order.delivered_at) > now - timedelta(days=400))
        )).all()
        enrolled = 0
        for customer, order_id, delivered_at, sku, days in rows:
            runs_out = delivered_at + timedelta(days=days)
            # Due from `lead` days before the run-out until a week after it, not for ancient orders.
            if not runs_out - lead <= now <= runs_out + timedelta(days=7):
                continue
            enrolled += await self.enrol(session, journey, customer, f"order={order_id}:{sku}",
                                         {"sku": sku, "order_id": order_id})
        return enrolled


SCANS = {"inactive": JourneyEngine._scan_inactive, "replenishment": JourneyEngine._scan_replenishment}


def _step_due(step: Step, base: datetime, context: dict[str, Any], time_scale: float = 1.0) -> datetime:
    """When a step is due; ``time_scale`` > 1 shortens the waits (demos)."""
    wait = step.wait / time_scale
    if step.before_field:
        raw = context.get(step.before_field)
        try:
            moment = datetime.fromisoformat(str(raw))
        except ValueError:
            return base + wait
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=base.tzinfo)
        return max(moment - wait, base)
    return base + wait


async def preferred_send_time(session: AsyncSession, customer: Customer, start: datetime,
                              window: timedelta) -> datetime:
    """The customer's usual active hour (from their own chat events) within the window, else its start."""
    saved_id(customer)
    zone = ZoneInfo(customer.timezone)
    since = start - timedelta(days=60)
    stamps = (await session.exec(select(BehaviourEvent.occurred_at).where(
        BehaviourEvent.customer_id == customer.id, BehaviourEvent.source == "bot",
        BehaviourEvent.occurred_at > since).order_by(col(BehaviourEvent.id).desc()).limit(500))).all()
    if not stamps:
        return start
    hours = Counter(stamp.astimezone(zone).hour for stamp in stamps)
    ranked = sorted(hours.items(), key=lambda item: (-item[1], item[0]))
    for hour, _count in ranked:
        candidate = start.astimezone(zone).replace(hour=hour, minute=0, second=0, microsecond=0)
        for shift in (0, 1):
            moment = (candidate + timedelta(days=shift)).astimezone(start.tzinfo)
            if start <= moment <= start + window:
                return moment
    return start


async def last_order_items(session: AsyncSession, store_customer_id: str) -> list[tuple[str, int]]:
    order_id = (await session.exec(select(Order.id).where(Order.store_customer_id == store_customer_id)
                                   .order_by(col(Order.created_at).desc()).limit(1))).first()
    if order_id is None:
        return []
    items = (await session.exec(select(OrderItem.sku, OrderItem.quantity)
                                .where(OrderItem.order_id == order_id))).all()
    return [(sku, quantity) for sku, quantity in items]


def _occurrence(trigger: EventTrigger, event: Event) -> str | None:
    """What makes an enrolment unique: the trigger's key value (within its `once_per` period), else
    the event itself; None when the event lacks the key."""
    if trigger.key is None:
        return f"event={event.id}"
    value = event.payload.get(trigger.key)
    if value is None:
        return None
    occurrence = f"{trigger.key}={value}"
    if trigger.once_per:
        occurrence += f"@{int(event.occurred_at.timestamp() // trigger.once_per.total_seconds())}"
    return occurrence[:128]


async def _customers_for(session: AsyncSession, events: Sequence[Event]) -> dict[int, Customer]:
    """The customer of each event of a batch (by event id), in one query: store events carry the
    store's customer id only, chat events our own."""
    ids = {e.customer_id for e in events if e.customer_id is not None}
    store_ids = {e.store_customer_id for e in events if e.customer_id is None and e.store_customer_id}
    if not ids and not store_ids:
        return {}
    found = (await session.exec(select(Customer).where(or_(
        col(Customer.id).in_(ids), col(Customer.store_customer_id).in_(store_ids)))
        .order_by(col(Customer.id).desc()))).all()
    by_id = {c.id: c for c in found}
    by_store = {c.store_customer_id: c for c in found if c.store_customer_id}  # the first linked chat wins
    result = {}
    for event in events:
        person = by_id.get(event.customer_id) if event.customer_id else by_store.get(event.store_customer_id)
        if person is not None and event.id is not None:
            result[event.id] = person
    return result


async def _watchers(session: AsyncSession, trigger: EventTrigger, event: Event) -> list[Customer]:
    """Customers who asked to watch this key (e.g. a sku) within the last 90 days."""
    present(trigger.watchers, "the trigger's watchers")
    present(trigger.key, "the trigger's key")
    value = event.payload.get(trigger.key)
    rows = (await session.exec(select(BehaviourEvent.customer_id, BehaviourEvent.payload).where(
        BehaviourEvent.type == trigger.watchers, col(BehaviourEvent.customer_id).is_not(None),
        BehaviourEvent.occurred_at > event.occurred_at - timedelta(days=90)))).all()
    ids = {cid for cid, payload in rows if payload.get(trigger.key) == value}
    if not ids:
        return []
    return list((await session.exec(select(Customer).where(col(Customer.id).in_(ids)))).all())


# --- the process-wide engine and the hook for new events -----------------------------------

_engine: JourneyEngine | None = None


def configure(engine: JourneyEngine | None) -> None:
    global _engine
    _engine = engine


def get_engine(settings: Settings | None = None) -> JourneyEngine:
    """The engine built from the configured journeys file (loaded once per process)."""
    global _engine
    if _engine is None:
        load_all_templates()
        settings = settings or get_settings()
        try:
            parsed = load_journeys(settings.journeys_file, known_templates=known_templates())
        except JourneyFileError as exc:
            raise ConfigError("TOUCHPOINT_JOURNEYS_FILE is not valid:\n" + str(exc)) from None
        _engine = JourneyEngine(settings, parsed)
    return _engine


async def on_behaviour_event(session: AsyncSession, event: BehaviourEvent) -> int:
    """Immediate evaluation, in the caller's transaction, right after an event is recorded."""
    return await get_engine().handle_event(session, event)



async def enrolments_allowing_send(session: AsyncSession, enrolment_ids: Collection[int]) -> set[int]:
    """The sender's last look, for a group of messages: the enrolments still live."""
    query = select(Enrolment.id).where(col(Enrolment.id).in_(enrolment_ids),
                                       col(Enrolment.status).in_(LIVE_STATUSES))
    return {enrolment_id for enrolment_id in (await session.exec(query)).all() if enrolment_id is not None}
