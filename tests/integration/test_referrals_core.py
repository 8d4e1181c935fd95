"""Referral core against a real database: attribution, each fraud rule, rewards and reversals."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.factories import make_customer
from touchpoint.clock import utcnow
from touchpoint.config import Settings, load_settings
from touchpoint.customers.models import BehaviourEvent, Customer
from touchpoint.db import Database
from touchpoint.i18n import get_translator
from touchpoint.messaging.models import OutboxMessage
from touchpoint.messaging.templates import render
from touchpoint.orders.models import Order
from touchpoint.referrals import ledger
from touchpoint.referrals.models import LedgerEntry, Referral, ReferralReward
from touchpoint.referrals.service import (
    attribute_start,
    code_for,
    enter_code,
    held_referrals,
    invite_stats,
    on_order_status,
    release_due_rewards,
    review,
    vouchers_of,
)
from touchpoint.wiring import load_all_templates

load_all_templates()
SETTINGS = load_settings(_env_file=None, referral_referrer_points=500, referral_referee_points=300,
                         referral_min_order_minor=2000, loyalty_points_per_unit=1)
_order_numbers = iter(range(1, 10_000))


async def order(session: AsyncSession, buyer: Customer, total_minor: int = 5000, **fields: Any) -> Order:
    now = utcnow()
    values: dict[str, Any] = dict(
        number=f"A{next(_order_numbers):05d}", store_customer_id=buyer.store_customer_id,
        contact_phone=buyer.phone, total_minor=total_minor, created_at=now, updated_at=now,
    )
    values.update(fields)
    placed = Order(**values)
    session.add(placed)
    await session.flush()
    return placed


async def deliver(
    session: AsyncSession, placed: Order, settings: Settings = SETTINGS, buyer: Customer | None = None
) -> None:
    placed.status, placed.delivered_at = "delivered", utcnow()
    session.add(placed)
    await on_order_status(session, settings, placed, "delivered", customer=buyer)


async def pair(
    session: AsyncSession, referee_fields: dict[str, Any] | None = None
) -> tuple[Customer, Customer]:
    """A referrer with a code and a newcomer who opened their link (the referral is pending)."""
    referrer = await make_customer(session, 1000 + next(_order_numbers), phone="+4915100000001",
                                   store_customer_id=f"S-ref-{next(_order_numbers)}")
    fields = {"phone": "+4915100000002", "store_customer_id": f"S-new-{next(_order_numbers)}"}
    fields.update(referee_fields or {})
    referee = await make_customer(session, 2000 + next(_order_numbers), **fields)
    result = await attribute_start(session, SETTINGS, referee, await code_for(session, referrer))
    assert result.outcome == "joined", result
    return referrer, referee


def after_return_window(settings: Settings = SETTINGS) -> datetime:
    days = max(settings.return_window_days, settings.referral_return_window_days)
    return utcnow() + timedelta(days=days + 1)


async def settle(session: AsyncSession, settings: Settings = SETTINGS) -> int:
    """The qualifying orders' return windows pass and the scheduled release job runs."""
    return await release_due_rewards(session, settings, now=after_return_window(settings))


async def use_code(session: AsyncSession, who: Customer, whose: Customer) -> str:
    """``who`` types ``whose`` code; returns the outcome."""
    return (await enter_code(session, SETTINGS, who, await code_for(session, whose))).outcome


async def referral_of(session: AsyncSession, referee: Customer) -> Referral:
    return (await session.exec(select(Referral).where(Referral.referee_id == referee.id))).one()


async def events(session: AsyncSession, event_type: str) -> list[dict[str, Any]]:
    rows = await session.exec(select(BehaviourEvent).where(BehaviourEvent.type == event_type))
    return [row.payload for row in rows.all()]


async def test_code_is_stable_per_customer(db: Database) -> None:
    async with db.session() as session:
        someone = await make_customer(session, 11)
        first = await code_for(session, someone)
        assert await code_for(session, someone) == first


