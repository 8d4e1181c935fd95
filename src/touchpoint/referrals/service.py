"""Referral codes, attribution and rewards: the core the bot, the CLI and the store events call.

Lifecycle: a newcomer arrives through a code (link or typed) → a *pending* referral. Their first
delivered order (store event, see :func:`on_order_status`) runs the fraud rules and either pays
both sides (*qualified*), pays the newcomer only (*capped*), holds it for staff (*held*) or
rejects it (*rejected*: the same person on both sides — same account, phone, store record,
e-mail or delivery address — or another rule). Paying writes *pending* rewards
(:class:`ReferralReward`): they become spendable only when the qualifying order's return window
has ended (:func:`release_due_rewards`, a scheduled job); a return, refund or cancellation before
that cancels them and *reverses* the referral. Every decision stores its reason on the referral
and as a behaviour event.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from touchpoint.aftersales.policy import PolicyRules
from touchpoint.catalog.models import Product
from touchpoint.clock import utcnow
from touchpoint.config import Settings
from touchpoint.customers.models import Customer, StoreCustomer
from touchpoint.customers.service import insert_ignoring_conflicts, record_event
from touchpoint.messaging.outbox import enqueue
from touchpoint.messaging.rules import Lane
from touchpoint.orders.models import Order, OrderItem, OrderStatus
from touchpoint.orders.phones import normalize_phone
from touchpoint.referrals import ledger
from touchpoint.referrals.models import (
    LedgerEntry,
    LedgerKind,
    Referral,
    ReferralCode,
    ReferralReward,
    ReferralStatus,
    RewardStatus,
    Voucher,
)
from touchpoint.referrals.rules import (
    Party,
    new_code,
    normalize_address,
    normalize_code,
    normalize_email,
    payout_decision,
    self_referral,
)

DELIVERED = (OrderStatus.DELIVERED.value, OrderStatus.PICKED_UP.value)
CAME_BACK = (OrderStatus.RETURNED.value, OrderStatus.REFUNDED.value, OrderStatus.CANCELLED.value)
PAID_STATUSES = (ReferralStatus.QUALIFIED.value, ReferralStatus.CAPPED.value)
_MAX_CHAIN = 100
_IDENTITY_ORDERS = 50  # a person's most recent orders whose contacts and addresses are compared
VOUCHER_CODE_LENGTH = 8


@dataclass(frozen=True, slots=True)
class Attribution:
    """What came of a code: ``joined`` (``new`` the first time), or why not."""

    outcome: str  # joined | unknown | own | already_referred | already_customer | too_late | cycle
    referrer: Customer | None = None
    referral: Referral | None = None
    new: bool = False


@dataclass(frozen=True, slots=True)
class InviteStats:
    joined: int  # friends who arrived through the code
    pending: int  # … still waiting for their first delivered order (or staff review)
    rewarded: int  # … who earned the referrer a reward
    earned_points: int  # referral points credited (reversals deducted)
    balance: int  # spendable points
    pending_points: int = 0  # referral points (either side) waiting for a return window to end
    pending_until: datetime | None = None  # when the last of them becomes spendable


# --- codes ---------------------------------------------------------------------------------


async def code_for(session: AsyncSession, customer: Customer) -> str:
    """The customer's one code, created on first use (safe when two updates race)."""
    assert customer.id is not None
    for _ in range(10):
        existing = await _code_of(session, customer.id)
        if existing is not None:
            return existing
        # A collision on the random code is ignored like the race on the customer: look again.
        await session.exec(
            insert_ignoring_conflicts(session, ReferralCode)
            .values(code=new_code(), customer_id=customer.id, created_at=utcnow())
        )
    raise RuntimeError("could not allocate a referral code")


async def _code_of(session: AsyncSession, customer_id: int) -> str | None:
    return (await session.exec(
        select(ReferralCode.code).where(ReferralCode.customer_id == customer_id)
    )).first()


# --- attribution -----------------------------------------------------------------------------


async def attribute_start(
    session: AsyncSession, settings: Settings, customer: Customer, code: str
) -> Attribution:
    """`/start ref_<code>`: the newcomer opened an invite link."""
    record_event(session, "referral.link_opened", customer_id=customer.id, payload={"code": code[:16]})
    return await attribute(session, settings, customer, code, source="link")


