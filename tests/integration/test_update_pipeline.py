"""The update pipeline's cost-cutting keeps its guarantees: a redelivered update is ignored and a
failed one is still marked handled on both databases, what routing needs about the customer comes
with them in one statement, and no filter hops to a worker thread."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod
from aiogram.types import Message, Update
from pydantic import SecretStr
from sqlalchemy import event
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import create_dispatcher
from bot.keyboards import MenuCallback
from tests.chat_texts import help_text
from touchpoint.channels.models import ProcessedUpdate
from touchpoint.clock import utcnow
from touchpoint.config import SANDBOX_TOKEN, load_settings
from touchpoint.customers.models import BehaviourEvent, Customer
from touchpoint.db import Database
from touchpoint.handoff.models import Conversation
from touchpoint.i18n import get_translator
from touchpoint.messaging.models import Delivery, OutboxMessage

t = get_translator()


class RecordingSession(BaseSession):
    """Answers Bot API calls in memory and remembers them."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, Any, Any]] = []  # (method, chat id, text)

    async def make_request(self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None) -> Any:
        name = method.__api_method__
        self.sent.append((name, getattr(method, "chat_id", None), getattr(method, "text", None)))
        result: Any = True
        if name in ("sendMessage", "editMessageText"):
            result = {"message_id": len(self.sent), "date": 0, "text": getattr(method, "text", ""),
                      "chat": {"id": getattr(method, "chat_id", 1), "type": "private"}}
        elif name == "createForumTopic":
            result = {"message_thread_id": len(self.sent), "name": method.name, "icon_color": 0}
        return self.check_response(bot, method, 200, json.dumps({"ok": True, "result": result})).result

    async def close(self) -> None:
        return None

    async def stream_content(self, *args: Any, **kwargs: Any) -> AsyncIterator[bytes]:  # pragma: no cover
        raise NotImplementedError
        yield b""


