"""`touchpoint referrals …` against a real database, as staff would run it."""

from __future__ import annotations

import asyncio
import os
import sys
from unittest.mock import ANY

from sqlmodel import select

from tests.factories import make_customer
from touchpoint.clock import utcnow
from touchpoint.db import Database
from touchpoint.referrals import ledger
from touchpoint.referrals.models import Referral, ReferralCode
from touchpoint.referrals.service import pending_rewards


async def touchpoint(database_url: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from touchpoint.cli import app; app()", *args,
        env={**os.environ, "TOUCHPOINT_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def test_staff_approve_a_held_referral(sqlite_db: Database) -> None:
    async with sqlite_db.session() as session:
        referrer = await make_customer(session, 501)
        referee = await make_customer(session, 502)
        session.add(ReferralCode(code="K7XM2Q", customer_id=referrer.id, created_at=utcnow()))
        await session.flush()
        held = Referral(code="K7XM2Q", referrer_id=referrer.id, referee_id=referee.id, status="held",
                        reason="velocity", created_at=utcnow())
        session.add(held)
        await session.flush()
        held_id = held.id

    code, output = await touchpoint(sqlite_db.url, "referrals", "held")
    assert code == 0 and f"#{held_id}" in output
    code, output = await touchpoint(sqlite_db.url, "referrals", "approve", str(held_id))
    assert (code, output.strip()) == (0, f"#{held_id}: qualified (staff_approved)")
    code, output = await touchpoint(sqlite_db.url, "referrals", "approve", str(held_id))
    assert code == 1 and "not waiting for review" in output
    code, output = await touchpoint(sqlite_db.url, "referrals", "points", "501")
    # Approved, yet held until a return is no longer possible: pending, not spendable.
    assert code == 0 and output.startswith("balance 0\npending 500 (spendable from ")

    async with sqlite_db.session() as session:
        assert (await session.exec(select(Referral.status))).one() == "qualified"
        assert await ledger.balance(session, referee.id) == 0
        assert await pending_rewards(session, referee.id) == (300, ANY)
