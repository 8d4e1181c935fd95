"""Property: whatever happens to a customer's points, the balance is the ledger sum and matches a model."""

from __future__ import annotations

from itertools import count

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import select

from tests.factories import make_customer
from touchpoint.db import Database
from touchpoint.referrals import ledger
from touchpoint.referrals.models import LedgerEntry, LedgerKind

references = st.sampled_from(["a", "b", "c", "d"])
operations = st.lists(st.one_of(
    st.tuples(st.just("earn"), references, st.integers(1, 500)),
    st.tuples(st.just("reverse"), references, st.just(0)),
    st.tuples(st.just("redeem"), references, st.integers(1, 500)),
), max_size=25)
_telegram_ids = count(10_000)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
async def test_balance_is_always_the_ledger_sum(
    sqlite_db: Database, steps: list[tuple[str, str, int]]
) -> None:
    async with sqlite_db.session() as session:
        holder = await make_customer(session, next(_telegram_ids))
        assert holder.id is not None
        earned: dict[str, int] = {}
        reversed_: set[str] = set()
        redeemed: set[str] = set()
        expected = 0
        for action, reference, points in steps:
            if action == "earn":
                if await ledger.add_entry(session, holder.id, LedgerKind.EARN, points, "test", reference):
                    earned[reference] = points
                    expected += points
                else:
                    assert reference in earned  # refused only as a repeat
            elif action == "reverse":
                taken = await ledger.reverse(session, holder.id, reference, "test")
                if reference in earned and reference not in reversed_:
                    assert taken == earned[reference]
                    reversed_.add(reference)
                    expected -= taken
                else:
                    assert taken == 0
            else:
                spent = await ledger.redeem(session, holder.id, points, reference)
                assert spent == (points <= expected and reference not in redeemed)
                if spent:
                    redeemed.add(reference)
                    expected -= points
            total = (await session.exec(select(func.coalesce(func.sum(LedgerEntry.points), 0))
                                        .where(LedgerEntry.customer_id == holder.id))).one()
            assert await ledger.balance(session, holder.id) == expected == total