async def enter_code(
    session: AsyncSession, settings: Settings, customer: Customer, text: str
) -> Attribution:
    """"I have a code": any case, spaces, dashes or the whole link are fine."""
    return await attribute(session, settings, customer, text, source="typed")


async def attribute(
    session: AsyncSession, settings: Settings, customer: Customer, raw_code: str, *, source: str
) -> Attribution:
    assert customer.id is not None
    code = normalize_code(raw_code)
    owner = await _code_owner(session, code) if code else None
    if code is None or owner is None:
        return _rejected(session, customer, "unknown", code)
    reason = self_referral(_party(owner), _party(customer))
    if reason is not None:
        return _rejected(session, customer, "own", code, reason)
    existing = await _referral_of(session, customer.id)
    if existing is not None:
        if existing.referrer_id == owner.id:
            return Attribution("joined", owner, existing)
        return _rejected(session, customer, "already_referred", code)
    if await _orders_before(session, customer, utcnow()):
        return _rejected(session, customer, "already_customer", code)
    if customer.created_at < utcnow() - timedelta(days=settings.referral_join_window_days):
        return _rejected(session, customer, "too_late", code)
    if await _is_ancestor(session, customer.id, owner):
        return _rejected(session, customer, "cycle", code)
    inserted = await session.exec(
        insert_ignoring_conflicts(session, Referral)
        .values(code=code, referrer_id=owner.id, referee_id=customer.id, source=source,
                status=ReferralStatus.PENDING.value, created_at=utcnow())
        .returning(col(Referral.id))
    )
    if inserted.first() is None:  # the same person's other update won the race
        return await attribute(session, settings, customer, raw_code, source=source)
    referral = await _referral_of(session, customer.id)
    assert referral is not None
    record_event(session, "referral.joined", customer_id=customer.id,
                 payload={"referral_id": referral.id, "source": source})
    # News about the customer's own programme account: transactional (each friend counts, no
    # weekly repeat rule), still held back until quiet hours end.
    await enqueue(session, settings, owner, "referral.friend_joined",
                  {"name": customer.first_name, "points": settings.referral_referrer_points},
                  lane=Lane.TRANSACTIONAL, dedupe_key=f"referral:{referral.id}:joined")
    return Attribution("joined", owner, referral, new=True)


def _rejected(
    session: AsyncSession, customer: Customer, outcome: str, code: str | None, reason: str | None = None
) -> Attribution:
    record_event(session, "referral.rejected", customer_id=customer.id,
                 payload={"reason": reason or outcome, "code": code, "stage": "attribution"})
    return Attribution(outcome)


async def _code_owner(session: AsyncSession, code: str) -> Customer | None:
    return (await session.exec(
        select(Customer).join(ReferralCode, col(ReferralCode.customer_id) == col(Customer.id))
        .where(ReferralCode.code == code)
    )).first()


async def _referral_of(session: AsyncSession, referee_id: int, *, lock: bool = False) -> Referral | None:
    query = select(Referral).where(Referral.referee_id == referee_id)
    if lock:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def _is_ancestor(session: AsyncSession, customer_id: int, referrer: Customer) -> bool:
    """Is ``customer`` up the chain that brought ``referrer``? Then this code would close a cycle."""
    current: int | None = referrer.id
    for _ in range(_MAX_CHAIN):
        upline = (await session.exec(
            select(Referral.referrer_id).where(Referral.referee_id == current)
        )).first()
        if upline is None:
            return False
        if upline == customer_id:
            return True
        current = upline
    return True  # a chain this long is itself suspicious


def _party(customer: Customer) -> Party:
    assert customer.id is not None
    return Party(customer.id, customer.telegram_id, customer.phone, customer.store_customer_id)


def _orders_of(customer: Customer) -> list[object]:
    """Which orders are this customer's: by linked store record or by contact phone."""
    conditions: list[object] = []
    if customer.store_customer_id:
        conditions.append(Order.store_customer_id == customer.store_customer_id)
    if customer.phone:
        conditions.append(Order.contact_phone == customer.phone)
    return conditions


