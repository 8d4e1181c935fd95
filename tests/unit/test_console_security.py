"""Pure pieces of the console's hardening: redirect targets, client addresses, the log-in throttle,
argon2 off the event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from touchpoint.console import passwords
from touchpoint.console.auth import safe_target
from touchpoint.console.passwords import PasswordWorkBusy, PasswordWorker
from touchpoint.console.throttle import LoginThrottle, MemoryCounters, client_address, parse_networks


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- 4. open redirect ---

@pytest.mark.parametrize("target", [
    "/\t/evil.example/phish", "/%09/evil.example/phish", "//evil.example", "/\\evil.example",
    "\\\\evil.example", "/%5Cevil.example", "/%2F/evil.example", "https://evil.example/",
    "javascript:alert(1)", " //evil.example", "/\n/evil.example", "/\r\n/evil.example",
    "\x00//evil.example", "/\u3000/evil.example", "evil.example", "", None, "%2F%2Fevil.example",
])
def test_only_same_site_paths_are_redirect_targets(target: str | None) -> None:
    assert safe_target(target) == "/"


@pytest.mark.parametrize("target", ["/", "/inbox", "/tickets?status=open&kind=return", "/customers?q=%D0%B0",
                                    "/inbox/3#reply"])
def test_local_paths_are_kept(target: str) -> None:
    assert safe_target(target) == target


# --- 6. who is asking ---

def test_forwarded_for_is_read_only_from_a_trusted_proxy() -> None:
    trusted = parse_networks(["10.0.0.0/8", "::1"])
    # No trusted proxies configured, or a peer that is not one: the header is anyone's words.
    assert client_address("203.0.113.9", ["198.51.100.1"], ()) == "203.0.113.9"
    assert client_address("203.0.113.9", ["198.51.100.1"], trusted) == "203.0.113.9"
    # Behind ours: the right-most hop we did not add; whatever the client wrote to its left is ignored.
    assert client_address("10.0.0.2", ["6.6.6.6, 198.51.100.1"], trusted) == "198.51.100.1"
    assert client_address("10.0.0.2", ["6.6.6.6", "198.51.100.1, 10.0.0.7"], trusted) == "198.51.100.1"
    assert client_address("::1", ["198.51.100.1"], trusted) == "198.51.100.1"
    assert client_address("10.0.0.2", [], trusted) == "10.0.0.2"
    assert client_address("10.0.0.2", ["10.0.0.3"], trusted) == "10.0.0.3"
    assert client_address(None, [], trusted) == "unknown"


def throttle(clock: Clock, attempts: int = 3, address_attempts: int = 10) -> LoginThrottle:
    return LoginThrottle(MemoryCounters(clock), attempts=attempts, window_s=60,
                         address_attempts=address_attempts, lockout_max_s=600)


async def test_a_stranger_cannot_lock_a_colleague_out() -> None:
    clock = Clock()
    gate = throttle(clock)
    for _ in range(3):
        assert await gate.retry_after("6.6.6.6", "alice") == 0
        await gate.failed("6.6.6.6", "alice")
        clock.now += 1
    assert 0 < await gate.retry_after("6.6.6.6", "Alice ") <= 60  # the guesser waits…
    assert await gate.retry_after("10.0.0.5", "alice") == 0  # …alice, elsewhere, does not
    assert await gate.retry_after("6.6.6.6", "bob") == 0  # the pair is locked, not the address
    clock.now += 60
    assert await gate.retry_after("6.6.6.6", "alice") == 0


async def test_each_failure_after_a_lock_doubles_the_wait_and_success_forgets() -> None:
    clock = Clock()
    gate = throttle(clock, attempts=2)
    waits = []
    for _ in range(5):
        while (wait := await gate.retry_after("6.6.6.6", "alice")) == 0:
            await gate.failed("6.6.6.6", "alice")
        waits.append(round(wait))
        clock.now += wait
    assert waits == [60, 120, 240, 480, 600]  # capped at lockout_max_s
    await gate.succeeded("6.6.6.6", "alice")
    await gate.failed("6.6.6.6", "alice")
    assert await gate.retry_after("6.6.6.6", "alice") == 0


async def test_one_address_spraying_names_hits_the_looser_address_cap() -> None:
    clock = Clock()
    gate = throttle(clock, attempts=3, address_attempts=5)
    for n in range(5):
        await gate.failed("6.6.6.6", f"user{n}")
    assert await gate.retry_after("6.6.6.6", "someone_else") > 0
    assert await gate.retry_after("10.0.0.5", "someone_else") == 0


# --- 5. argon2 off the loop, with a cap ---

async def test_verify_runs_in_a_worker_thread_and_a_full_queue_says_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    threads: list[int] = []

    def slow_verify(password_hash: str | None, password: str) -> bool:
        threads.append(threading.get_ident())
        release.wait(5)
        return password == "right"

    monkeypatch.setattr(passwords, "verify_password", slow_verify)
    worker = PasswordWorker(workers=1, queue=1)
    try:
        running = asyncio.create_task(worker.verify("h", "right"))
        queued = asyncio.create_task(worker.verify("h", "wrong"))
        await asyncio.sleep(0.05)  # the loop is free while argon2 works
        with pytest.raises(PasswordWorkBusy):
            await worker.verify("h", "third")
        release.set()
        assert [await running, await queued] == [True, False]
        assert threads and threading.get_ident() not in threads
        assert await worker.verify("h", "right")  # room again
    finally:
        release.set()
        worker.close()


async def test_one_off_hashing_is_not_on_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []

    def record(password: str) -> str:
        threads.append(threading.get_ident())
        return "hashed"

    monkeypatch.setattr(passwords, "hash_password", record)
    assert await passwords.hash_password_off_loop("secret password") == "hashed"
    assert threads and threads[0] != threading.get_ident()
