"""The question index is cached per database: changes made in this process are answered at once,
changes made elsewhere within the check interval (rebuilt in the background, off the event
loop), and in between questions cost no statement."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event

from touchpoint.catalog.importer import import_faq
from touchpoint.catalog.models import FaqEntry
from touchpoint.clock import utcnow
from touchpoint.db import Database
from touchpoint.understanding import service

PATTERN = r"^[A-Z]{2,4}-?\d{4,10}$"
FAQ = "- id: opening\n  questions: {en: [when do you open], ru: [когда вы открываетесь], zh: [几点开门]}\n" \
      "  answer: {en: At nine, ru: В девять, zh: 九点}\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(service, "time", fake)
    service.forget_indexes()
    return fake


async def best(db: Database, question: str) -> tuple[str | None, int]:
    """The best answer's id and how many statements finding it took."""
    executed: list[Any] = []

    def record(*_args: Any) -> None:
        executed.append(1)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with db.session() as session:
            match = (await service.get_index(session)).understand(question, PATTERN).match
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    return (match.best.target.id if match.best and match.verdict == "answer" else None), len(executed)


async def test_an_imported_faq_is_answered_at_once(db: Database, clock: Clock) -> None:
    assert (await best(db, "when do you open"))[0] is None
    assert (await import_faq(db, FAQ)).ok
    assert (await best(db, "when do you open"))[0] == "opening"


async def test_a_change_made_elsewhere_is_seen_after_the_check_interval(db: Database, clock: Clock) -> None:
    assert (await import_faq(db, FAQ)).ok
    # The check, then the snapshot the index is built from: FAQ, products, categories, stores.
    assert await best(db, "when do you open") == ("opening", 5)
    async with db.session() as session:  # ... another process (the import CLI) adds an entry
        session.add(FaqEntry(id="parking", questions={"en": ["where can I park my car"]},
                             answer={"en": "Behind the shop"}, updated_at=utcnow()))
    clock.now += service.CHECK_S / 2
    assert await best(db, "where can I park my car") == (None, 0)  # cached: not even the check
    clock.now += service.CHECK_S
    # Seen: rebuilt in the background while the previous index keeps answering.
    assert await best(db, "where can I park my car") == (None, 5)
    for _ in range(200):
        answer, statements = await best(db, "where can I park my car")
        if answer == "parking":
            break
        await asyncio.sleep(0.05)
    assert (answer, statements) == ("parking", 0)
    clock.now += service.CHECK_S + 1
    assert await best(db, "where can I park my car") == ("parking", 1)  # unchanged: the check only


async def test_the_index_is_built_off_the_event_loop(
    db: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While the index builds, the loop keeps serving other work (the build runs in a thread)."""
    import threading

    loop_thread = threading.get_ident()
    built_in: list[int] = []
    real_build = service.QuestionIndex.build

    def build(*args: Any) -> service.QuestionIndex:
        built_in.append(threading.get_ident())
        return real_build(*args)

    monkeypatch.setattr(service.QuestionIndex, "build", staticmethod(build))
    assert (await import_faq(db, FAQ)).ok
    assert (await best(db, "when do you open"))[0] == "opening"
    assert built_in and all(ident != loop_thread for ident in built_in)
