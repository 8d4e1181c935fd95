"""argon2 password hashes, computed off the event loop.

One argon2 verify costs ~150 ms of CPU. On the loop it would stall every chat the process serves,
so the console verifies in a few threads of its own (argon2 releases the GIL) and caps how many
log-ins may wait for them: a flood of log-ins gets "busy, try again", never the bot's time.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


class PasswordWorkBusy(Exception):
    """Every worker is busy and the queue is full: the caller should answer "try again"."""


def hash_password(password: str) -> str:
    """Blocking: call it from a worker thread (``hash_password_off_loop``)."""
    return _hasher.hash(password)


@functools.cache
def _dummy_hash() -> str:
    # Verified when the name is unknown, so a wrong name costs as long as a wrong password.
    return _hasher.hash(secrets.token_hex(16))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Blocking: call it through ``PasswordWorker.verify``."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def hash_password_off_loop(password: str) -> str:
    """For one-off hashing (``touchpoint staff add``, the demo's account): a thread, not the loop."""
    return await asyncio.to_thread(hash_password, password)


class PasswordWorker:
    """At most ``workers`` argon2 computations at once, at most ``queue`` more waiting."""

    def __init__(self, workers: int = 1, queue: int = 8) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="console-argon2")
        self._capacity = workers + queue
        self._pending = 0  # only touched on the loop: no lock needed

    async def _run(self, fn: functools.partial[object]) -> object:
        if self._pending >= self._capacity:
            raise PasswordWorkBusy
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        finally:
            self._pending -= 1

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return bool(await self._run(functools.partial(verify_password, password_hash, password)))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
