"""The journey engine: behaviour events and scheduled scans enrol customers, due steps queue
messages through the outbox, exit goals end journeys and count conversions.

Everything durable lives in our tables, so several bot processes can run the same ticks:
enrolments are unique per customer × journey × occurrence (INSERT … ON CONFLICT DO NOTHING), a
step is taken by a conditional UPDATE (only one process wins it), and outbox rows carry a dedupe
key per enrolment step.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.catalog.models import Product
from touchpoint.clock import utcnow
from touchpoint.config import ConfigError, Settings, get_settings
from touchpoint.customers.models import BehaviourEvent, Customer
from touchpoint.customers.service import insert_ignoring_conflicts
from touchpoint.db import Database
from touchpoint.i18n import resolve_locale
from touchpoint.journeys.models import Enrolment, JourneyCursor
from touchpoint.journeys.outbox import enqueue
from touchpoint.journeys.pause import paused_keys
from touchpoint.journeys.rules import Lane
from touchpoint.journeys.spec import (
    EventTrigger,
    Journey,
    JourneyFileError,
    JourneysFile,
    ScanTrigger,
    Step,
    load_journeys,
)
from touchpoint.orders.models import Order, OrderItem

log = logging.getLogger(__name__)

LIVE_STATUSES = ("active", "completed")  # an enrolment whose messages may still go out
NOT_SPENT = ("cancelled", "refunded", "returned")
# The trigger tick re-reads events this young: a slow transaction may commit a lower id late.
SETTLE = timedelta(seconds=30)
TICK_BATCH = 5_000


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

    @property
    def event_types(self) -> set[str]:
        return set(self.triggers) | set(self.goals)

    # --- events ---------------------------------------------------------------------------

    async def handle_event(self, session: AsyncSession, event: BehaviourEvent,
                           customer: Customer | None = None, *,
                           enrolled_in: set[tuple[str, int]] | None = None,
                           history: dict[int, list[BehaviourEvent]] | None = None,
                           paused: set[str] | None = None) -> int:
        """Apply exit goals, then enrol: returns how many enrolments were created.

        A batch caller may prefetch, for all its customers at once: ``enrolled_in`` (journey,
        customer) pairs — goal updates only for customers in a goal's journey — and ``history``,
        each customer's recent events for repeat and "unless" checks — and ``paused``, the journeys
        paused from the console (they still end on their goals, but enrol nobody).
        """
        if event.type not in self.triggers and event.type not in self.goals:
            return 0
        if paused is None:
            paused = await paused_keys(session) if event.type in self.triggers else set()
        if event.id is None:
            await session.flush()
        customer = customer or await _event_customer(session, event)
        if customer is not None and customer.id is not None:
            await self._apply_goals(session, customer.id, event, enrolled_in)
        enrolled = 0
        for journey in self.triggers.get(event.type, []):
            trigger = journey.trigger
            assert isinstance(trigger, EventTrigger)
            if journey.key in paused or not all(f.matches(event.payload) for f in trigger.where):
                continue
            if trigger.watchers:
                audience = await _watchers(session, trigger, event)
            else:
                audience = [customer] if customer is not None else []
            for person in audience:
                created = await self._enrol_on_event(session, journey, person, event, history)
                if created and enrolled_in is not None and person.id is not None:
                    enrolled_in.add((journey.key, person.id))  # a later event in the batch may end it
                enrolled += created
        return enrolled

    async def _apply_goals(self, session: AsyncSession, customer_id: int, event: BehaviourEvent,
                           enrolled_in: set[tuple[str, int]] | None) -> None:
        at = event.occurred_at
        for journey in self.goals.get(event.type, []):
            if enrolled_in is not None and (journey.key, customer_id) not in enrolled_in:
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

    async def _enrol_on_event(self, session: AsyncSession, journey: Journey, customer: Customer,
                              event: BehaviourEvent,
                              history: dict[int, list[BehaviourEvent]] | None = None) -> int:
        trigger = journey.trigger
        assert isinstance(trigger, EventTrigger) and customer.id is not None
        key_value = event.payload.get(trigger.key) if trigger.key else None
        if trigger.key and key_value is None:
            return 0
        window_start = event.occurred_at - (trigger.within or timedelta(days=1))
        if trigger.times > 1 or trigger.unless:
            # One look at the customer's recent history serves both checks.
            if history is not None:
                recent = [(e.type, e.payload) for e in history.get(customer.id, [])
                          if window_start <= e.occurred_at <= event.occurred_at]
            else:
                recent = await _history(session, customer.id, window_start, event.occurred_at)
            if any(kind in trigger.unless for kind, _ in recent):
                return 0
            same = sum(1 for kind, p in recent if kind == event.type and p.get(trigger.key) == key_value)
            if same < trigger.times:
                return 0
        if trigger.key:
            occurrence = f"{trigger.key}={key_value}"
            if trigger.once_per:
                bucket = int(event.occurred_at.timestamp() // trigger.once_per.total_seconds())
                occurrence += f"@{bucket}"
        else:
            occurrence = f"event={event.id}"
        return await self.enrol(session, journey, customer, occurrence, dict(event.payload),
                                at=event.occurred_at)

    # --- enrolment and steps ----------------------------------------------------------------

    async def enrol(self, session: AsyncSession, journey: Journey, customer: Customer, occurrence: str,
                    context: dict[str, Any], *, at: datetime | None = None) -> int:
        """Enrol once per occurrence (whatever the number of processes); 1 if this call did."""
        assert customer.id is not None
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
        assert enrolment.id is not None
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
        enrolled = 0
        async with db.session() as session:
            cursor = await session.get(JourneyCursor, "events")
            last = cursor.last_event_id if cursor else 0
            events = list((await session.exec(
                select(BehaviourEvent)
                .where(col(BehaviourEvent.id) > last, col(BehaviourEvent.type).in_(types))
                .order_by(col(BehaviourEvent.id)).limit(TICK_BATCH))).all())
            customers = await _customers_for(session, events)
            ids = {c.id for c in customers.values() if c.id}
            enrolled_in = await _enrolled_in(session, ids)
            history = await self._batch_history(session, events, customers)
            paused = await paused_keys(session)
            settled = last
            for event in events:
                enrolled += await self.handle_event(session, event, customers.get(event.id or 0),
                                                    enrolled_in=enrolled_in, history=history, paused=paused)
                if event.occurred_at <= now - SETTLE:
                    settled = max(settled, event.id or 0)
            if len(events) == TICK_BATCH:
                settled = max(settled, events[-1].id or 0)
            if settled != last:
                await session.merge(JourneyCursor(name="events", last_event_id=settled, updated_at=now))
        return enrolled

    async def _batch_history(self, session: AsyncSession, events: list[BehaviourEvent],
                             customers: dict[int, Customer]) -> dict[int, list[BehaviourEvent]]:
        """Recent events of every customer whose event meets a repeat/"unless" trigger: one query."""
        windows = [j.trigger.within or timedelta(days=1) for j in self.journeys.values()
                   if isinstance(j.trigger, EventTrigger) and (j.trigger.times > 1 or j.trigger.unless)]
        kinds = {j.trigger.event for j in self.journeys.values()
                 if isinstance(j.trigger, EventTrigger) and (j.trigger.times > 1 or j.trigger.unless)}
        wanted = {customers[e.id].id for e in events if e.type in kinds and e.id in customers}
        if not wanted or not events:
            return {}
        since = min(e.occurred_at for e in events) - max(windows)
        rows = await session.exec(select(BehaviourEvent).where(
            col(BehaviourEvent.customer_id).in_(wanted), BehaviourEvent.occurred_at >= since))
        found: dict[int, list[BehaviourEvent]] = {cid: [] for cid in wanted if cid is not None}
        for row in rows.all():
            if row.customer_id is not None:
                found[row.customer_id].append(row)
        return found

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
        assert isinstance(journey.trigger, ScanTrigger)
        cutoff = utcnow() - timedelta(days=journey.trigger.days)
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
        assert isinstance(journey.trigger, ScanTrigger)
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
    assert customer.id is not None
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


async def _event_customer(session: AsyncSession, event: BehaviourEvent) -> Customer | None:
    if event.customer_id is not None:
        return await session.get(Customer, event.customer_id)
    if event.store_customer_id is not None:
        return (await session.exec(select(Customer).where(
            Customer.store_customer_id == event.store_customer_id))).first()
    return None


async def _customers_for(session: AsyncSession, events: list[BehaviourEvent]) -> dict[int, Customer]:
    """The customer of each event of a batch (by event id), in one query: store events carry the
    store's customer id only, chat events our own."""
    ids = {e.customer_id for e in events if e.customer_id is not None}
    store_ids = {e.store_customer_id for e in events if e.customer_id is None and e.store_customer_id}
    if not ids and not store_ids:
        return {}
    found = (await session.exec(select(Customer).where(or_(
        col(Customer.id).in_(ids), col(Customer.store_customer_id).in_(store_ids))))).all()
    by_id = {c.id: c for c in found}
    by_store = {c.store_customer_id: c for c in found if c.store_customer_id}
    result = {}
    for event in events:
        person = by_id.get(event.customer_id) if event.customer_id else by_store.get(event.store_customer_id)
        if person is not None and event.id is not None:
            result[event.id] = person
    return result