async def _orders_before(
    session: AsyncSession, customer: Customer, before: datetime, *, excluding: int | None = None
) -> int:
    conditions = _orders_of(customer)
    if not conditions:
        return 0
    query = select(func.count()).select_from(Order).where(
        or_(*conditions), col(Order.created_at) < before,  # type: ignore[arg-type]
        col(Order.status) != OrderStatus.CANCELLED.value,
    )
    if excluding is not None:
        query = query.where(Order.id != excluding)
    return int((await session.exec(query)).one())


async def customer_for_order(session: AsyncSession, order: Order) -> Customer | None:
    """The chat customer an order belongs to: linked store record first, then contact phone."""
    for column, value in ((Customer.store_customer_id, order.store_customer_id),
                          (Customer.phone, order.contact_phone)):
        if value:
            found = (await session.exec(select(Customer).where(column == value))).first()
            if found is not None:
                return found
    return None


# --- order facts -----------------------------------------------------------------------------


async def on_order_status(
    session: AsyncSession, settings: Settings, order: Order, status: str | None = None,
    *, customer: Customer | None = None,
) -> None:
    """React to an order fact from the store: earn or reverse order points, qualify or reverse a
    referral. Idempotent: the same event twice changes nothing the second time."""
    status = status or order.status
    customer = customer or await customer_for_order(session, order)
    if customer is None or customer.id is None or order.id is None:
        return
    reference = f"order:{order.id}"
    if status in DELIVERED:
        points = order.total_minor // 100 * settings.loyalty_points_per_unit
        if points > 0 and await ledger.add_entry(
            session, customer.id, LedgerKind.EARN, points, "order", reference
        ):
            record_event(session, "reward.issued", customer_id=customer.id,
                         payload={"points": points, "reason": "order", "order_id": order.id})
        await _qualify(session, settings, customer, order)
    elif status in CAME_BACK:
        taken = await ledger.reverse(session, customer.id, reference, "order_returned")
        if taken:
            record_event(session, "reward.reversed", customer_id=customer.id,
                         payload={"points": taken, "reason": "order_returned", "order_id": order.id})
        await _reverse_referral(session, settings, customer, order)


async def _qualify(session: AsyncSession, settings: Settings, referee: Customer, order: Order) -> None:
    assert referee.id is not None
    referral = await _referral_of(session, referee.id, lock=True)
    if referral is None or referral.status != ReferralStatus.PENDING.value:
        return
    referrer = await session.get(Customer, referral.referrer_id)
    assert referrer is not None
    referral.order_id = order.id
    reason = await _fraud_reason(session, settings, referral, referrer, referee, order)
    if reason is not None:
        _decide(session, referral, ReferralStatus.REJECTED, reason)
        return
    window_start = referral.created_at - timedelta(hours=settings.referral_velocity_hours)
    joins = int((await session.exec(
        select(func.count()).select_from(Referral).where(
            Referral.referrer_id == referrer.id, col(Referral.created_at) > window_start,
            col(Referral.created_at) <= referral.created_at,
        )
    )).one())
    status, why = payout_decision(
        joins, settings.referral_velocity_max, await _paid_this_month(session, referrer),
        settings.referral_monthly_cap,
    )
    _decide(session, referral, ReferralStatus(status), why)
    if status != ReferralStatus.HELD.value:
        await _pay(session, settings, referral, referrer, referee, both=status == ReferralStatus.QUALIFIED)


async def _fraud_reason(
    session: AsyncSession, settings: Settings, referral: Referral, referrer: Customer,
    referee: Customer, order: Order,
) -> str | None:
    """The first rule the qualifying order breaks, or None. Phones, e-mails, addresses and store
    records are often known only now, so self-referral is checked again with everything the
    store's records hold about both people, the qualifying order included."""
    reason = self_referral(
        await _identity(session, settings, referrer),
        await _identity(session, settings, referee, also=order),
    )
    if reason is not None:
        return reason
    if await _orders_before(session, referee, referral.created_at, excluding=order.id):
        return "already_customer"
    if order.total_minor < settings.referral_min_order_minor:
        return "below_minimum"
    if await _rewarded_elsewhere(session, referee, referral):
        return "referee_already_rewarded"
    return None


