"""Telegram's rules for a business chat, and contact vetoes that reach beyond marketing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from touchpoint.business.models import BusinessChat, BusinessConnection
from touchpoint.business.service import Closed, judge, owner_has_taken_over
from touchpoint.messaging.rules import Lane, Veto, register_veto

NOW = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)


def connection(**fields: object) -> BusinessConnection:
    values: dict[str, object] = dict(id="bc-1", owner_user_id=7, can_reply=True, is_enabled=True,
                                     connected_at=NOW, updated_at=NOW)
    return BusinessConnection(**{**values, **fields})


def chat(wrote_ago: timedelta | None, **fields: object) -> BusinessChat:
    return BusinessChat(connection_id="bc-1", chat_id=1501, created_at=NOW - timedelta(days=3),
                        last_incoming_at=None if wrote_ago is None else NOW - wrote_ago, **fields)


@pytest.mark.parametrize(("conn", "wrote_ago", "closed"), [
    (connection(), timedelta(hours=23, minutes=59), None),
    (connection(), timedelta(hours=24), Closed.WINDOW),
    (connection(), None, Closed.WINDOW),  # the owner wrote first: never a cold start
    (connection(is_enabled=False), timedelta(minutes=1), Closed.DISCONNECTED),
    (connection(can_reply=False), timedelta(minutes=1), Closed.NO_REPLY_RIGHT),
])
def test_the_bot_may_write_only_within_the_rules(conn: BusinessConnection, wrote_ago: timedelta | None,
                                                 closed: Closed | None) -> None:
    assert judge(conn, chat(wrote_ago), NOW) is closed


def test_owner_takeover_lasts_until_its_time() -> None:
    assert owner_has_taken_over(chat(None, owner_quiet_until=NOW + timedelta(seconds=1)), NOW)
    assert not owner_has_taken_over(chat(None, owner_quiet_until=NOW), NOW)
    assert not owner_has_taken_over(chat(None), NOW)


async def _nobody(_session: object, _ids: set[int]) -> set[int]:
    return set()


def test_a_veto_covers_its_lanes_except_what_it_spares() -> None:
    veto = Veto("x", _nobody, 1, frozenset({Lane.TRANSACTIONAL, Lane.MARKETING}), frozenset({"handoff.csat"}))
    assert veto.covers(Lane.TRANSACTIONAL, "order.status") and veto.covers(Lane.MARKETING, "j.cart")
    assert not veto.covers(Lane.SERVICE, "order.status")
    assert not veto.covers(Lane.TRANSACTIONAL, "handoff.csat")
    assert Veto("y", _nobody, 1).covers(Lane.MARKETING, "j.cart")  # marketing only, unless told
    assert not Veto("y", _nobody, 1).covers(Lane.TRANSACTIONAL, "order.status")
    with pytest.raises(ValueError, match="never vetoed"):
        register_veto("z", _nobody, lanes=(Lane.REPLY,))
