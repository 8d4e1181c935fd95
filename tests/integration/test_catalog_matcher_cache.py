"""The FAQ matcher is cached per database: changes made in this process are answered at once,
changes made elsewhere within the check interval, and in between questions cost no statement."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from touchpoint.catalog import service
from touchpoint.catalog.importer import import_faq
from touchpoint.catalog.models import FaqEntry
from touchpoint.clock import utcnow
from touchpoint.db import Database

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
    service.forget_matchers()
    return fake


async def best(db: Database, question: str) -> tuple[str | None, int]:
    """The best answer's id and how many statements finding it took."""
    executed: list[Any] = []

    def record(*_args: Any) -> None:
        executed.append(1)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with db.session() as session:
            match = (await service.get_matcher(session)).match(question)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    return (match.best.target.id if match.best and match.verdict == "answer" else None), len(executed)


async def test_an_imported_faq_is_answered_at_once(db: Database, clock: Clock) -> None:
    assert (await best(db, "when do you open"))[0] is None
    assert (await import_faq(db, FAQ)).ok
    assert (await best(db, "when do you open"))[0] == "opening"


async def test_a_change_made_elsewhere_is_seen_after_the_check_interval(db: Database, clock: Clock) -> None:
    assert (await import_faq(db, FAQ)).ok
    assert await best(db, "when do you open") == ("opening", 3)  # check, build (FAQ, products), and ...
    async with db.session() as session:  # ... another process (the import CLI) adds an entry
        session.add(FaqEntry(id="parking", questions={"en": ["where can I park my car"]},
                             answer={"en": "Behind the shop"}, updated_at=utcnow()))
    clock.now += service.MATCHER_CHECK_S / 2
    assert await best(db, "where can I park my car") == (None, 0)  # cached: not even the check
    clock.now += service.MATCHER_CHECK_S
    assert (await best(db, "where can I park my car"))[0] == "parking"
    clock.now += service.MATCHER_CHECK_S + 1
    assert await best(db, "where can I park my car") == ("parking", 1)  # unchanged: the check only