async def _identity(
    session: AsyncSession, settings: Settings, customer: Customer, *, also: Order | None = None
) -> Party:
    """The customer's account plus what the store knows: their store record's phone and e-mail,
    and the contact phones, e-mails and delivery addresses of their orders (and of ``also``)."""
    orders: list[Order] = [also] if also is not None else []
    conditions = _orders_of(customer)
    if also is not None and also.store_customer_id:
        conditions.append(Order.store_customer_id == also.store_customer_id)
    if conditions:
        orders += (await session.exec(
            select(Order).where(or_(*conditions))  # type: ignore[arg-type]
            .order_by(col(Order.created_at).desc()).limit(_IDENTITY_ORDERS)
        )).all()
    record_ids = {customer.store_customer_id, *(o.store_customer_id for o in orders)} - {None}
    records = (await session.exec(
        select(StoreCustomer).where(col(StoreCustomer.id).in_(record_ids))
    )).all() if record_ids else []
    region = settings.orders_phone_region
    phones = {customer.phone, *(o.contact_phone for o in orders), *(r.phone for r in records)}
    emails = {*(o.contact_email for o in orders), *(r.email for r in records)}
    party = _party(customer)
    return replace(
        party,
        store_customer_id=customer.store_customer_id or (also.store_customer_id if also else None),
        phones=frozenset(p for p in (normalize_phone(raw, region) for raw in phones if raw) if p),
        emails=frozenset(e for e in map(normalize_email, emails) if e),
        # Pickup orders name no home: a store's address there would match every pickup customer.
        addresses=frozenset(a for a in (normalize_address(o.delivery_address) for o in orders
                                        if o.delivery_method != "pickup") if a),
    )


async def _rewarded_elsewhere(session: AsyncSession, referee: Customer, referral: Referral) -> bool:
    """One reward per person ever: another account with the same phone or store record got one."""
    same_person = []
    if referee.phone:
        same_person.append(Customer.phone == referee.phone)
    if referee.store_customer_id:
        same_person.append(Customer.store_customer_id == referee.store_customer_id)
    if not same_person:
        return False
    found = await session.exec(
        select(Referral.id).join(Customer, col(Customer.id) == col(Referral.referee_id)).where(
            or_(*same_person), Referral.id != referral.id,  # type: ignore[arg-type]
            col(Referral.status).in_((*PAID_STATUSES, ReferralStatus.REVERSED.value)),
        )
    )
    return found.first() is not None


async def _paid_this_month(session: AsyncSession, referrer: Customer) -> int:
    now = utcnow()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return int((await session.exec(
        select(func.count()).select_from(Referral).where(
            Referral.referrer_id == referrer.id, Referral.status == ReferralStatus.QUALIFIED.value,
            col(Referral.decided_at) >= month_start,
        )
    )).one())


def _decide(session: AsyncSession, referral: Referral, status: ReferralStatus, reason: str | None) -> None:
    referral.status, referral.reason, referral.decided_at = status.value, reason, utcnow()
    session.add(referral)
    event = {
        ReferralStatus.QUALIFIED: "referral.qualified", ReferralStatus.CAPPED: "referral.qualified",
        ReferralStatus.HELD: "referral.held", ReferralStatus.REVERSED: "referral.reversed",
    }.get(status, "referral.rejected")
    record_event(session, event, customer_id=referral.referee_id,
                 payload={"referral_id": referral.id, "reason": reason, "status": status.value})


