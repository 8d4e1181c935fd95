"""Signed store events → referrals and loyalty points, in the events API's transaction."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any
from unittest.mock import ANY

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from tests.factories import make_customer
from touchpoint.config import load_settings
from touchpoint.customers.models import BehaviourEvent, Customer
from touchpoint.db import Database
from touchpoint.events_api.app import create_events_app
from touchpoint.events_api.signing import signed_headers
from touchpoint.referrals import ledger
from touchpoint.referrals.models import Referral
from touchpoint.referrals.service import attribute_start, code_for, pending_rewards

SECRET = "wiring-secret"
SETTINGS = load_settings(_env_file=None, referral_referrer_points=500, referral_referee_points=300,
                         referral_min_order_minor=2000, loyalty_points_per_unit=1)


@pytest.fixture
async def store(db: Database) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_events_app(SETTINGS, db, secret=SECRET))) as client:
        yield client


async def send(client: TestClient[Any, Any], *events: dict[str, Any]) -> None:
    body = json.dumps({"events": list(events)}).encode()
    response = await client.post("/api/v1/events", data=body,
                                 headers=signed_headers(SECRET, int(time.time()), body))
    assert response.status == 200, await response.text()


def status(event_id: str, value: str) -> dict[str, Any]:
    return {"id": event_id, "type": "order.status_changed", "data": {"number": "WR-1001", "status": value}}


async def balances(db: Database, *people: Customer) -> list[int]:
    async with db.session() as session:
        return [await ledger.balance(session, p.id or 0) for p in people]


async def test_first_order_delivered_holds_both_rewards_and_a_refund_cancels_them(
    db: Database, store: TestClient[Any, Any]
) -> None:
    await send(store, *({"id": f"cu-{n}", "type": "customer.upserted", "data": {"id": n, "name": "X"}}
                        for n in ("S-ref", "S-new")))
    async with db.session() as session:
        referrer = await make_customer(session, 9001, phone="+4915100000001", store_customer_id="S-ref")
        referee = await make_customer(session, 9002, phone="+4915100000002", store_customer_id="S-new")
        joined = await attribute_start(session, SETTINGS, referee, await code_for(session, referrer))
        assert joined.outcome == "joined"

    await send(store, {"id": "o-1", "type": "order.created", "data": {
        "number": "WR-1001", "customer_id": "S-new",
        "items": [{"sku": "ESP-001", "quantity": 1, "unit_price_minor": 5000}]}})
    await send(store, status("s-1", "shipped") | {"data": {"number": "WR-1001", "status": "shipped",
                                                            "carrier": "DHL", "tracking_number": "J1"}})
    assert await balances(db, referrer, referee) == [0, 0]

    await send(store, status("s-2", "delivered"))
    # Referral rewards are pending until the order's return window ends; order points count at once.
    assert await balances(db, referrer, referee) == [0, 50]
    await send(store, status("s-2", "delivered"))  # a repeated delivery changes nothing
    async with db.session() as session:
        referral = (await session.exec(select(Referral))).one()
        assert referral.status == "qualified"
        held = [await pending_rewards(session, c.id or 0) for c in (referrer, referee)]
        assert held == [(500, ANY), (300, ANY)]

    await send(store, status("s-3", "refunded"))
    assert await balances(db, referrer, referee) == [0, 0]
    async with db.session() as session:
        assert [(await pending_rewards(session, c.id or 0))[0] for c in (referrer, referee)] == [0, 0]
    async with db.session() as session:
        referral = (await session.exec(select(Referral))).one()
        assert referral.status == "reversed"


async def test_customer_upserted_carries_marketing_consent_to_linked_chats(
    db: Database, store: TestClient[Any, Any]
) -> None:
    async with db.session() as session:
        first = await make_customer(session, 9101, store_customer_id="S-c", marketing_consent=False)
        second = await make_customer(session, 9102, store_customer_id="S-c", marketing_consent=False)
        other = await make_customer(session, 9103, store_customer_id="S-o", marketing_consent=False)

    async def consents() -> list[bool]:
        async with db.session() as session:
            return [(await session.get(Customer, c.id)).marketing_consent for c in (first, second, other)]

    upsert = {"type": "customer.upserted", "data": {"id": "S-c", "name": "C"}}
    await send(store, {"id": "u-1", **upsert})  # no consent field: nothing changes
    assert await consents() == [False, False, False]
    await send(store, {"id": "u-2", **upsert, "data": {**upsert["data"], "marketing_consent": True}})
    assert await consents() == [True, True, False]
    await send(store, {"id": "u-3", **upsert, "data": {**upsert["data"], "marketing_consent": False}})
    assert await consents() == [False, False, False]
    async with db.session() as session:
        rows = (await session.exec(select(BehaviourEvent).where(BehaviourEvent.type == "consent.marketing")
                                   .order_by(BehaviourEvent.id))).all()
        assert [(r.customer_id, r.payload) for r in rows] == [
            (first.id, {"granted": True, "via": "store"}), (second.id, {"granted": True, "via": "store"}),
            (first.id, {"granted": False, "via": "store"}), (second.id, {"granted": False, "via": "store"})]