class Chat:
    def __init__(self, db: Database, **overrides: Any) -> None:
        settings = load_settings(_env_file=None, database_url=db.url, bot_token=SecretStr(SANDBOX_TOKEN),
                                 **overrides)
        self.db = db
        self.session = RecordingSession()
        self.bot = Bot(SANDBOX_TOKEN, session=self.session)
        self.dp: Dispatcher = create_dispatcher(settings, db)
        self.next_id = 0

    def text(self, user_id: int, text: str) -> Update:
        self.next_id += 1
        message: dict[str, Any] = {
            "message_id": self.next_id, "date": 0, "text": text,
            "chat": {"id": user_id, "type": "private"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Ada", "language_code": "en"},
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return self._update({"message": message})

    def tap(self, user_id: int, action: str) -> Update:
        self.next_id += 1
        user = {"id": user_id, "is_bot": False, "first_name": "Ada", "language_code": "en"}
        on = {"message_id": 1, "date": 0, "text": "menu", "chat": {"id": user_id, "type": "private"},
              "from": {"id": 42, "is_bot": True, "first_name": "Touchpoint"}}
        query = {"id": str(self.next_id), "from": user, "chat_instance": "1", "message": on,
                 "data": MenuCallback(action=action).pack()}
        return self._update({"callback_query": query})

    def _update(self, body: dict[str, Any]) -> Update:
        return Update.model_validate({"update_id": self.next_id, **body}, context={"bot": self.bot})

    async def feed(self, update: Update) -> None:
        await self.dp.feed_update(self.bot, update)

    def texts(self, chat_id: int | None = None) -> list[Any]:
        return [text for name, to, text in self.session.sent
                if name == "sendMessage" and chat_id in (None, to)]


@pytest.fixture
async def chat(db: Database) -> Chat:
    return Chat(db)


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.session() as session:
        return (await session.exec(select(func.count()).select_from(model).where(*where))).one()


async def test_redelivered_update_is_ignored(chat: Chat) -> None:
    update = chat.text(601, "/help")
    await chat.feed(update)
    await chat.feed(update)  # Telegram delivers it again
    assert len(chat.texts()) == 1
    assert await count(chat.db, BehaviourEvent, BehaviourEvent.type == "chat.help") == 1
    assert await count(chat.db, ProcessedUpdate, ProcessedUpdate.update_id == update.update_id) == 1


async def test_failed_update_is_marked_handled_and_its_work_undone(chat: Chat) -> None:
    calls: list[int] = []

    async def poison(message: Message) -> None:
        calls.append(message.message_id)
        raise RuntimeError("this update always crashes its handler")

    chat.dp.message.register(poison, lambda message: message.text == "/poison")
    update = chat.text(602, "/poison")
    await chat.feed(update)
    await chat.feed(update)
    assert len(calls) == 1  # not retried
    assert await count(chat.db, ProcessedUpdate, ProcessedUpdate.update_id == update.update_id) == 1
    assert await count(chat.db, Customer, Customer.telegram_id == 602) == 1  # a first contact is kept


async def test_an_update_whose_handler_commits_midway_is_still_marked_handled(db: Database) -> None:
    chat = Chat(db, staff_chat_id=-100777)
    chat.dp["handoff_desk"].bot = chat.bot  # as its start-up would (without its background loop)
    await chat.feed(chat.text(606, "/start"))
    update = chat.text(606, "/human")  # opening the conversation commits before the staff topic
    await chat.feed(update)
    await chat.feed(update)
    assert await count(chat.db, ProcessedUpdate, ProcessedUpdate.update_id == update.update_id) == 1
    assert await count(chat.db, Conversation) == 1
    _welcome, answer = chat.texts(606)  # and no apology for a failed update
    closed_prefix = t("en", "handoff.wait.closed", when="\0").split("\0")[0]
    assert answer == t("en", "handoff.wait.open", minutes=4) or answer.startswith(closed_prefix)


async def test_an_update_is_marked_handled_with_its_last_commit_not_a_midway_one(chat: Chat) -> None:
    """A crash after a midway commit must leave the redelivery to be handled."""
    marked_midway: list[int] = []

    async def two_steps(message: Message, session: AsyncSession) -> None:
        await session.commit()  # as an escalation does before opening the staff topic
        marked_midway.append(await count(chat.db, ProcessedUpdate, ProcessedUpdate.update_id == update_id))

    chat.dp.message.register(two_steps, lambda message: message.text == "/two")
    update = chat.text(608, "/two")
    update_id = update.update_id
    await chat.feed(update)
    assert marked_midway == [0]
    assert await count(chat.db, ProcessedUpdate, ProcessedUpdate.update_id == update_id) == 1


async def test_customer_and_routing_state_come_in_one_statement(chat: Chat) -> None:
    await chat.feed(chat.text(603, "/start"))
    with statements(chat.db) as seen:
        await chat.feed(chat.text(603, "/help"))
        await chat.feed(chat.tap(603, "root"))
    reads = [s for s in seen if s.startswith("SELECT")]
    # The customer with their open conversation, after-sales step and pressed message's delivery:
    # one SELECT per update, and no separate look-up of any of them.
    assert sum(s.startswith("SELECT customers.") for s in reads) == 2
    assert not [s for s in reads if s.startswith(("SELECT conversations", "SELECT aftersales_drafts",
                                                   "SELECT deliveries"))]
    # Besides: the de-dup check (SQLite) and the update's own writes, each update within five.
    assert len(seen) <= 10, seen
    assert len(chat.texts()) == 2  # the welcome and the help
    assert [name for name, _, _ in chat.session.sent[-2:]] == ["answerCallbackQuery", "editMessageText"]


async def test_a_conversation_opened_elsewhere_routes_the_next_message_to_staff(chat: Chat) -> None:
    await chat.feed(chat.text(604, "/start"))
    async with chat.db.session() as session:
        customer = (await session.exec(select(Customer).where(Customer.telegram_id == 604))).one()
        session.add(Conversation(customer_id=customer.id or 0, reason="button", opened_at=utcnow()))
    before = len(chat.texts())
    await chat.feed(chat.text(604, "is anyone there"))
    assert len(chat.texts()) == before  # relayed to staff: the bot itself stays quiet


async def test_a_button_on_a_proactive_message_counts_its_click_first(chat: Chat) -> None:
    """The click is found through the customer's state; events keep the order they happened in."""
    await chat.feed(chat.text(609, "/start"))
    now = utcnow()
    async with chat.db.session() as session:
        customer = (await session.exec(select(Customer).where(Customer.telegram_id == 609))).one()
        outbox = OutboxMessage(customer_id=customer.id, chat_id=609, lane="marketing", template="t",
                               params={}, journey_key="winback", status="sent", due_at=now, created_at=now)
        session.add(outbox)
        await session.flush()
        session.add(Delivery(outbox_id=outbox.id or 0, customer_id=customer.id, chat_id=609,
                             telegram_message_id=1, sent_at=now))  # the message chat.tap presses on
    await chat.feed(chat.tap(609, "root"))
    await chat.feed(chat.tap(609, "root"))  # pressed again: still one click
    async with chat.db.session() as session:
        events = (await session.exec(
            select(BehaviourEvent.type).where(BehaviourEvent.customer_id == customer.id,
                                              BehaviourEvent.type != "chat.start")
            .order_by(col(BehaviourEvent.id))
        )).all()
        delivery = (await session.exec(select(Delivery))).one()
    assert events == ["journey.clicked", "chat.menu", "chat.menu"]
    assert delivery.clicked_at is not None


async def test_no_filter_runs_in_a_worker_thread(chat: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    await chat.feed(chat.text(604, "do you sell oat milk"))  # the question index is built (in a thread) once
    hops: list[Any] = []
    to_thread = asyncio.to_thread

    async def counted(*args: Any, **kwargs: Any) -> Any:
        hops.append(args[0])
        return await to_thread(*args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    for update in (chat.text(605, "/start"), chat.text(605, "do you sell oat milk"),
                   chat.tap(605, "products"), chat.text(605, "/help")):
        await chat.feed(update)
    assert hops == []
    assert len(chat.texts()) >= 3


async def test_a_connection_the_database_dropped_is_replaced_before_use(chat: Chat) -> None:
    """A restart or an idle timeout kills pooled connections: the next update opens a new one."""
    await chat.feed(chat.text(607, "/start"))  # a connection now waits in the pool
    if chat.db.dialect == "postgresql":
        admin = await asyncpg.connect(chat.db.url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            killed = await admin.fetchval("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                          "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        finally:
            await admin.close()
        assert killed >= 1
        await asyncio.sleep(0.2)  # the pooled connection hears it was closed
    await chat.feed(chat.text(607, "/help"))
    assert chat.texts(607)[-1] == help_text("en")