async def _pay(
    session: AsyncSession, settings: Settings, referral: Referral, referrer: Customer,
    referee: Customer, *, both: bool,
) -> None:
    """The double-sided reward: a welcome bonus (points and/or a voucher) for the newcomer, points
    for the referrer, each held as a pending reward until the qualifying order can no longer be
    returned. Each part is written once, however often the store repeats its event."""
    order = await session.get(Order, referral.order_id) if referral.order_id is not None else None
    available_at = await _return_window_end(session, settings, order)
    sides = [(referee, settings.referral_referee_points, settings.referral_referee_voucher_minor, "referee")]
    if both:
        sides.append((referrer, settings.referral_referrer_points, 0, "referrer"))
    for customer, points, voucher_minor, side in sides:
        if points <= 0 and voucher_minor <= 0:
            continue
        inserted = await session.exec(
            insert_ignoring_conflicts(session, ReferralReward).values(
                referral_id=referral.id, customer_id=customer.id, side=side, points=points,
                voucher_minor=voucher_minor, status=RewardStatus.PENDING.value,
                available_at=available_at, created_at=utcnow(),
            ).returning(col(ReferralReward.id))
        )
        if inserted.first() is not None:
            record_event(session, "reward.pending", customer_id=customer.id, payload={
                "points": points, "voucher_minor": voucher_minor, "reason": f"referral_{side}",
                "referral_id": referral.id, "available_at": available_at.isoformat(),
            })
    if available_at <= utcnow():  # e.g. staff approved a held referral after the window
        await release_due_rewards(session, settings, referral_id=referral.id)


async def _return_window_end(session: AsyncSession, settings: Settings, order: Order | None) -> datetime:
    """When the qualifying order can no longer come back: its delivery plus the longest return
    window of its items' categories (the after-sales policy, ``TOUCHPOINT_RETURN_WINDOW_DAYS``)."""
    delivered_at = (order.delivered_at if order is not None else None) or utcnow()
    rules = PolicyRules(settings.return_window_days, dict(settings.return_window_days_by_category))
    days = settings.return_window_days
    if order is not None and order.id is not None:
        categories = (await session.exec(
            select(Product.category_id).join(OrderItem, col(OrderItem.sku) == col(Product.sku))
            .where(OrderItem.order_id == order.id)
        )).all()
        if categories:
            days = max(rules.window_days(category) for category in categories)
    return delivered_at + timedelta(days=days)


async def release_due_rewards(
    session: AsyncSession, settings: Settings, *, now: datetime | None = None, referral_id: int | None = None,
) -> int:
    """Pending rewards whose return window has ended become spendable: points to the ledger, the
    voucher issued, the customer told. Each reward is claimed with a conditional update, so
    several processes (or a repeated run) credit it once. Returns how many were released."""
    now = now or utcnow()
    query = select(ReferralReward).where(
        ReferralReward.status == RewardStatus.PENDING.value, col(ReferralReward.available_at) <= now,
    ).order_by(col(ReferralReward.id))
    if referral_id is not None:
        query = query.where(ReferralReward.referral_id == referral_id)
    released = 0
    for reward in (await session.exec(query)).all():
        if not await _settle(session, reward, RewardStatus.AVAILABLE, now):
            continue  # another process released (or a return cancelled) it since we looked
        await _credit(session, settings, reward)
        released += 1
    return released


async def _settle(session: AsyncSession, reward: ReferralReward, status: RewardStatus, now: datetime) -> bool:
    """Move a pending reward on, if it is still pending (one process wins a race)."""
    claimed = await session.exec(  # type: ignore[call-overload]
        update(ReferralReward)
        .where(col(ReferralReward.id) == reward.id, col(ReferralReward.status) == RewardStatus.PENDING.value)
        .values(status=status.value, decided_at=now)
    )
    return bool(claimed.rowcount)


async def _credit(session: AsyncSession, settings: Settings, reward: ReferralReward) -> None:
    """A released reward into the ledger (and the voucher issued), and the customer told."""
    referral = await session.get(Referral, reward.referral_id)
    customer = await session.get(Customer, reward.customer_id)
    if referral is None or customer is None or customer.id is None:
        return
    other_id = referral.referrer_id if reward.side == "referee" else referral.referee_id
    other = await session.get(Customer, other_id)
    reference = f"referral:{referral.id}:{reward.side}"
    params: dict[str, object] = {"points": 0, "name": other.first_name if other else ""}
    if reward.points > 0 and await ledger.add_entry(
        session, customer.id, LedgerKind.EARN, reward.points, f"referral_{reward.side}", reference
    ):
        params["points"] = reward.points
        record_event(session, "reward.issued", customer_id=customer.id, payload={
            "points": reward.points, "reason": f"referral_{reward.side}", "referral_id": referral.id})
    if reward.voucher_minor > 0:
        voucher = await _issue_voucher(session, settings, customer, reference, reward.voucher_minor)
        if voucher is not None:
            params.update(voucher=voucher.code, amount_minor=voucher.amount_minor, currency=voucher.currency)
            record_event(session, "reward.issued", customer_id=customer.id, payload={
                "voucher_minor": voucher.amount_minor, "reason": "referral_referee_voucher",
                "referral_id": referral.id,
            })
    if params["points"] or "voucher" in params:
        # A reward is an account fact (transactional), but it still waits for the morning.
        template = "referral.welcome_reward" if reward.side == "referee" else "referral.reward_earned"
        await enqueue(session, settings, customer, template, params,
                      lane=Lane.TRANSACTIONAL, dedupe_key=reference)


