"""The console lists the brand's connected Telegram Business accounts in words (managers only)."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.console_helpers import log_in, make_staff
from touchpoint.business import service as business
from touchpoint.config import load_settings
from touchpoint.console import create_console_app
from touchpoint.customers.service import ChatUser, upsert_customer
from touchpoint.db import Database
from touchpoint.i18n import get_translator

settings = load_settings(_env_file=None)
t = get_translator()


@pytest.fixture
async def server(db: Database) -> AsyncIterator[TestServer]:
    await make_staff(db, "alice", "manager", locale="ru")
    await make_staff(db, "bob", "agent")
    async with TestServer(create_console_app(settings, db)) as running:
        yield running


async def test_connections_are_listed_with_owner_rights_and_state(server: TestServer, db: Database) -> None:
    async with TestClient(server) as alice, TestClient(server) as bob:
        await log_in(alice)
        empty = await (await alice.get("/business")).text()
        assert html.escape(t("ru", "business.console.empty"), quote=False) in empty

        async with db.session() as session:
            await business.record_connection(session, business.ConnectionFacts(
                "bc-1", 777, "Brewhaus Mitte", "brewhaus_mitte", can_reply=True, is_enabled=True))
            await business.record_connection(session, business.ConnectionFacts(
                "bc-2", 778, "Brewhaus Outlet", None, can_reply=False, is_enabled=False))
            for telegram_id in (1501, 1502):
                person = await upsert_customer(session, ChatUser(telegram_id, "Ann"), "Europe/Berlin")
                await business.customer_wrote(session, "bc-1", person, new_customer=True)
            await session.commit()
        page = await (await alice.get("/business")).text()
        assert "Brewhaus Mitte" in page and "@brewhaus_mitte" in page and "Brewhaus Outlet" in page
        for key in ("business.console.can_reply", "business.console.enabled", "business.console.read_only",
                    "business.console.disabled"):
            assert html.escape(t("ru", key), quote=False) in page, key
        assert t.plural("ru", "business.console.chat_count", 2, n="2") in page
        assert "bc-1" not in page.replace('data-testid="business-bc-1"', "")  # words, not codes

        await log_in(bob, "bob")
        assert (await bob.get("/business", allow_redirects=False)).status in (302, 403)
