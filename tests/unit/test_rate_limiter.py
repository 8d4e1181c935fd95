"""The sender's pacer on simulated time: even spacing, at most the limit in any second, a chat's
interval counted from the end of its last send, 429 pauses, arrival order."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any

import pytest

from touchpoint.messaging.pacing import Pacing, RateLimiter


class SimulatedTime:
    """``asyncio.sleep`` and the limiter's clock on a virtual timeline, advanced only when every
    task is waiting: the test sees exact times, whatever the machine's load."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._real_sleep = asyncio.sleep
        self._stall: tuple[float, float] | None = None

    def stall(self, at: float, seconds: float) -> None:
        """The event loop is busy from ``at`` for ``seconds``: whoever should wake then wakes late."""
        self._stall = (at, seconds)

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float, result: Any = None) -> Any:
        waker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(delay, 0.0), next(self._order), waker))
        await waker
        return result

    async def run(self, work: asyncio.Future[Any]) -> None:
        while not work.done():
            for _ in range(20):  # let every ready task run up to its next wait
                await self._real_sleep(0)
            if self._sleepers and not work.done():
                when, _, waker = heapq.heappop(self._sleepers)
                if self._stall is not None and when >= self._stall[0]:
                    when, self._stall = max(when, sum(self._stall)), None
                self.now = max(self.now, when)
                if not waker.done():
                    waker.set_result(None)


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> SimulatedTime:
    simulated = SimulatedTime()
    monkeypatch.setattr(asyncio, "sleep", simulated.sleep)
    return simulated


PACING = Pacing(global_per_second=10, private_chat_interval_s=1.0)


async def test_even_spacing_in_arrival_order(sim: SimulatedTime) -> None:
    limiter = RateLimiter(PACING, clock=sim.clock)
    sent: list[tuple[int, float]] = []

    spans: list[tuple[float, float]] = []

    async def send(chat_id: int) -> None:
        async with limiter.slot(chat_id):
            sent.append((chat_id, sim.now))
            start = sim.now
            await asyncio.sleep(0.05)  # the request takes a while
            spans.append((start, sim.now))

    work = asyncio.gather(*(send(chat_id) for chat_id in range(1, 31)))
    await sim.run(work)
    # However each request is delayed within its span, no second receives more than 10: any 11
    # sends include one starting a second or more after another one ended.
    assert all(sum(start <= latest and end > latest - 1.0 + 1e-9 for start, end in spans) <= 10
               for latest, _ in spans)
    assert [chat_id for chat_id, _ in sent] == list(range(1, 31))
    times = [at for _, at in sent]
    gaps = [round(later - earlier, 6) for earlier, later in itertools.pairwise(times)]
    assert min(gaps) == 0.1  # evenly spaced at the rate…
    assert all(sum(start <= at < start + 1.0 for at in times) <= 10 for start in times)  # …10 a second
    assert times[-1] <= 3.0  # 30 sends in three seconds: each second's budget counts from the ends


async def test_a_chat_waits_its_interval_from_the_end_of_its_last_send(sim: SimulatedTime) -> None:
    limiter = RateLimiter(PACING, clock=sim.clock)
    starts: dict[int, list[float]] = {1: [], 2: []}

    async def chat(chat_id: int, messages: int, duration: float) -> None:
        for _ in range(messages):
            async with limiter.slot(chat_id):
                starts[chat_id].append(sim.now)
                await asyncio.sleep(duration)

    await sim.run(asyncio.gather(chat(1, 3, 0.3), chat(2, 3, 0.0)))
    assert [round(b - a, 6) for a, b in itertools.pairwise(starts[1])] == [1.3, 1.3]
    assert [round(b - a, 6) for a, b in itertools.pairwise(starts[2])] == [1.0, 1.0]  # not held up by chat 1


async def test_retry_after_pauses_everybody(sim: SimulatedTime) -> None:
    limiter = RateLimiter(PACING.scaled(2), clock=sim.clock)  # time runs twice as fast
    sent: list[float] = []

    async def send(chat_id: int) -> None:
        async with limiter.slot(chat_id):
            sent.append(sim.now)
            if chat_id == 1:
                limiter.pause(4)  # "retry after 4 s": 2 s at this scale

    await sim.run(asyncio.gather(*(send(chat_id) for chat_id in (1, 2, 3))))
    assert sent[0] == 0.0 and sent[1] == 2.0
    assert round(sent[2] - sent[1], 6) == 0.05  # no burst after the pause: a step (of 1/20 s) apart


async def test_a_late_timer_is_caught_up_within_the_limit(sim: SimulatedTime) -> None:
    limiter = RateLimiter(PACING, clock=sim.clock)
    sent: list[float] = []

    async def send(chat_id: int) -> None:
        async with limiter.slot(chat_id):
            sent.append(sim.now)

    sim.stall(at=0.45, seconds=0.3)  # the pacer should wake at 0.5, wakes at 0.75
    await sim.run(asyncio.gather(*(send(chat_id) for chat_id in range(1, 41))))
    assert round(sent[5], 6) == 0.75
    gaps = [round(later - earlier, 6) for earlier, later in itertools.pairwise(sent)]
    assert min(gaps) == 0.05  # catching up, never closer than half a step
    assert all(sum(start <= at < start + 1.0 for at in sent) <= 10 for start in sent)  # 10 a second
    # The lost time is made up: the 10th send went at 0.95 instead of 0.9, so the 40th at 3.95,
    # three seconds later, as soon as 10 a second allows (without catching up: 4.1).
    assert round(sent[-1], 6) == 3.95


async def test_an_uneven_pacer_lets_what_it_owes_go_at_once_within_the_limit(sim: SimulatedTime) -> None:
    """Paid broadcasts (``even=False``): woken late, the pacer does not spend a loop turn per owed
    send at half steps; they go at once, and the second's ceiling still holds."""
    limiter = RateLimiter(PACING, clock=sim.clock, even=False)
    sent: list[float] = []

    async def send(chat_id: int) -> None:
        async with limiter.slot(chat_id):
            sent.append(sim.now)

    sim.stall(at=0.45, seconds=0.3)  # the pacer should wake at 0.5, wakes at 0.75
    await sim.run(asyncio.gather(*(send(chat_id) for chat_id in range(1, 41))))
    assert [round(at, 6) for at in sent[5:8]] == [0.75, 0.75, 0.75]  # 0.5, 0.6, 0.7 owed: all at once
    assert all(sum(start <= at < start + 1.0 for at in sent) <= 10 for start in sent)  # 10 a second