async def _issue_voucher(
    session: AsyncSession, settings: Settings, customer: Customer, reference: str, amount_minor: int,
) -> Voucher | None:
    """The voucher earned by ``reference``, issued once; None if it was issued before."""
    for _ in range(10):
        if (await session.exec(select(Voucher.id).where(Voucher.reference == reference))).first():
            return None
        inserted = await session.exec(
            insert_ignoring_conflicts(session, Voucher).values(
                code=new_code(VOUCHER_CODE_LENGTH), customer_id=customer.id, reference=reference,
                amount_minor=amount_minor, currency=settings.referral_currency,
                status="issued", created_at=utcnow(),
            ).returning(col(Voucher.id))
        )
        voucher_id = inserted.first()
        if voucher_id is not None:
            return await session.get(Voucher, voucher_id)
    raise RuntimeError("could not allocate a voucher code")


async def vouchers_of(session: AsyncSession, customer_id: int) -> list[Voucher]:
    """Issued (not void) vouchers, newest first: what the store's checkout may accept."""
    rows = await session.exec(
        select(Voucher).where(Voucher.customer_id == customer_id, Voucher.status == "issued")
        .order_by(col(Voucher.id).desc())
    )
    return list(rows.all())


async def _reverse_referral(
    session: AsyncSession, settings: Settings, referee: Customer, order: Order
) -> None:
    assert referee.id is not None
    referral = await _referral_of(session, referee.id, lock=True)
    if referral is None or referral.order_id != order.id:
        return
    if referral.status == ReferralStatus.HELD.value:
        _decide(session, referral, ReferralStatus.REJECTED, "order_returned")
        return
    if await _cancel_pending(session, settings, referral, referee):
        return
    delivered_at = order.delivered_at or referral.decided_at or utcnow()
    if referral.status not in PAID_STATUSES or (
        utcnow() > delivered_at + timedelta(days=settings.referral_return_window_days)
    ):
        return
    _decide(session, referral, ReferralStatus.REVERSED, "order_returned")
    for customer_id, side in ((referee.id, "referee"), (referral.referrer_id, "referrer")):
        reference = f"referral:{referral.id}:{side}"
        if side == "referee":
            await _void_voucher(session, customer_id, referral, reference)
        taken = await ledger.reverse(session, customer_id, reference, "order_returned")
        if not taken:
            continue
        record_event(session, "reward.reversed", customer_id=customer_id,
                     payload={"points": taken, "reason": "order_returned", "referral_id": referral.id})
        if side == "referrer":
            referrer = await session.get(Customer, customer_id)
            assert referrer is not None
            await enqueue(session, settings, referrer, "referral.reward_reversed",
                          {"points": taken, "name": referee.first_name},
                          lane=Lane.TRANSACTIONAL, dedupe_key=f"referral:{referral.id}:reversed")


