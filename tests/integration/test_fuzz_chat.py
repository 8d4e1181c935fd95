"""Fuzzing the chat front: any callback data, through the real dispatcher, gets an answer and
never the internal-error apology; any webhook body gets no 5xx and leaves no traceback.

Kept short for CI (max_examples) — a few seconds each."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from itertools import count
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.filters.callback_data import CallbackData
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from bot.app import create_dispatcher
from bot.replies import EditsNotModified, PatientReplies
from bot.webhook import WebhookHandler
from touchpoint.config import SANDBOX_TOKEN, load_settings
from touchpoint.db import Database
from touchpoint.i18n import get_translator
from touchpoint.seed.demo import seed_demo

t = get_translator()
GROUP = -1009876543210
STAFF = 77
USER = 4242
APOLOGY = t("en", "error.apology", code="")[:15]
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class FakeTelegram(BaseSession):
    """Answers every Bot API call in memory (as Telegram would, shape-wise) and remembers it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.ids = count(1)

    async def make_request(self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None) -> Any:
        name = method.__api_method__
        self.calls.append((name, method.model_dump(exclude_none=True)))
        chat_id = getattr(method, "chat_id", USER)
        private = isinstance(chat_id, int) and chat_id > 0
        chat = {"id": chat_id, "type": "private" if private else "supergroup"}
        result: Any = True
        if name in ("sendMessage", "editMessageText", "sendPhoto", "copyMessage", "editMessageReplyMarkup"):
            text = getattr(method, "text", "")
            result = {"message_id": next(self.ids), "date": 0, "chat": chat, "text": text}
            if name == "copyMessage":
                result = {"message_id": result["message_id"]}
        elif name == "createForumTopic":
            result = {"message_thread_id": next(self.ids), "name": method.name, "icon_color": 0}
        elif name == "getChatMember":
            user_id = getattr(method, "user_id", 0)
            result = {"status": "member" if user_id == STAFF else "left",
                      "user": {"id": user_id, "is_bot": False, "first_name": "S"}}
        elif name == "getMe":
            result = {"id": 1, "is_bot": True, "first_name": "Bot", "username": "touchpoint_bot"}
        return self.check_response(bot, method, 200, json.dumps({"ok": True, "result": result})).result

    async def close(self) -> None:
        return None

    async def stream_content(self, *args: Any, **kwargs: Any) -> AsyncIterator[bytes]:  # pragma: no cover
        raise NotImplementedError
        yield b""


class Front:
    def __init__(self, db: Database) -> None:
        self.settings = load_settings(_env_file=None, database_url=db.url, bot_token=SecretStr(SANDBOX_TOKEN),
                                      staff_chat_id=GROUP)
        self.telegram = FakeTelegram()
        self.bot = Bot(SANDBOX_TOKEN, session=self.telegram)
        self.bot.session.middleware(EditsNotModified())
        self.bot.session.middleware(PatientReplies())
        self.dp: Dispatcher = create_dispatcher(self.settings, db)
        self.dp["handoff_desk"].bot = self.bot
        self.update_ids = count(1)

    def press(self, data: str, *, in_group: bool, user_id: int) -> Update:
        chat = {"id": GROUP, "type": "supergroup", "is_forum": True} if in_group else \
            {"id": user_id, "type": "private"}
        return Update.model_validate({
            "update_id": next(self.update_ids),
            "callback_query": {
                "id": f"q{next(self.update_ids)}", "chat_instance": "1", "data": data,
                "from": {"id": user_id, "is_bot": False, "first_name": "Fuzz", "language_code": "en"},
                "message": {"message_id": 1, "date": 0, "chat": chat, "text": "menu"},
            },
        }, context={"bot": self.bot})


@pytest.fixture
async def front(sqlite_db: Database) -> Front:
    await seed_demo(sqlite_db)
    return Front(sqlite_db)


def _prefixes() -> list[str]:
    found, todo = set(), list(CallbackData.__subclasses__())
    while todo:
        kind = todo.pop()
        todo += kind.__subclasses__()
        if getattr(kind, "__prefix__", None):
            found.add(kind.__prefix__)
    return sorted(found)


PREFIXES = _prefixes()
FIELD = st.one_of(st.text(max_size=8), st.integers(-10**12, 10**12).map(str),
                  st.sampled_from(["", "0", "1", "99999", "en", "xx", "csat", "close", "claim", "root",
                                   "human", "espresso", "ESP-001", "confirm", "rate", "-1", "1e9"]))
KNOWN = st.builds(lambda prefix, fields: ":".join([prefix, *fields]),
                  st.sampled_from(PREFIXES), st.lists(FIELD, max_size=4))
DATA = st.one_of(KNOWN, st.text(min_size=1, max_size=64)).filter(lambda d: 0 < len(d.encode()) <= 64)


@FUZZ
@given(data=DATA, in_group=st.booleans(), user_id=st.sampled_from([USER, STAFF, 5151]))
async def test_every_callback_is_answered_without_an_apology(
    front: Front, data: str, in_group: bool, user_id: int
) -> None:
    assert len(PREFIXES) > 10
    update = front.press(data, in_group=in_group, user_id=user_id)
    before = len(front.telegram.calls)
    await front.dp.feed_update(front.bot, update)  # raises if anything escaped the error handlers
    calls = front.telegram.calls[before:]
    query_id = update.callback_query.id if update.callback_query else ""
    assert [c for c in calls if c[0] == "answerCallbackQuery" and c[1]["callback_query_id"] == query_id], \
        (data, [c[0] for c in calls])
    assert not [c for c in calls if str(c[1].get("text", "")).startswith(APOLOGY)], data


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
UPDATE_KEYS = ["message", "edited_message", "callback_query", "my_chat_member", "chat_member",
               "business_message", "inline_query", "channel_post"]
UPDATE_SHAPED = st.builds(
    lambda update_id, key, body: {"update_id": update_id, key: body},
    st.one_of(st.integers(), st.text(max_size=5)), st.sampled_from(UPDATE_KEYS),
    st.one_of(JSON, st.fixed_dictionaries({
        "message_id": st.integers(), "date": st.integers(0, 2**31),
        "chat": st.fixed_dictionaries({"id": st.integers(-10**13, 10**13),
                                       "type": st.sampled_from(["private", "supergroup", "group", "x"])}),
        "from": st.fixed_dictionaries({"id": st.integers(1, 10**10), "is_bot": st.booleans(),
                                       "first_name": st.text(max_size=8)}),
        "text": st.text(max_size=20), "data": st.text(max_size=20), "id": st.text(max_size=5),
        "chat_instance": st.text(max_size=3),
    })),
)
BODIES = st.one_of(JSON.map(json.dumps), UPDATE_SHAPED.map(json.dumps), st.binary(max_size=40))


@FUZZ
@given(body=BODIES)
async def test_webhook_bodies_get_no_5xx_and_leave_no_traceback(
    front: Front, body: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "fuzz-secret"
    handler = WebhookHandler(front.dp, front.bot, secret)
    app = web.Application()
    app.router.add_post("/hook", handler.handle)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        async with TestClient(TestServer(app)) as client:
            response = await client.post("/hook", data=body, headers={
                "X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"})
            assert response.status < 500, body
            for task in list(handler._background_feed_update_tasks):
                await task
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