async def test_link_join_then_delivered_order_rewards_both_sides(db: Database) -> None:
    async with db.session() as session:
        referrer, referee = await pair(session)
        assert (await referral_of(session, referee)).status == "pending"
        first = await order(session, referee, total_minor=4550)
        await deliver(session, first)
        await deliver(session, first)  # the store sent the event twice: nothing changes

        referral = await referral_of(session, referee)
        assert (referral.status, referral.reason, referral.order_id) == (
            "qualified", "first_order_delivered", first.id)
        # Pending until the order can no longer be returned: nothing spendable yet.
        assert await ledger.balance(session, referrer.id) == 0
        assert await ledger.balance(session, referee.id) == 45  # order points only
        stats = await invite_stats(session, referrer)
        assert (stats.pending_points, stats.earned_points, stats.balance) == (500, 0, 0)
        assert stats.pending_until is not None and stats.pending_until > utcnow() + timedelta(days=29)

        assert await settle(session) == 2
        assert await settle(session) == 0  # the job ran again: nothing twice
        assert await ledger.balance(session, referrer.id) == 500
        assert await ledger.balance(session, referee.id) == 300 + 45  # welcome + order points
        stats = await invite_stats(session, referrer)
        assert (stats.joined, stats.pending, stats.rewarded, stats.earned_points) == (1, 0, 1, 500)
        assert stats.pending_points == 0
        queued = (await session.exec(select(OutboxMessage.template, OutboxMessage.customer_id)
                                     .order_by(col(OutboxMessage.id)))).all()
        assert queued == [("referral.friend_joined", referrer.id), ("referral.welcome_reward", referee.id),
                          ("referral.reward_earned", referrer.id)]
        assert [e["reason"] for e in await events(session, "reward.issued")] == [
            "order", "referral_referee", "referral_referrer"]
        assert await events(session, "referral.qualified")


async def test_return_within_window_reverses_both_rewards(db: Database) -> None:
    async with db.session() as session:
        referrer, referee = await pair(session)
        first = await order(session, referee)
        await deliver(session, first)
        await on_order_status(session, SETTINGS, first, "returned")
        await on_order_status(session, SETTINGS, first, "refunded")  # a second fact, no second reversal

        assert (await referral_of(session, referee)).status == "reversed"
        assert await settle(session) == 0  # cancelled rewards never become spendable
        assert await ledger.balance(session, referrer.id) == 0
        assert await ledger.balance(session, referee.id) == 0
        kinds = (await session.exec(select(LedgerEntry.kind, LedgerEntry.points)
                                    .where(LedgerEntry.customer_id == referrer.id))).all()
        assert kinds == []  # pending points were never in the ledger
        statuses = (await session.exec(select(ReferralReward.side, ReferralReward.status)
                                       .order_by(col(ReferralReward.side)))).all()
        assert statuses == [("referee", "cancelled"), ("referrer", "cancelled")]
        assert (await session.exec(select(OutboxMessage).where(
            OutboxMessage.template == "referral.reward_cancelled"))).one().customer_id == referrer.id


async def test_return_after_window_keeps_referral_reward(db: Database) -> None:
    async with db.session() as session:
        referrer, referee = await pair(session)
        first = await order(session, referee)
        await deliver(session, first)
    with time_machine.travel(after_return_window()):
        async with db.session() as session:
            assert await release_due_rewards(session, SETTINGS) == 2
            await on_order_status(session, SETTINGS, first, "returned", customer=referee)
            assert (await referral_of(session, referee)).status == "qualified"
            assert await ledger.balance(session, referrer.id) == 500


# --- each fraud rule ---------------------------------------------------------------------------


async def test_own_code_is_refused(db: Database) -> None:
    async with db.session() as session:
        someone = await make_customer(session, 21)
        assert await use_code(session, someone, someone) == "own"
        assert [e["reason"] for e in await events(session, "referral.rejected")] == ["own_code"]


async def test_same_phone_at_attribution_is_self_referral(db: Database) -> None:
    async with db.session() as session:
        referrer = await make_customer(session, 22, phone="+4915100000009")
        twin = await make_customer(session, 23, phone="+4915100000009")
        result = await attribute_start(session, SETTINGS, twin, await code_for(session, referrer))
        assert result.outcome == "own"
        assert [e["reason"] for e in await events(session, "referral.rejected")] == ["same_phone"]


async def test_same_phone_found_on_the_order_rejects_at_qualification(db: Database) -> None:
    async with db.session() as session:
        referrer, referee = await pair(session, {"phone": None})
        # The newcomer's first order is paid with the referrer's phone: the same person.
        await deliver(session, await order(session, referee, contact_phone=referrer.phone))
        referral = await referral_of(session, referee)
        assert (referral.status, referral.reason) == ("rejected", "same_phone")
        assert await ledger.balance(session, referrer.id) == 0


async def test_same_linked_store_customer_is_self_referral(db: Database) -> None:
    async with db.session() as session:
        referrer, referee = await pair(session, {"phone": None, "store_customer_id": None})
        referee.store_customer_id = referrer.store_customer_id  # linked later, to the same store record
        session.add(referee)
        await deliver(session, await order(session, referee), buyer=referee)
        referral = await referral_of(session, referee)
        assert (referral.status, referral.reason) == ("rejected", "same_store_customer")


