"""The console's hardening over real HTTP: the demo account, revocable sessions, redirects after
log-in, argon2 off the loop, the throttle behind a proxy and across processes, headers on errors."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis
from sqlalchemy import text
from sqlmodel import select

from tests.console_helpers import PASSWORD, csrf_from, log_in, make_staff
from tests.production import free_port, redis_prefix
from touchpoint.config import ConfigError, load_settings
from touchpoint.console import create_console_app, passwords, queries, start_console
from touchpoint.console.auth import DEMO_STAFF, seed_demo_staff
from touchpoint.console.models import StaffAccount
from touchpoint.console.throttle import LoginThrottle, RedisCounters
from touchpoint.db import Database
from touchpoint.db.migrate import upgrade_database

KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # 32 bytes: cookies survive between test apps
settings = load_settings(_env_file=None, console_secret_key=KEY, console_login_attempts=3)
COOKIE = "touchpoint_console"


@pytest.fixture
async def client(db: Database) -> AsyncIterator[TestClient]:
    await make_staff(db, "alice", "manager")
    async with TestClient(TestServer(create_console_app(settings, db))) as test_client:
        yield test_client


async def post_login(client: TestClient, username: str, password: str, nxt: str = "/",
                     headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    token = csrf_from(await (await client.get("/login")).text())
    response = await client.post("/login", data={"username": username, "password": password,
                                                 "csrf_token": token, "next": nxt},
                                 headers=headers, allow_redirects=False)
    return response.status, response.headers.get("Location", ""), await response.text()


def saved_cookie(client: TestClient) -> str:
    return client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value


def restore_cookie(client: TestClient, value: str) -> None:
    client.session.cookie_jar.update_cookies({COOKIE: value}, response_url=client.make_url("/"))


async def opens_inbox(client: TestClient) -> bool:
    response = await client.get("/inbox", allow_redirects=False)
    assert response.status in (200, 302)
    return response.status == 200


# --- 1. the demo account ---

async def test_the_demo_account_logs_in_only_under_the_demo(sqlite_db: Database) -> None:
    await seed_demo_staff(sqlite_db)
    async with TestClient(TestServer(create_console_app(settings, sqlite_db, demo_mode=True))) as demo:
        status, _, _ = await post_login(demo, *DEMO_STAFF)
        assert status == 303 and await opens_inbox(demo)
        cookie = saved_cookie(demo)
    async with TestClient(TestServer(create_console_app(settings, sqlite_db))) as production:
        status, _, page = await post_login(production, *DEMO_STAFF)
        assert status == 401 and "Wrong name or password" in page
        restore_cookie(production, cookie)  # a session from the demo opens nothing here either
        assert not await opens_inbox(production)


async def test_a_real_run_disables_the_demo_account_and_the_demo_enables_it(sqlite_db: Database) -> None:
    await seed_demo_staff(sqlite_db)
    runner = await start_console(load_settings(_env_file=None, console_port=0), sqlite_db)
    assert runner is not None
    await runner.cleanup()
    async with sqlite_db.session() as session:
        demo = (await session.exec(select(StaffAccount))).one()
    assert demo.is_demo and not demo.active
    await seed_demo_staff(sqlite_db)
    async with sqlite_db.session() as session:
        assert (await session.exec(select(StaffAccount.active))).one()


async def test_the_demo_refuses_a_postgresql_database() -> None:
    from bot.runner import run_demo

    target = load_settings(_env_file=None, database_url="postgresql+asyncpg://shop@127.0.0.1:1/production",
                           sandbox_port=free_port())
    with pytest.raises(ConfigError, match="SQLite file of its own"):
        await run_demo(target)


async def test_the_migration_flags_a_demo_account_made_before_it(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await upgrade_database(url, "0010")
    db = Database(url)
    try:
        async with db.session() as session:
            await session.exec(text(  # type: ignore[call-overload]
                "INSERT INTO staff_accounts (username, display_name, password_hash, role, locale, active, "
                "created_at) VALUES ('demo', 'Demo manager', 'x', 'manager', 'en', 1, '2026-01-01'), "
                "('alice', 'Alice', 'x', 'manager', 'en', 1, '2026-01-01')"))
        await upgrade_database(url)
        async with db.session() as session:
            flags = dict((await session.exec(select(StaffAccount.username, StaffAccount.is_demo))).all())
    finally:
        await db.dispose()
    assert flags == {"demo": True, "alice": False}


# --- 3. sessions end ---

async def test_logout_ends_the_session_even_for_a_copy_of_the_cookie(client: TestClient) -> None:
    token = await log_in(client)
    cookie = saved_cookie(client)
    await client.post("/logout", data={"csrf_token": token})
    restore_cookie(client, cookie)
    assert not await opens_inbox(client)


async def test_a_password_reset_ends_every_session(client: TestClient, db: Database) -> None:
    await log_in(client)
    async with TestClient(TestServer(create_console_app(settings, db))) as other_browser:
        await log_in(other_browser)
        await make_staff(db, "alice", "manager")  # `touchpoint staff add alice` again
        assert not await opens_inbox(client) and not await opens_inbox(other_browser)
    await log_in(client)  # the new password works
    assert await opens_inbox(client)


async def touchpoint(database_url: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from touchpoint.cli import app; app()", *args,
        env={**os.environ, "TOUCHPOINT_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def test_staff_logout_and_disable_end_open_sessions(client: TestClient, db: Database) -> None:
    await log_in(client)
    code, output = await touchpoint(db.url, "staff", "logout", "Alice")
    assert (code, output.strip()) == (0, "alice: 1 session(s) ended")
    assert not await opens_inbox(client)

    await log_in(client)
    code, output = await touchpoint(db.url, "staff", "disable", "alice")
    assert (code, output.strip()) == (0, "alice is disabled and signed out")
    assert not await opens_inbox(client)
    status, _, page = await post_login(client, "alice", PASSWORD)
    assert status == 401 and "Wrong name or password" in page
    code, output = await touchpoint(db.url, "staff", "disable", "nobody")
    assert code == 1 and "no staff account 'nobody'" in output


# --- 4. redirect after log-in ---

async def test_log_in_never_redirects_off_site(client: TestClient) -> None:
    page = await (await client.get("/login?next=/%09/evil.example/phish")).text()
    assert 'name="next" value="/"' in page
    for target in ("/\t/evil.example/phish", "/%09/evil.example/phish", "/\\evil.example", "https://evil.example"):
        status, location, _ = await post_login(client, "alice", PASSWORD, target)
        assert (status, location) == (303, "/"), target
    status, location, _ = await post_login(client, "alice", PASSWORD, "/tickets?status=open")
    assert (status, location) == (303, "/tickets?status=open")


# --- 5. argon2 off the loop ---

async def test_log_ins_are_checked_off_the_loop_and_a_flood_is_told_to_retry(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_staff(sqlite_db, "alice")
    verify = passwords.verify_password
    release, started = threading.Event(), threading.Event()

    def slow_verify(password_hash: str | None, password: str) -> bool:
        started.set()
        release.wait(10)  # an argon2 that takes its time, in its thread
        return verify(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", slow_verify)
    capped = load_settings(_env_file=None, console_password_workers=1, console_password_queue=0)
    async with TestClient(TestServer(create_console_app(capped, sqlite_db))) as first, \
            TestClient(TestServer(create_console_app(capped, sqlite_db))) as second:
        app_first = first.server.app
        assert app_first is not None
        token = csrf_from(await (await first.get("/login")).text())
        checking = asyncio.create_task(first.post(
            "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token},
            allow_redirects=False))
        await asyncio.to_thread(started.wait, 10)
        # The loop still answers while the password is being checked…
        assert (await first.get("/login")).status == 200
        # …and a log-in beyond the cap is told to retry at once, in words.
        token = csrf_from(await (await first.get("/login")).text())
        busy = await first.post("/login", data={"username": "bob", "password": "x" * 8, "csrf_token": token})
        assert busy.status == 503 and busy.headers["Retry-After"]
        assert "Try again in a few seconds" in await busy.text()
        release.set()
        assert (await checking).status == 303
        assert (await post_login(second, "alice", PASSWORD))[0] == 303


# --- 6. the throttle ---

async def test_behind_a_trusted_proxy_a_guesser_locks_only_themselves(sqlite_db: Database) -> None:
    await make_staff(sqlite_db, "alice")
    proxied = load_settings(_env_file=None, console_login_attempts=2, console_trusted_proxies=["127.0.0.1"])
    async with TestClient(TestServer(create_console_app(proxied, sqlite_db))) as client:
        guesser = {"X-Forwarded-For": "198.51.100.66"}
        for _ in range(2):
            assert (await post_login(client, "alice", "wrong guess", headers=guesser))[0] == 401
        assert (await post_login(client, "alice", PASSWORD, headers=guesser))[0] == 429
        # The same proxy, another client: alice logs in. A forged left-most hop changes nothing.
        alice = {"X-Forwarded-For": "198.51.100.66, 203.0.113.7"}
        assert (await post_login(client, "alice", PASSWORD, headers=alice))[0] == 303


async def test_without_a_trusted_proxy_forwarded_for_is_ignored(sqlite_db: Database) -> None:
    await make_staff(sqlite_db, "alice")
    direct = load_settings(_env_file=None, console_login_attempts=2)
    async with TestClient(TestServer(create_console_app(direct, sqlite_db))) as client:
        for n in range(2):
            await post_login(client, "alice", "wrong guess", headers={"X-Forwarded-For": f"10.9.9.{n}"})
        status, _, page = await post_login(client, "alice", PASSWORD, headers={"X-Forwarded-For": "10.9.9.9"})
        assert status == 429 and "Too many attempts" in page


async def test_the_throttle_counts_across_processes_in_redis() -> None:
    async with redis_prefix() as (url, prefix):
        clients = [Redis.from_url(url) for _ in range(2)]
        first, second = (LoginThrottle(RedisCounters(c), attempts=3, window_s=60, address_attempts=50,
                                       lockout_max_s=600, prefix=prefix) for c in clients)
        try:
            await first.failed("198.51.100.66", "alice")
            await second.failed("198.51.100.66", "alice")
            assert await first.retry_after("198.51.100.66", "alice") == 0
            await first.failed("198.51.100.66", "alice")
            assert 0 < await second.retry_after("198.51.100.66", "alice") <= 60
            assert await second.retry_after("203.0.113.7", "alice") == 0
            keys = [key async for key in clients[0].scan_iter(match=f"{prefix}:*")]
            assert keys and not any(b"alice" in key or b"198.51" in key for key in keys)  # hashed
            await second.succeeded("198.51.100.66", "alice")
            assert await first.retry_after("198.51.100.66", "alice") == 0
        finally:
            for c in clients:
                await c.aclose()


async def test_the_throttle_still_counts_when_redis_is_down() -> None:
    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    gate = LoginThrottle(RedisCounters(client), attempts=2, window_s=60, address_attempts=50,
                         lockout_max_s=600)
    try:
        for _ in range(2):
            await gate.failed("198.51.100.66", "alice")
        assert await gate.retry_after("198.51.100.66", "alice") > 0
    finally:
        await client.aclose()


# --- 7. headers on every answer ---

HEADERS = {"Content-Security-Policy", "X-Frame-Options", "Cache-Control", "Referrer-Policy",
           "X-Content-Type-Options"}


async def test_error_pages_carry_the_security_headers_and_words(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_staff(sqlite_db, "alice", "manager")
    await make_staff(sqlite_db, "bob", "agent")
    async with TestClient(TestServer(create_console_app(settings, sqlite_db))) as client:
        anonymous = [await client.get("/inbox", allow_redirects=False), await client.post("/logout")]
        await log_in(client, "bob")
        forbidden = await client.get("/journeys")
        missing = await client.get("/no-such-page")

        async def broken(*_args: object) -> None:
            raise RuntimeError("database on fire")

        monkeypatch.setattr(queries, "inbox", broken)
        crashed = await client.get("/inbox")
        static_missing = await client.get("/static/nope.css")
        for response in (*anonymous, forbidden, missing, crashed, static_missing):
            assert set(response.headers) >= HEADERS, (response.status, response.headers)
            assert response.headers["Cache-Control"] == "no-store"
        assert [r.status for r in (*anonymous, forbidden, missing, crashed, static_missing)] == [
            302, 403, 403, 404, 500, 404]
        page = await missing.text()  # the console's own page: words and a way back, no code
        assert "There is no such page." in page and 'href="/"' in page and "404" not in page
        assert "Something went wrong" in await crashed.text() and "fire" not in await crashed.text()