async def _enrolled_in(session: AsyncSession, customer_ids: set[int]) -> set[tuple[str, int]]:
    """Which of these customers are in which journeys (exits only touch those)."""
    if not customer_ids:
        return set()
    rows = await session.exec(select(Enrolment.journey_key, Enrolment.customer_id).where(
        col(Enrolment.customer_id).in_(customer_ids)))
    return {(key, cid) for key, cid in rows.all()}


async def _history(session: AsyncSession, customer_id: int, since: datetime,
                   until: datetime) -> list[tuple[str, dict[str, Any]]]:
    """The customer's events in the window, newest first. Not filtered by type in SQL, so the
    planner walks this customer's own (customer, time) index instead of every event of a type."""
    query = select(BehaviourEvent.type, BehaviourEvent.payload).where(
        BehaviourEvent.customer_id == customer_id,
        BehaviourEvent.occurred_at >= since, BehaviourEvent.occurred_at <= until,
    ).order_by(col(BehaviourEvent.occurred_at).desc()).limit(5_000)
    return [(kind, dict(payload)) for kind, payload in (await session.exec(query)).all()]


async def _watchers(session: AsyncSession, trigger: EventTrigger, event: BehaviourEvent) -> list[Customer]:
    """Customers who asked to watch this key (e.g. a sku) within the last 90 days."""
    assert trigger.watchers is not None and trigger.key is not None
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
        from touchpoint.channels.all_templates import load_all_templates
        from touchpoint.channels.templates import known_templates

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


async def enrolment_allows_send(session: AsyncSession, enrolment_id: int) -> bool:
    """Has the journey not been exited while its message waited?"""
    return enrolment_id in await enrolments_allowing_send(session, [enrolment_id])


async def enrolments_allowing_send(session: AsyncSession, enrolment_ids: Collection[int]) -> set[int]:
    """The sender's last look, for a group of messages: the enrolments still live."""
    query = select(Enrolment.id).where(col(Enrolment.id).in_(enrolment_ids),
                                       col(Enrolment.status).in_(LIVE_STATUSES))
    return {enrolment_id for enrolment_id in (await session.exec(query)).all() if enrolment_id is not None}