async def test_existing_customer_cannot_be_referred(db: Database) -> None:
    async with db.session() as session:
        referrer = await make_customer(session, 31)
        old_hand = await make_customer(session, 32, store_customer_id="S-old")
        await order(session, old_hand)
        result = await enter_code(session, SETTINGS, old_hand, await code_for(session, referrer))
        assert result.outcome == "already_customer"


async def test_order_placed_before_the_click_rejects_at_qualification(db: Database) -> None:
    async with db.session() as session:
        referrer = await make_customer(session, 33)
        referee = await make_customer(session, 34)  # not yet linked: the old order is found later
        earlier = await order(session, referee, store_customer_id="S-34",
                              created_at=utcnow() - timedelta(days=30))
        assert await use_code(session, referee, referrer) == "joined"
        referee.store_customer_id = "S-34"
        session.add(referee)
        await deliver(session, await order(session, referee))
        assert earlier.id
        assert (await referral_of(session, referee)).reason == "already_customer"


async def test_code_too_long_after_joining_is_too_late(db: Database) -> None:
    async with db.session() as session:
        referrer = await make_customer(session, 35)
        veteran = await make_customer(session, 36, created_at=utcnow() - timedelta(days=30))
        assert await use_code(session, veteran, referrer) == "too_late"


async def test_referral_cycle_is_refused(db: Database) -> None:
    async with db.session() as session:
        a = await make_customer(session, 41)
        b = await make_customer(session, 42)
        c = await make_customer(session, 43)
        assert await use_code(session, b, a) == "joined"
        assert await use_code(session, c, b) == "joined"
        assert await use_code(session, a, c) == "cycle"


async def test_second_code_for_the_same_referee_is_refused(db: Database) -> None:
    async with db.session() as session:
        first = await make_customer(session, 54)
        second = await make_customer(session, 55)
        newcomer = await make_customer(session, 56)
        assert await use_code(session, newcomer, first) == "joined"
        again = await enter_code(session, SETTINGS, newcomer, await code_for(session, first))
        assert (again.outcome, again.new) == ("joined", False)
        assert await use_code(session, newcomer, second) == (
            "already_referred")
        assert len((await session.exec(select(OutboxMessage))).all()) == 1  # one "friend joined"


async def test_one_reward_per_referee_ever_across_accounts(db: Database) -> None:
    async with db.session() as session:
        # The same person joins twice, with two Telegram accounts and two friends' codes…
        _, referee = await pair(session, {"phone": None})
        _, again = await pair(session, {"phone": None, "store_customer_id": referee.store_customer_id})
        # …and orders from both: only the first delivered order is rewarded.
        await deliver(session, await order(session, referee), buyer=referee)
        await deliver(session, await order(session, again), buyer=again)
        assert (await referral_of(session, referee)).status == "qualified"
        referral = await referral_of(session, again)
        assert (referral.status, referral.reason) == ("rejected", "referee_already_rewarded")


async def test_first_order_below_minimum_does_not_qualify(db: Database) -> None:
    async with db.session() as session:
        referrer, referee = await pair(session)
        await deliver(session, await order(session, referee, total_minor=1999))
        assert (await referral_of(session, referee)).reason == "below_minimum"
        assert await ledger.balance(session, referrer.id) == 0


async def test_monthly_cap_pays_only_the_newcomer(db: Database) -> None:
    settings = SETTINGS.model_copy(update={"referral_monthly_cap": 1, "referral_velocity_max": 10})
    async with db.session() as session:
        referrer = await make_customer(session, 61)
        code = await code_for(session, referrer)
        friends = [await make_customer(session, 62 + n, phone=f"+49151000006{n}") for n in range(2)]
        for friend in friends:
            assert (await enter_code(session, settings, friend, code)).outcome == "joined"
            await deliver(session, await order(session, friend), settings)
        statuses = [((r := await referral_of(session, f)).status, r.reason) for f in friends]
        assert statuses == [("qualified", "first_order_delivered"), ("capped", "monthly_cap")]
        await settle(session, settings)
        assert await ledger.balance(session, referrer.id) == 500
        assert await ledger.balance(session, friends[1].id) == 300 + 50


async def test_velocity_holds_for_review_then_staff_approve(db: Database) -> None:
    settings = SETTINGS.model_copy(update={"referral_velocity_max": 2})
    async with db.session() as session:
        referrer = await make_customer(session, 71)
        code = await code_for(session, referrer)
        friends = [await make_customer(session, 72 + n, phone=f"+49151000007{n}") for n in range(3)]
        for friend in friends:
            await enter_code(session, settings, friend, code)
        for friend in friends:
            await deliver(session, await order(session, friend), settings)
        statuses = [(await referral_of(session, f)).status for f in friends]
        assert statuses == ["qualified", "qualified", "held"]
        await settle(session, settings)
        assert await ledger.balance(session, referrer.id) == 1000
        held = await held_referrals(session)
        assert [r.referee_id for r in held] == [friends[2].id]

        approved = await review(session, settings, held[0].id, approve=True)
        assert (approved.status, approved.reason) == ("qualified", "staff_approved")
        await settle(session, settings)
        assert await ledger.balance(session, referrer.id) == 1500
        with pytest.raises(LookupError):
            await review(session, settings, held[0].id, approve=True)
        assert await events(session, "referral.held")