async def _cancel_pending(
    session: AsyncSession, settings: Settings, referral: Referral, referee: Customer
) -> bool:
    """The qualifying order came back while its rewards were still pending: cancel them (nothing
    was ever spendable) and reverse the referral. False if nothing was pending."""
    pending = (await session.exec(select(ReferralReward).where(
        ReferralReward.referral_id == referral.id, ReferralReward.status == RewardStatus.PENDING.value,
    ))).all()
    cancelled: list[ReferralReward] = []
    for reward in pending:
        if await _settle(session, reward, RewardStatus.CANCELLED, utcnow()):
            cancelled.append(reward)
    if not cancelled:
        return False
    _decide(session, referral, ReferralStatus.REVERSED, "order_returned")
    for reward in cancelled:
        record_event(session, "reward.cancelled", customer_id=reward.customer_id, payload={
            "points": reward.points, "voucher_minor": reward.voucher_minor, "reason": "order_returned",
            "referral_id": referral.id,
        })
        if reward.side == "referrer" and reward.points > 0:
            referrer = await session.get(Customer, reward.customer_id)
            if referrer is not None:
                await enqueue(session, settings, referrer, "referral.reward_cancelled",
                              {"points": reward.points, "name": referee.first_name},
                              lane=Lane.TRANSACTIONAL, dedupe_key=f"referral:{referral.id}:reversed")
    return True


async def _void_voucher(session: AsyncSession, customer_id: int, referral: Referral, reference: str) -> None:
    voucher = (await session.exec(
        select(Voucher).where(Voucher.reference == reference, Voucher.status == "issued")
    )).first()
    if voucher is None:
        return
    voucher.status, voucher.voided_at = "void", utcnow()
    session.add(voucher)
    record_event(session, "reward.reversed", customer_id=customer_id, payload={
        "voucher_minor": voucher.amount_minor, "reason": "order_returned", "referral_id": referral.id,
    })


# --- staff review ------------------------------------------------------------------------------


async def held_referrals(session: AsyncSession) -> list[Referral]:
    rows = await session.exec(
        select(Referral).where(Referral.status == ReferralStatus.HELD.value).order_by(col(Referral.id))
    )
    return list(rows.all())


async def review(session: AsyncSession, settings: Settings, referral_id: int, *, approve: bool) -> Referral:
    """Staff decide a held referral: approve pays it (the monthly cap still applies), reject ends it."""
    referral = (await session.exec(
        select(Referral).where(Referral.id == referral_id).with_for_update()
    )).first()
    if referral is None or referral.status != ReferralStatus.HELD.value:
        raise LookupError(f"referral {referral_id} is not waiting for review")
    if not approve:
        _decide(session, referral, ReferralStatus.REJECTED, "staff_rejected")
        return referral
    referrer = await session.get(Customer, referral.referrer_id)
    referee = await session.get(Customer, referral.referee_id)
    assert referrer is not None and referee is not None
    capped = await _paid_this_month(session, referrer) >= settings.referral_monthly_cap
    status = ReferralStatus.CAPPED if capped else ReferralStatus.QUALIFIED
    _decide(session, referral, status, "monthly_cap" if capped else "staff_approved")
    await _pay(session, settings, referral, referrer, referee, both=not capped)
    return referral


# --- what the customer sees ------------------------------------------------------------------


async def pending_rewards(session: AsyncSession, customer_id: int) -> tuple[int, datetime | None]:
    """Referral points held for the customer (either side) and when the last of them frees up."""
    points, until = (await session.exec(
        select(func.coalesce(func.sum(ReferralReward.points), 0), func.max(ReferralReward.available_at))
        .where(ReferralReward.customer_id == customer_id, ReferralReward.status == RewardStatus.PENDING.value)
    )).one()
    return int(points), until


async def invite_stats(session: AsyncSession, customer: Customer) -> InviteStats:
    assert customer.id is not None
    rows = (await session.exec(
        select(Referral.status, func.count()).where(Referral.referrer_id == customer.id)
        .group_by(col(Referral.status))
    )).all()
    by_status = {status: int(count) for status, count in rows}
    earned = int((await session.exec(
        select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
            LedgerEntry.customer_id == customer.id,
            col(LedgerEntry.reference).like("referral:%:referrer"),
        )
    )).one())
    pending_points, pending_until = await pending_rewards(session, customer.id)
    return InviteStats(
        pending_points=pending_points, pending_until=pending_until,
        joined=sum(by_status.values()),
        pending=by_status.get(ReferralStatus.PENDING.value, 0) + by_status.get(ReferralStatus.HELD.value, 0),
        rewarded=by_status.get(ReferralStatus.QUALIFIED.value, 0),
        earned_points=earned,
        balance=await ledger.balance(session, customer.id),
    )
