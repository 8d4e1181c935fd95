"""Managers run staff accounts from the console: add, change role, reset password, disable, end
sessions — the same code as `touchpoint staff add/disable/logout`; agents cannot."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.console_helpers import log_in, make_handoff, make_staff
from touchpoint.config import load_settings
from touchpoint.console import create_console_app
from touchpoint.console.auth import find_staff
from touchpoint.db import Database
from touchpoint.formatting import format_datetime

settings = load_settings(_env_file=None)


@pytest.fixture
async def app_url(db: Database) -> AsyncIterator[TestServer]:
    await make_staff(db, "alice", "manager")
    await make_staff(db, "bob", "agent")
    server = TestServer(create_console_app(settings, db))
    async with server:
        yield server


async def test_manager_adds_promotes_resets_and_disables(app_url: TestServer, db: Database) -> None:
    async with TestClient(app_url) as alice, TestClient(app_url) as bob:
        token = await log_in(alice)
        await log_in(bob, "bob")

        async def act(**form: str) -> str:
            return await (await alice.post("/staff", data={"csrf_token": token, **form})).text()

        assert "Account carol added." in await act(action="add", username="Carol", display_name="Carol K",
                                                   role="agent", locale="ru", password="long enough pw")
        assert "already" in await act(action="add", username="carol", role="agent", password="long enough pw")
        assert "Not saved" in await act(action="add", username="dan", role="agent", password="short")
        assert "Role of bob changed." in await act(action="role", username="bob", role="manager")
        async with db.session() as session:
            carol, bob_account = await find_staff(session, "carol"), await find_staff(session, "bob")
        assert carol is not None and carol.locale == "ru" and carol.display_name == "Carol K"
        assert bob_account is not None and bob_account.role == "manager"
        assert (await bob.get("/journeys")).status == 200  # the new role counts at once
        assert "sessions ended" in await act(action="password", username="bob", password="another password")
        assert (await bob.get("/", allow_redirects=False)).status == 302  # signed out by the reset
        await log_in(bob, "bob", "another password")
        assert "Every session of bob ended." in await act(action="logout", username="bob")
        assert (await bob.get("/", allow_redirects=False)).status == 302
        assert "bob disabled" in await act(action="disable", username="bob")
        refused = await bob.post("/login", data={"username": "bob", "password": "another password"})
        assert refused.status in (401, 403)
        # Not on oneself: that is how a desk locks itself out.
        assert "your own account" in await act(action="disable", username="alice")
        assert "There is no account" in await act(action="role", username="nobody", role="agent")


async def test_agents_cannot_manage_accounts(app_url: TestServer) -> None:
    async with TestClient(app_url) as bob:
        token = await log_in(bob, "bob")
        form = {"csrf_token": token, "action": "disable", "username": "alice"}
        assert (await bob.post("/staff", data=form)).status == 403


async def test_each_staff_member_reads_times_in_their_own_time_zone(
    app_url: TestServer, db: Database
) -> None:
    """Bob picks Tokyo on "My settings", then Alice (a manager) sets another zone for him: every
    time on his pages follows; an unknown zone is refused in words and changes nothing."""
    _, conversation = await make_handoff(db, 7001, first_name="Mia")
    async with TestClient(app_url) as alice, TestClient(app_url) as bob:
        alice_token, bob_token = await log_in(alice), await log_in(bob, "bob")
        opened = conversation.opened_at
        berlin = format_datetime(opened, "en", settings.handoff_timezone)
        tokyo = format_datetime(opened, "en", "Asia/Tokyo")
        assert berlin != tokyo
        assert berlin in await (await bob.get("/inbox")).text()  # the shop's zone until he picks one

        saved = await bob.post("/me", data={"csrf_token": bob_token, "timezone": "Asia/Tokyo",
                                            "telegram_id": "5550001"})
        assert "Saved" in await saved.text()
        page = await (await bob.get("/inbox")).text()
        assert tokyo in page and berlin not in page
        assert berlin in await (await alice.get("/inbox")).text()  # Alice's own zone is unchanged

        refused = await bob.post("/me", data={"csrf_token": bob_token, "timezone": "Mars/Olympus"})
        assert "Not saved" in await refused.text()
        async with db.session() as session:
            account = await find_staff(session, "bob")
        assert account is not None and (account.timezone, account.telegram_id) == ("Asia/Tokyo", 5550001)

        async def act(**form: str) -> str:
            return await (await alice.post("/staff", data={"csrf_token": alice_token, **form})).text()

        assert "Time zone of bob saved." in await act(action="timezone", username="bob",
                                                      timezone="America/New_York")
        assert "Not saved" in await act(action="timezone", username="bob", timezone="Nowhere")
        assert format_datetime(opened, "en", "America/New_York") in await (await bob.get("/inbox")).text()
        async with db.session() as session:
            account = await find_staff(session, "bob")
        assert account is not None
        assert (account.timezone, account.telegram_id) == ("America/New_York", 5550001)