async def test_order_points_earned_and_reversed(db: Database) -> None:
    async with db.session() as session:
        buyer = await make_customer(session, 81, store_customer_id="S-81")
        placed = await order(session, buyer, total_minor=12_345)
        await on_order_status(session, SETTINGS, placed, "delivered")
        assert await ledger.balance(session, buyer.id) == 123
        await on_order_status(session, SETTINGS, placed, "returned")
        assert await ledger.balance(session, buyer.id) == 0
        entries = await ledger.recent(session, buyer.id)
        assert [(e.kind, e.points) for e in entries] == [("reverse", -123), ("earn", 123)]


# --- ledger under concurrency ------------------------------------------------------------------


async def test_concurrent_rewards_lose_no_update(db: Database) -> None:
    async with db.session() as session:
        holder = await make_customer(session, 91)
    assert holder.id is not None

    async def earn(reference: str) -> bool:
        async with db.session() as session:
            return await ledger.add_entry(session, holder.id, ledger.LedgerKind.EARN, 10, "test", reference)

    # 40 distinct rewards plus each one delivered a second time, all at once.
    results = await asyncio.gather(*(earn(f"r{n % 40}") for n in range(80)))
    assert sum(results) == 40
    async with db.session() as session:
        assert await ledger.balance(session, holder.id) == 400


async def test_concurrent_redemptions_never_overdraw(db: Database) -> None:
    if db.dialect == "sqlite":
        pytest.skip("SQLite runs one writer at a time; the row lock matters on PostgreSQL")
    async with db.session() as session:
        holder = await make_customer(session, 92)
        assert holder.id is not None
        await ledger.add_entry(session, holder.id, ledger.LedgerKind.EARN, 100, "test", "seed")

    async def spend(n: int) -> bool:
        async with db.session() as session:
            return await ledger.redeem(session, holder.id, 30, f"spend-{n}")

    results = await asyncio.gather(*(spend(n) for n in range(10)))
    assert sum(results) == 3
    async with db.session() as session:
        assert await ledger.balance(session, holder.id) == 10


async def test_welcome_voucher_issued_once_on_release_and_cancelled_by_a_return(db: Database) -> None:
    settings = SETTINGS.model_copy(update={"referral_referee_voucher_minor": 500})
    async with db.session() as session:
        _, referee = await pair(session)
        first = await order(session, referee)
        await deliver(session, first, settings)
        await deliver(session, first, settings)
        assert await vouchers_of(session, referee.id) == []  # held with the points
        await settle(session, settings)
        await settle(session, settings)
        vouchers = await vouchers_of(session, referee.id)
        assert [(v.amount_minor, v.currency, len(v.code)) for v in vouchers] == [(500, "EUR", 8)]
        welcome = (await session.exec(select(OutboxMessage).where(
            OutboxMessage.template == "referral.welcome_reward"))).one()
        rendered = render(get_translator(), "en", welcome.template, welcome.params)
        assert rendered.text == "\n\n".join([
            get_translator()("en", "referrals.notify.welcome_reward", name="Test", points=300),
            get_translator()("en", "referrals.notify.welcome_voucher", name="Test", voucher=vouchers[0].code,
                             amount="€5.00"),
        ])

        # A return within the window cancels a voucher that was still pending: never issued.
        _, other = await pair(session, {"phone": "+4915100000077"})
        second = await order(session, other)
        await deliver(session, second, settings)
        await on_order_status(session, settings, second, "returned")
        assert await settle(session, settings) == 0
        assert await vouchers_of(session, other.id) == []
        assert any(e["voucher_minor"] == 500 for e in await events(session, "reward.cancelled"))


async def test_friend_joined_at_night_waits_for_the_morning(db: Database) -> None:
    night = datetime(2026, 6, 1, 21, 30, tzinfo=UTC)  # 23:30 in Berlin
    with time_machine.travel(night):
        async with db.session() as session:
            referrer, _ = await pair(session)
            queued = (await session.exec(select(OutboxMessage))).one()
    assert (queued.template, queued.customer_id, queued.reason) == (
        "referral.friend_joined", referrer.id, "quiet_hours")
    assert queued.due_at == datetime(2026, 6, 2, 7, tzinfo=UTC)  # 09:00 in Berlin
