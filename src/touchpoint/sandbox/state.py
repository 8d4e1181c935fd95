"""In-memory world of the sandbox: people, chats, messages, files, updates and faults.

Everything here is plain data plus the few primitives both the Bot API (bot side)
and the simulation helpers (people side) build on: store a message, edit it,
emit an update, admit a send through the fault injectors. No HTTP lives here.
"""

from __future__ import annotations

import asyncio
import copy
import math
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from touchpoint.sandbox.files import StoredFile, make_file

JsonDict = dict[str, Any]

#: Update types delivered when the bot did not ask for specific ones (as Telegram does).
DEFAULT_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
    }
)
#: Telegram's rule: a business bot may write only in chats with an incoming message this recent.
BUSINESS_REPLY_WINDOW_S = 24 * 3600
TOPIC_ICON_COLOR = 0x6FB9F0


class BotApiError(Exception):
    """A Telegram error reply: HTTP status == error_code, description worded like Telegram."""

    def __init__(
        self, error_code: int, description: str, parameters: JsonDict | None = None
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def as_json(self) -> JsonDict:
        body: JsonDict = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(reason: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {reason}")


def retry_after(seconds: int) -> BotApiError:
    return BotApiError(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})


class Signal:
    """Wakes every current waiter when fired.

    Unlike ``asyncio.Condition.notify`` it can be fired from plain (sync) code, which
    is what the simulation helpers are.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float | None = None) -> bool:
        """True if fired, False when ``seconds`` passed first (None: wait for ever)."""
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            return False
        return True


class SendRecord(NamedTuple):
    """One send-type Bot API call and what the sandbox answered ("ok", "429" or "403")."""

    at: float
    chat_id: int
    method: str
    outcome: str


@dataclass
class SandboxUser:
    """A simulated Telegram user; their private chat with the bot has the same id."""

    id: int
    first_name: str
    language_code: str = "en"
    username: str | None = None
    last_name: str | None = None
    phone_number: str | None = None

    def as_user(self) -> JsonDict:
        user: JsonDict = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user


@dataclass
class Topic:
    message_thread_id: int
    name: str
    icon_color: int = TOPIC_ICON_COLOR
    icon_custom_emoji_id: str | None = None
    is_closed: bool = False

    def as_forum_topic(self) -> JsonDict:
        topic: JsonDict = {
            "message_thread_id": self.message_thread_id,
            "name": self.name,
            "icon_color": self.icon_color,
        }
        if self.icon_custom_emoji_id:
            topic["icon_custom_emoji_id"] = self.icon_custom_emoji_id
        return topic


@dataclass
class SandboxChat:
    """A private chat (with ``user``) or a staff supergroup (with members and topics)."""

    id: int
    type: str  # "private" | "supergroup"
    user: SandboxUser | None = None
    title: str | None = None
    is_forum: bool = False
    creator: int | None = None
    admins: list[int] = field(default_factory=list)
    members: list[int] = field(default_factory=list)
    bot_is_admin: bool = False
    bot_can_manage_topics: bool = False
    blocked: bool = False
    messages: dict[int, JsonDict] = field(default_factory=dict)
    last_message_id: int = 0
    topics: dict[int, Topic] = field(default_factory=dict)
    #: A customer's chat with a business account (the owner's side of it), not with the bot.
    business_connection_id: str | None = None
    last_incoming_at: float | None = None  # the customer's latest message (the 24-hour rule)

    @property
    def is_group(self) -> bool:
        return self.type != "private"

    def as_chat(self) -> JsonDict:
        if self.user is not None:
            chat: JsonDict = {"id": self.id, "type": "private", "first_name": self.user.first_name}
            if self.user.last_name:
                chat["last_name"] = self.user.last_name
            if self.user.username:
                chat["username"] = self.user.username
            return chat
        chat = {"id": self.id, "type": self.type, "title": self.title or ""}
        if self.is_forum:
            chat["is_forum"] = True
        return chat

    def message(self, message_id: int) -> JsonDict | None:
        """The live (not deleted) message with this id."""
        found = self.messages.get(message_id)
        return None if found is None or found.get("_deleted") else found

    def all_members(self) -> list[int]:
        ordered = ([self.creator] if self.creator is not None else []) + self.admins + self.members
        return list(dict.fromkeys(ordered))


@dataclass
class BusinessConnection:
    """A business account (``owner_id``, a person) lent to the bot."""

    id: str
    owner_id: int
    date: int
    can_reply: bool = True
    is_enabled: bool = True

    def as_json(self, owner: SandboxUser) -> JsonDict:
        return {
            "id": self.id,
            "user": owner.as_user(),
            "user_chat_id": owner.id,
            "date": self.date,
            "can_reply": self.can_reply,
            "rights": {"can_reply": True, "can_read_messages": True} if self.can_reply else {},
            "is_enabled": self.is_enabled,
        }


@dataclass
class Webhook:
    url: str
    bot_id: int
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(eq=False)  # identity matters: a redelivered copy holds the same update
class PendingUpdate:
    update: JsonDict
    #: A redelivered copy survives an offset that already confirmed its id, until sent once.
    protected: bool = False


@dataclass
class IssuedCallback:
    chat_id: int
    user_id: int
    message_id: int
    answered: bool = False


def public(message: JsonDict) -> JsonDict:
    """The Bot API view of a stored message: without the sandbox's ``_meta`` keys."""
    return {key: copy.deepcopy(value) for key, value in message.items() if not key.startswith("_")}


class SandboxState:
    """All sandbox data and the primitives that change it (see module docstring)."""

    def __init__(
        self,
        *,
        bot_username: str = "touchpoint_bot",
        bot_first_name: str = "Touchpoint",
        clock: Callable[[], float],
    ) -> None:
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.clock = clock
        #: Bot user id, learnt from the digits of the last token that called the API.
        self.bot_id: int | None = None

        self.users: dict[int, SandboxUser] = {}
        self.chats: dict[int, SandboxChat] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}

        self.update_log: dict[int, JsonDict] = {}
        self.pending: list[PendingUpdate] = []
        self.allowed_updates: list[str] | None = None
        self.webhook: Webhook | None = None
        self.poll_generation = 0
        self._last_update_id = 0
        self.user_edits = 0  # bumped by upsert_user: a change worth saving with no message

        self.send_log: list[SendRecord] = []
        self.callback_answers: list[JsonDict] = []
        #: sendMessageDraft calls per private chat, in order: {"draft_id", "text"} (ephemeral in
        #: Telegram, kept here so tests can see what streamed before the final message).
        self.message_drafts: dict[int, list[JsonDict]] = {}
        self.issued_callbacks: dict[str, IssuedCallback] = {}
        self.commands: dict[tuple[str, str], list[JsonDict]] = {}
        self.business_connections: dict[str, BusinessConnection] = {}
        #: (connection id, customer id) → the customer's chat with that business account.
        self.business_chats: dict[tuple[str, int], SandboxChat] = {}
        self.business_edits = 0  # bumped when a connection changes (worth saving)

        self.latency = 0.0
        self._retry_after: dict[int, deque[int]] = {}
        self._group_limit: tuple[int, float] | None = None
        self._group_windows: dict[int, deque[float]] = {}
        self._chaos: tuple[float, int, random.Random] | None = None

        #: Monotonic revision, bumped on every message change (the web pages' cursor).
        self.rev = 0
        self.messages_changed = Signal()
        self.updates_changed = Signal()
        self.closing = False

    # ---------------------------------------------------------------- identities

    def bot_user(self, bot_id: int | None = None) -> JsonDict:
        return {
            "id": bot_id if bot_id is not None else (self.bot_id or 0),
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def upsert_user(
        self,
        user_id: int,
        first_name: str,
        *,
        language_code: str = "en",
        username: str | None = None,
        last_name: str | None = None,
    ) -> SandboxUser:
        """Create or update a user and their private chat."""
        user = self.users.get(user_id)
        if user is None:
            user = self.users[user_id] = SandboxUser(user_id, first_name)
        user.first_name = first_name
        user.language_code = language_code
        user.username = username
        user.last_name = last_name
        self.user_edits += 1
        if user_id not in self.chats:
            self.chats[user_id] = SandboxChat(id=user_id, type="private", user=user)
        return user

    def known_user(self, user_id: int, default_name: str = "Ann") -> SandboxUser:
        """The user, registering them with a default name if the sandbox never saw them."""
        return self.users.get(user_id) or self.upsert_user(user_id, default_name)

    def resolve_chat(self, chat_id: int | str) -> SandboxChat:
        """Chat by numeric id or ``@username``; 400 "chat not found" like Telegram."""
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            for user in self.users.values():
                if user.username and user.username.lower() == chat_id[1:].lower():
                    return self.chats[user.id]
            raise bad_request("chat not found")
        try:
            chat = self.chats.get(int(chat_id))
        except ValueError:
            chat = None
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def business_chat_for_bot(self, connection_id: str, chat_id: int | str, *, sending: bool) -> SandboxChat:
        """The business chat a bot call names, refused the way Telegram refuses it: an unknown or
        disabled connection, no right to reply, and (for new messages) no message from the
        customer within the last 24 hours."""
        connection = self.business_connections.get(connection_id)
        if connection is None:
            raise bad_request("BUSINESS_CONNECTION_INVALID")
        if not connection.is_enabled:
            raise bad_request("BUSINESS_CONNECTION_NOT_ALLOWED")
        if not connection.can_reply:
            raise BotApiError(403, "Forbidden: the bot has no right to reply in this business account")
        try:
            chat = self.business_chats.get((connection_id, int(chat_id)))
        except ValueError:
            chat = None
        if chat is None:
            raise bad_request("chat not found")
        recent = chat.last_incoming_at is not None and (
            self.clock() - chat.last_incoming_at < BUSINESS_REPLY_WINDOW_S
        )
        if sending and not recent:
            raise bad_request("BUSINESS_PEER_USAGE_MISSING")
        return chat

    # ----------------------------------------------------------------- messages

    def add_message(
        self,
        chat: SandboxChat,
        *,
        sender: JsonDict,
        from_bot: bool,
        content: JsonDict,
        thread_id: int | None = None,
        reply_markup: JsonDict | None = None,
        reply_to: JsonDict | None = None,
        service: bool = False,
    ) -> JsonDict:
        """Store a new message; the one place a Message dict is assembled.

        Only inline keyboards belong to a Telegram Message; a reply keyboard (or its
        removal) is kept in ``_keyboard`` for the chat page.
        """
        chat.last_message_id += 1
        now = self.clock()
        message: JsonDict = {
            "message_id": chat.last_message_id,
            "from": copy.deepcopy(sender),
            "chat": chat.as_chat(),
            "date": int(now),
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if reply_to is not None:
            message["reply_to_message"] = public(reply_to)
        message.update(copy.deepcopy(content))
        if reply_markup is not None and "inline_keyboard" in reply_markup:
            message["reply_markup"] = copy.deepcopy(reply_markup)
        elif reply_markup is not None:
            message["_keyboard"] = copy.deepcopy(reply_markup)
        message.update({"_from_bot": from_bot, "_edits": 0, "_sent_at": now, "_service": service})
        chat.messages[message["message_id"]] = message
        self._touch(message)
        return message

    def edit_message(self, message: JsonDict, changes: JsonDict) -> JsonDict:
        """Apply an edit (a None value removes the field), stamping ``edit_date``."""
        for key, value in changes.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = copy.deepcopy(value)
        message["edit_date"] = int(self.clock())
        message["_edits"] += 1
        self._touch(message)
        return message

    def delete_message(self, message: JsonDict) -> None:
        message["_deleted"] = True
        self._touch(message)

    def _touch(self, message: JsonDict) -> None:
        self.rev += 1
        message["_rev"] = self.rev
        self.messages_changed.fire()

    def iter_messages(
        self, chat_id: int, thread_id: int | None = None, *, deleted: bool = False
    ) -> Iterator[JsonDict]:
        chat = self.chats.get(chat_id)
        if chat is None:
            return
        for message in chat.messages.values():
            if message.get("_deleted") and not deleted:
                continue
            if thread_id is None or message.get("message_thread_id") == thread_id:
                yield message

    def current_keyboard(self, chat_id: int) -> JsonDict | None:
        """The reply keyboard a person would now see under the input field."""
        keyboard: JsonDict | None = None
        for message in self.iter_messages(chat_id):
            if message["_from_bot"] and "_keyboard" in message:
                markup = message["_keyboard"]
                keyboard = markup if "keyboard" in markup else None
            elif not message["_from_bot"] and keyboard and keyboard.get("one_time_keyboard"):
                keyboard = None
        return keyboard

    # -------------------------------------------------------------------- files

    def store_file(
        self,
        kind: str,
        data: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        url: str | None = None,
    ) -> StoredFile:
        stored = make_file(
            len(self.files) + 1, kind, data, file_name=file_name, mime_type=mime_type, url=url
        )
        self.files[stored.file_id] = stored
        self.files_by_path[stored.file_path] = stored
        return stored

    # ------------------------------------------------------------------ updates

    @property
    def last_update_id(self) -> int:
        return self._last_update_id

    def advance_update_id(self, update_id: int) -> None:
        """Number the next update above ``update_id`` (never goes back): a restarted sandbox must
        not reuse ids a bot already recorded as handled."""
        self._last_update_id = max(self._last_update_id, update_id)

    def emit_update(self, kind: str, payload: JsonDict) -> JsonDict:
        """Create an update and queue it, unless the bot's allowed_updates exclude its type."""
        self._last_update_id += 1
        update = {"update_id": self._last_update_id, kind: copy.deepcopy(payload)}
        self.update_log[update["update_id"]] = update
        if kind in self.wanted_update_types():
            self.pending.append(PendingUpdate(update))
            self.updates_changed.fire()
        return copy.deepcopy(update)

    def redeliver(self, update_id: int) -> JsonDict:
        update = self.update_log.get(update_id)
        if update is None:
            raise KeyError(f"no update {update_id}")
        self.pending.append(PendingUpdate(update, protected=True))
        self.updates_changed.fire()
        return copy.deepcopy(update)

    def wanted_update_types(self) -> frozenset[str]:
        chosen = self.webhook.allowed_updates if self.webhook else self.allowed_updates
        return frozenset(chosen) if chosen else DEFAULT_UPDATE_TYPES

    def confirm_updates(self, offset: int | None) -> None:
        """Forget updates confirmed by ``offset`` (negative: keep only the last -offset)."""
        if not offset:
            return
        if offset < 0:
            del self.pending[: max(0, len(self.pending) + offset)]
            return
        self.pending = [
            entry
            for entry in self.pending
            if entry.update["update_id"] >= offset or entry.protected
        ]

    def take_updates(self, limit: int) -> list[JsonDict]:
        """The next updates for getUpdates; they stay queued until confirmed."""
        batch = self.pending[:limit]
        for entry in batch:
            entry.protected = False
        return [copy.deepcopy(entry.update) for entry in batch]

    def drop_pending_updates(self) -> None:
        self.pending.clear()

    def describe_webhook(self) -> JsonDict:
        """getWebhookInfo's answer."""
        info: JsonDict = {
            "url": self.webhook.url if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.pending),
        }
        if self.webhook is not None:
            info["max_connections"] = self.webhook.max_connections
            if self.webhook.allowed_updates:
                info["allowed_updates"] = list(self.webhook.allowed_updates)
            if self.webhook.last_error_date is not None:
                info["last_error_date"] = self.webhook.last_error_date
                info["last_error_message"] = self.webhook.last_error_message
        return info

    # ------------------------------------------------------------------- faults

    def set_retry_after(self, chat_id: int, seconds: int, times: int) -> None:
        self._retry_after.setdefault(chat_id, deque()).extend([seconds] * times)

    def configure_group_limit(self, limit: tuple[int, float] | None) -> None:
        self._group_limit = limit
        self._group_windows.clear()

    def set_chaos(self, probability: float, seconds: int, seed: int | None) -> None:
        self._chaos = (probability, seconds, random.Random(seed)) if probability > 0 else None

    def admit_send(self, chat: SandboxChat, method: str, *, new_message: bool) -> None:
        """Gate every send-type call through the fault injectors and log the outcome.

        Order: blocked (403), injected 429s, random chaos 429, then the supergroup
        sliding-window limit (new messages only). Raises BotApiError when refused.
        """
        now = self.clock()
        try:
            self._check_faults(chat, now, new_message=new_message)
        except BotApiError as error:
            self.send_log.append(SendRecord(now, chat.id, method, str(error.error_code)))
            raise
        if new_message and chat.is_group and self._group_limit is not None:
            self._group_windows.setdefault(chat.id, deque()).append(now)
        self.send_log.append(SendRecord(now, chat.id, method, "ok"))

    def _check_faults(self, chat: SandboxChat, now: float, *, new_message: bool) -> None:
        if chat.blocked:
            raise self.blocked_error(chat)
        injected = self._retry_after.get(chat.id)
        if injected:
            raise retry_after(injected.popleft())
        if self._chaos is not None:
            probability, seconds, rng = self._chaos
            if rng.random() < probability:
                raise retry_after(seconds)
        if new_message and chat.is_group and self._group_limit is not None:
            max_messages, per_seconds = self._group_limit
            window = self._group_windows.setdefault(chat.id, deque())
            while window and window[0] <= now - per_seconds:
                window.popleft()
            if len(window) >= max_messages:
                raise retry_after(max(1, math.ceil(window[0] + per_seconds - now)))

    @staticmethod
    def blocked_error(chat: SandboxChat) -> BotApiError:
        if chat.is_group:
            return BotApiError(403, "Forbidden: bot was kicked from the supergroup chat")
        return BotApiError(403, "Forbidden: bot was blocked by the user")

    # ------------------------------------------------------------------ members

    def chat_member(self, chat: SandboxChat, user_id: int, bot_id: int) -> JsonDict:
        """ChatMember for ``user_id`` as getChatMember answers it."""
        if user_id == bot_id:
            bot = self.bot_user(bot_id)
            if chat.is_group and chat.bot_is_admin:
                return _administrator(bot, can_manage_topics=chat.bot_can_manage_topics)
            return {"status": "member", "user": bot}
        user = self.users.get(user_id)
        if user is None:
            raise bad_request("user not found")
        if not chat.is_group:
            status = "member" if user_id == chat.id else "left"
            return {"status": status, "user": user.as_user()}
        if user_id == chat.creator:
            return {"status": "creator", "user": user.as_user(), "is_anonymous": False}
        if user_id in chat.admins:
            return _administrator(user.as_user(), can_manage_topics=True)
        status = "member" if user_id in chat.members else "left"
        return {"status": status, "user": user.as_user()}


def _administrator(user: JsonDict, *, can_manage_topics: bool) -> JsonDict:
    rights = [
        "can_manage_chat",
        "can_delete_messages",
        "can_manage_video_chats",
        "can_restrict_members",
        "can_change_info",
        "can_invite_users",
        "can_post_stories",
        "can_edit_stories",
        "can_delete_stories",
        "can_pin_messages",
    ]
    member: JsonDict = {
        "status": "administrator",
        "user": user,
        "can_be_edited": False,
        "is_anonymous": False,
        "can_promote_members": False,
        "can_send_welcome_messages": False,
        "can_manage_topics": can_manage_topics,
    }
    member.update(dict.fromkeys(rights, True))
    return member
