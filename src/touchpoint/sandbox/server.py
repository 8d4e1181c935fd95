"""The sandbox: a local Telegram Bot API emulator with simulated people and web pages.

Point a bot at it with ``TelegramAPIServer.from_base(sandbox_url)``; any token
``<digits>:<anything>`` works and the digits are the bot's user id.

    sandbox = Sandbox()
    url = await sandbox.start()              # http://127.0.0.1:<free port>
    sandbox.user(1001, "Ann", language_code="en")
    sandbox.send_text(1001, "/start ref_ABC") # queued for getUpdates / pushed to a webhook
    reply = await sandbox.wait_for_bot_message(1001)
    sandbox.press_button(1001, reply["message_id"], "menu:orders")

HTTP surface
------------
``GET|POST /bot<token>/<method>``     the Bot API (see ``bot_api.py`` for the methods)
``GET /file/bot<token>/<file_path>``  file downloads (after getFile)
``GET /`` and ``GET /staff``          the customer chat page and the staff group page
``/sandbox/api/...``                  JSON control API for the pages and out-of-process
                                      tests (routes listed in ``control_api.py``)

``Sandbox(state_dir=path)`` keeps its world on disk (``persist.py``): people, chats, topics, files
and the update counter survive a restart, as `touchpoint demo` needs; tests use the in-memory default.

Stored messages are Bot API Message dicts plus sandbox-only keys that start with an
underscore: ``_from_bot``, ``_edits``, ``_sent_at`` (clock time), ``_rev`` (change
cursor), ``_service`` (topic events), ``_keyboard`` (a reply keyboard or its removal,
which Telegram does not echo in Message) and ``_deleted``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

from touchpoint.sandbox import persist
from touchpoint.sandbox.bot_api import BotApi
from touchpoint.sandbox.control_api import ControlApi
from touchpoint.sandbox.files import TINY_OGG, TINY_PNG, StoredFile
from touchpoint.sandbox.formatting import detect_entities
from touchpoint.sandbox.state import (
    BusinessConnection,
    IssuedCallback,
    JsonDict,
    SandboxChat,
    SandboxState,
    SandboxUser,
    SendRecord,
    public,
)

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).with_name("static")
MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # Telegram's limit for bots
FOREIGN_CONTACT_OFFSET = 7_000_000_000


class Sandbox(SandboxState):
    """All state in memory; simulation, fault injection and inspection for tests."""

    def __init__(
        self,
        *,
        bot_username: str = "touchpoint_bot",
        bot_first_name: str = "Touchpoint",
        clock: Callable[[], float] = time.time,
        state_dir: Path | None = None,
    ) -> None:
        """``state_dir``: keep people, chats, files and the update counter there across restarts
        (restored now, saved while serving and on stop); None keeps everything in memory."""
        super().__init__(bot_username=bot_username, bot_first_name=bot_first_name, clock=clock)
        self.bot_api = BotApi(self)
        self.control_api = ControlApi(self)
        self.base_url: str | None = None
        self._runner: web.AppRunner | None = None
        self._callback_counter = 0
        self.state_dir = state_dir
        self.restored = persist.load(self, state_dir) if state_dir is not None else False
        self._saved = persist.signature(self)
        self._autosave: asyncio.Task[None] | None = None

    # ------------------------------------------------------------- serving

    def create_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
        app.router.add_route("*", "/bot{token}/{method}", self.bot_api.handle_http)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._download)
        self.control_api.register(app.router)
        app.router.add_get("/", _page("chat.html"))
        app.router.add_get("/staff", _page("staff.html"))
        app.router.add_static("/static", STATIC_DIR)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = a free port) and return the base URL."""
        self.closing = False
        self._runner = web.AppRunner(self.create_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        real_port = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{real_port}"
        if self.state_dir is not None and self._autosave is None:
            self._autosave = asyncio.create_task(self._autosave_loop())
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._on_shutdown(None)
        if self._autosave is not None:
            self._autosave.cancel()
            await asyncio.gather(self._autosave, return_exceptions=True)
            self._autosave = None
        self.save()

    def save(self) -> None:
        """Write the state to ``state_dir`` if anything changed since the last save."""
        if self.state_dir is None or persist.signature(self) == self._saved:
            return
        persist.save(self, self.state_dir)
        self._saved = persist.signature(self)

    async def _autosave_loop(self, every_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                self.save()
            except OSError:
                log.exception("sandbox: could not save its state to %s", self.state_dir)

    async def _on_shutdown(self, _app: web.Application | None) -> None:
        """Release long polls and stop webhook delivery so shutdown is quick."""
        self.closing = True
        self.updates_changed.fire()
        self.messages_changed.fire()
        await self.bot_api.webhook.stop()

    async def _download(self, request: web.Request) -> web.StreamResponse:
        stored = self.files_by_path.get(request.match_info["file_path"])
        if stored is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        return file_response(stored)

    # ------------------------------------------------------------- people

    def user(
        self,
        user_id: int,
        first_name: str = "Ann",
        language_code: str = "en",
        username: str | None = None,
        last_name: str | None = None,
    ) -> SandboxUser:
        """Register (or update) a person; their private chat id equals ``user_id``."""
        return self.upsert_user(
            user_id,
            first_name,
            language_code=language_code,
            username=username,
            last_name=last_name,
        )

    def send_text(
        self, user_id: int, text: str, *, reply_to_message_id: int | None = None
    ) -> JsonDict:
        """The person types ``text`` in their private chat (commands get bot_command entities)."""
        content: JsonDict = {"text": text}
        if entities := detect_entities(text):
            content["entities"] = entities
        return self._person_says(user_id, user_id, content, reply_to_message_id=reply_to_message_id)

    def press_button(
        self, user_id: int, message_id: int, callback_data: str, *, chat_id: int | None = None
    ) -> JsonDict:
        """Press an inline button under ``message_id`` (in ``chat_id``, default: private chat)."""
        user = self.known_user(user_id)
        chat = self._chat(user_id if chat_id is None else chat_id)
        message = chat.message(message_id)
        if message is None:
            raise ValueError(f"no message {message_id} in chat {chat.id}")
        self._callback_counter += 1
        query_id = str(4_000_000_000_000_000 + self._callback_counter)
        self.issued_callbacks[query_id] = IssuedCallback(chat.id, user_id, message_id)
        return self.emit_update(
            "callback_query",
            {
                "id": query_id,
                "from": user.as_user(),
                "message": public(message),
                "chat_instance": str(abs(chat.id) * 1_000_003 + 17),
                "data": callback_data,
            },
        )

    def share_contact(self, user_id: int, phone_number: str, own: bool = True) -> JsonDict:
        """Share a contact; ``own=False`` shares someone else's (a different user_id)."""
        user = self.known_user(user_id)
        contact: JsonDict = {"phone_number": phone_number}
        if own:
            user.phone_number = phone_number
            contact.update(first_name=user.first_name, user_id=user.id)
            if user.last_name:
                contact["last_name"] = user.last_name
        else:
            contact.update(first_name="Friend", user_id=FOREIGN_CONTACT_OFFSET + user.id)
        return self._person_says(user_id, user_id, {"contact": contact})

    def send_photo(
        self, user_id: int, data: bytes = TINY_PNG, caption: str | None = None
    ) -> JsonDict:
        return self._person_sends_file(user_id, user_id, "photo", data, caption=caption)

    def send_document(
        self,
        user_id: int,
        data: bytes = b"%PDF-1.4\n%sandbox\n",
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
    ) -> JsonDict:
        return self._person_sends_file(
            user_id,
            user_id,
            "document",
            data,
            caption=caption,
            file_name=file_name,
            mime_type=mime_type,
        )

    def send_voice(self, user_id: int, data: bytes = TINY_OGG, duration: int = 1) -> JsonDict:
        return self._person_sends_file(user_id, user_id, "voice", data, duration=duration)

    def send_sticker(self, user_id: int, emoji: str = "👍", data: bytes = TINY_PNG) -> JsonDict:
        return self._person_sends_file(user_id, user_id, "sticker", data, emoji=emoji)

    # ------------------------------------------------------------- staff

    def create_group(
        self,
        chat_id: int,
        title: str,
        is_forum: bool = True,
        admins: Iterable[int] = (),
        members: Iterable[int] = (),
        bot_is_admin: bool = True,
        bot_can_manage_topics: bool = True,
        creator: int | None = None,
    ) -> JsonDict:
        """Create a staff supergroup; unknown member ids become users named "Staff <id>"."""
        if chat_id >= 0:
            raise ValueError("supergroup ids are negative, e.g. -1001234567890")
        chat = SandboxChat(
            id=chat_id,
            type="supergroup",
            title=title,
            is_forum=is_forum,
            creator=creator,
            admins=list(admins),
            members=list(members),
            bot_is_admin=bot_is_admin,
            bot_can_manage_topics=bot_is_admin and bot_can_manage_topics,
        )
        for member_id in chat.all_members():
            self.known_user(member_id, f"Staff {member_id}")
        self.chats[chat_id] = chat
        return chat.as_chat()

    def staff_post(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        message_thread_id: int | None = None,
        *,
        reply_to_message_id: int | None = None,
    ) -> JsonDict:
        """A group member writes ``text`` in the group (in a forum topic if given)."""
        content: JsonDict = {"text": text}
        if entities := detect_entities(text):
            content["entities"] = entities
        return self._person_says(
            user_id,
            chat_id,
            content,
            thread_id=message_thread_id,
            reply_to_message_id=reply_to_message_id,
        )

    def staff_post_photo(
        self,
        chat_id: int,
        user_id: int,
        data: bytes = TINY_PNG,
        caption: str | None = None,
        message_thread_id: int | None = None,
    ) -> JsonDict:
        return self._person_sends_file(
            user_id, chat_id, "photo", data, caption=caption, thread_id=message_thread_id
        )

    def _person_sends_file(
        self,
        user_id: int,
        chat_id: int,
        kind: str,
        data: bytes,
        *,
        caption: str | None = None,
        thread_id: int | None = None,
        file_name: str | None = None,
        mime_type: str | None = None,
        duration: int | None = None,
        emoji: str | None = None,
    ) -> JsonDict:
        stored = self.store_file(kind, data, file_name=file_name, mime_type=mime_type)
        content: JsonDict = {kind: stored.as_media(duration=duration, emoji=emoji)}
        if caption:
            content["caption"] = caption
        return self._person_says(user_id, chat_id, content, thread_id=thread_id)

    def _person_says(
        self,
        user_id: int,
        chat_id: int,
        content: JsonDict,
        *,
        thread_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> JsonDict:
        """Store a person's message and emit its ``message`` update (the one place for both)."""
        user = self.known_user(user_id)
        chat = self._chat(chat_id)
        if chat.is_group and user_id not in chat.all_members():
            raise ValueError(f"user {user_id} is not a member of chat {chat_id}")
        if thread_id is not None and thread_id not in chat.topics:
            raise ValueError(f"no topic {thread_id} in chat {chat_id}")
        reply_to = None
        if reply_to_message_id is not None:
            reply_to = chat.message(reply_to_message_id)
            if reply_to is None:
                raise ValueError(f"no message {reply_to_message_id} in chat {chat_id}")
        if not chat.is_group:
            chat.blocked = False  # writing to a bot you blocked unblocks it, as on Telegram
        message = self.add_message(
            chat,
            sender=user.as_user(),
            from_bot=False,
            content=content,
            thread_id=thread_id,
            reply_to=reply_to,
        )
        return self.emit_update("message", public(message))

    def _chat(self, chat_id: int) -> SandboxChat:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise ValueError(f"unknown chat {chat_id}; call user() or create_group() first")
        return chat

    # ------------------------------------------------------------- business

    def connect_business(
        self, owner_id: int, owner_name: str = "Brewhaus (business account)", *,
        connection_id: str | None = None, can_reply: bool = True, language_code: str = "en",
    ) -> BusinessConnection:
        """The owner of a business account connects the bot to it (Telegram Business > Chatbots);
        the bot gets a ``business_connection`` update. Connecting again re-enables it."""
        owner = self.users.get(owner_id) or self.user(owner_id, owner_name, language_code)
        connection_id = connection_id or f"bc-{owner.id}"
        connection = self.business_connections.get(connection_id)
        if connection is None:
            connection = BusinessConnection(connection_id, owner.id, int(self.clock()))
            self.business_connections[connection_id] = connection
        connection.can_reply, connection.is_enabled = can_reply, True
        self._business_changed(connection)
        return connection

    def disconnect_business(self, connection_id: str) -> JsonDict:
        """The owner disconnects the bot: ``business_connection`` with ``is_enabled`` false."""
        connection = self._connection(connection_id)
        connection.is_enabled = False
        return self._business_changed(connection)

    def _business_changed(self, connection: BusinessConnection) -> JsonDict:
        self.business_edits += 1
        return self.emit_update("business_connection", connection.as_json(self.users[connection.owner_id]))

    def _connection(self, connection_id: str) -> BusinessConnection:
        connection = self.business_connections.get(connection_id)
        if connection is None:
            raise ValueError(f"unknown business connection {connection_id}")
        return connection

    def business_chat(self, connection_id: str, customer_id: int) -> SandboxChat:
        """The customer's chat with the business account (created on first use)."""
        self._connection(connection_id)
        customer = self.known_user(customer_id)
        key = (connection_id, customer.id)
        if key not in self.business_chats:
            self.business_chats[key] = SandboxChat(
                id=customer.id, type="private", user=customer, business_connection_id=connection_id
            )
        return self.business_chats[key]

    def business_text(self, connection_id: str, customer_id: int, text: str) -> JsonDict | None:
        """The customer writes to the business account. The bot hears of it while connected."""
        chat = self.business_chat(connection_id, customer_id)
        chat.last_incoming_at = self.clock()
        return self._business_says(chat, self.users[customer_id], _text_content(text))

    def owner_text(self, connection_id: str, customer_id: int, text: str) -> JsonDict | None:
        """The owner types in the customer's chat themselves (a person, not the bot)."""
        chat = self.business_chat(connection_id, customer_id)
        owner = self.users[self._connection(connection_id).owner_id]
        return self._business_says(chat, owner, _text_content(text))

    def _business_says(self, chat: SandboxChat, sender: SandboxUser, content: JsonDict) -> JsonDict | None:
        connection = self._connection(chat.business_connection_id or "")
        message = self.add_message(chat, sender=sender.as_user(), from_bot=False,
                                   content={**content, "business_connection_id": connection.id})
        if not connection.is_enabled:
            return None  # a disconnected bot hears nothing
        return self.emit_update("business_message", public(message))

    def business_press(self, connection_id: str, customer_id: int, message_id: int,
                       callback_data: str) -> JsonDict:
        """The customer presses an inline button under a bot message in the business chat."""
        chat = self.business_chat(connection_id, customer_id)
        message = chat.message(message_id)
        if message is None:
            raise ValueError(f"no message {message_id} in the business chat with {customer_id}")
        self._callback_counter += 1
        query_id = str(4_000_000_000_000_000 + self._callback_counter)
        self.issued_callbacks[query_id] = IssuedCallback(chat.id, customer_id, message_id)
        return self.emit_update("callback_query", {
            "id": query_id, "from": self.users[customer_id].as_user(), "message": public(message),
            "chat_instance": f"{connection_id}:{chat.id}", "data": callback_data,
        })

    def age_business_chat(self, connection_id: str, customer_id: int, seconds: float) -> None:
        """Move the customer's latest message ``seconds`` into the past (the 24-hour rule)."""
        chat = self.business_chat(connection_id, customer_id)
        if chat.last_incoming_at is not None:
            chat.last_incoming_at -= seconds

    def business_messages(self, connection_id: str, customer_id: int) -> list[JsonDict]:
        """The business chat as the customer sees it, in order."""
        chat = self.business_chat(connection_id, customer_id)
        return [copy.deepcopy(m) for m in chat.messages.values() if not m.get("_deleted")]

    async def wait_for_business_message(
        self, connection_id: str, customer_id: int, *, after_message_id: int = 0,
        timeout: float = 5.0, predicate: Callable[[JsonDict], bool] | None = None,
    ) -> JsonDict:
        """First message the bot sent in the business chat after ``after_message_id``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for message in self.business_messages(connection_id, customer_id):
                if (message["message_id"] > after_message_id and message["_from_bot"]
                        and (predicate is None or predicate(message))):
                    return message
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no bot message in the business chat with {customer_id}")
            await self.messages_changed.wait(remaining)

    # --------------------------------------------------------------- faults

    def inject_retry_after(self, chat_id: int, retry_after: int, times: int = 1) -> None:
        """The next ``times`` send-type calls to ``chat_id`` get 429 retry_after."""
        self.set_retry_after(chat_id, retry_after, times)

    def block(self, chat_id: int) -> None:
        """The person blocks the bot (or kicks it from a group): every send gets 403."""
        self._chat(chat_id).blocked = True

    def unblock(self, chat_id: int) -> None:
        self._chat(chat_id).blocked = False

    def set_group_limit(self, max_messages: int | None, per_seconds: float = 60.0) -> None:
        """Sliding-window limit per supergroup (Telegram: ~20/min); None or 0 disables it."""
        self.configure_group_limit((max_messages, per_seconds) if max_messages else None)

    def set_random_retry_after(
        self, probability: float, retry_after: int = 1, seed: int | None = None
    ) -> None:
        """Refuse each send with 429 at this probability (chaos for benchmarks)."""
        self.set_chaos(probability, retry_after, seed)

    def set_latency(self, seconds: float) -> None:
        """Delay every Bot API call by ``seconds``."""
        self.latency = seconds

    # ----------------------------------------------------------- inspection

    def messages(self, chat_id: int, thread_id: int | None = None) -> list[JsonDict]:
        """Bot and people messages in order, as they are now (edited, not deleted)."""
        return [copy.deepcopy(m) for m in self.iter_messages(chat_id, thread_id)]

    def drafts(self, chat_id: int) -> list[JsonDict]:
        """What the bot streamed into a private chat with sendMessageDraft, in order."""
        return copy.deepcopy(self.message_drafts.get(chat_id, []))

    def bot_messages(self, chat_id: int, thread_id: int | None = None) -> list[JsonDict]:
        """Messages the bot sent (topic service messages excluded)."""
        return [
            copy.deepcopy(m)
            for m in self.iter_messages(chat_id, thread_id)
            if m["_from_bot"] and not m["_service"]
        ]

    async def wait_for_bot_message(
        self,
        chat_id: int,
        *,
        timeout: float = 5.0,
        predicate: Callable[[JsonDict], bool] | None = None,
        after_message_id: int = 0,
        thread_id: int | None = None,
    ) -> JsonDict:
        """First bot message with id > ``after_message_id`` matching ``predicate``.

        Messages are judged in their current state and re-judged on every change,
        so waiting for an edit of message N means ``after_message_id=N - 1`` and a
        predicate on the new text (or ``_edits``). Raises TimeoutError.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            # Woken by every message in any chat: copy only the candidates, not the whole chat.
            for live in self.iter_messages(chat_id, thread_id):
                if live["message_id"] <= after_message_id or not live["_from_bot"] or live["_service"]:
                    continue
                message = copy.deepcopy(live)
                if predicate is None or predicate(message):
                    return message
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = self.bot_messages(chat_id, thread_id)[-5:]
                seen = [(m["message_id"], m.get("text") or m.get("caption")) for m in recent]
                raise TimeoutError(
                    f"no matching bot message in chat {chat_id} after id {after_message_id} "
                    f"within {timeout}s; last bot messages: {seen}"
                )
            await self.messages_changed.wait(remaining)

    def reply_keyboard(self, chat_id: int) -> JsonDict | None:
        """The reply keyboard the person currently sees (None if none or removed)."""
        keyboard = self.current_keyboard(chat_id)
        return copy.deepcopy(keyboard)

    def topics(self, chat_id: int) -> list[JsonDict]:
        """Forum topics of a group: ForumTopic fields plus ``is_closed``."""
        return [
            {**topic.as_forum_topic(), "is_closed": topic.is_closed}
            for topic in self._chat(chat_id).topics.values()
        ]

    @property
    def webhook_info(self) -> JsonDict:
        return self.describe_webhook()

    @property
    def updates(self) -> list[JsonDict]:
        """Every update ever emitted, in order."""
        return [copy.deepcopy(update) for update in self.update_log.values()]

    def sends_to(self, chat_id: int, outcome: str | None = None) -> list[SendRecord]:
        """``send_log`` entries for one chat (optionally only one outcome: ok/429/403)."""
        return [
            record
            for record in self.send_log
            if record.chat_id == chat_id and (outcome is None or record.outcome == outcome)
        ]


def _text_content(text: str) -> JsonDict:
    content: JsonDict = {"text": text}
    if entities := detect_entities(text):
        content["entities"] = entities
    return content


def file_response(stored: StoredFile) -> web.StreamResponse:
    if stored.url:
        raise web.HTTPFound(stored.url)
    return web.Response(body=stored.data, content_type=stored.mime_type)


def _page(name: str) -> Callable[[web.Request], Any]:
    async def serve(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / name)

    return serve
