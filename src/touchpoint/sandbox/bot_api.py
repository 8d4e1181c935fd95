"""The Bot API surface: ``/bot<token>/<method>`` requests → SandboxState changes.

Parameters arrive the way Telegram accepts them (query string, JSON body,
urlencoded or multipart form where nested objects are JSON strings and files are
parts referenced as ``attach://<name>``). Each handler validates first, then passes
the send through ``SandboxState.admit_send`` (faults, log), then changes state,
so a refused call never leaves half a message behind.

Only the methods Touchpoint's bot calls are served (an unknown method answers 404 "Not Found",
as Telegram does): getMe, getUpdates, set/delete/getWebhook(Info), sendMessage, sendMessageDraft, sendPhoto,
sendDocument, copyMessage, editMessageText/Caption/ReplyMarkup, deleteMessage,
answerCallbackQuery, setMyCommands, create/close/reopen/deleteForumTopic, getChat,
getChatMember, getFile and getBusinessConnection. Sends and edits with ``business_connection_id``
go to the customer's chat with that business account, under Telegram's rules (see
``SandboxState.business_chat_for_bot``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from touchpoint.sandbox.files import StoredFile
from touchpoint.sandbox.formatting import EntityParseError, parse_text
from touchpoint.sandbox.params import Params, Upload, read_params
from touchpoint.sandbox.state import (
    TOPIC_ICON_COLOR,
    BotApiError,
    JsonDict,
    SandboxChat,
    SandboxState,
    Topic,
    Webhook,
    bad_request,
    public,
)
from touchpoint.sandbox.webhook import WebhookDelivery

log = logging.getLogger(__name__)

TOKEN_RE = re.compile(r"(\d+):(.+)")
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_TEXT_BUTTONS = (
    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
)
_MEDIA_KINDS = ("photo", "document", "voice", "sticker")
_CONTENT_KEYS = ("text", "entities", "caption", "caption_entities", "contact", *_MEDIA_KINDS)


@dataclass
class Call:
    """One Bot API call: who is calling, which method (lower-cased) and with what."""

    bot: JsonDict
    method: str
    params: Params

    @property
    def bot_id(self) -> int:
        return int(self.bot["id"])


Handler = Callable[["BotApi", Call], Awaitable[Any]]
_HANDLERS: dict[str, Handler] = {}


def method(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler under Telegram method names (matched case-insensitively)."""

    def register(handler: Handler) -> Handler:
        for name in names:
            _HANDLERS[name.lower()] = handler
        return handler

    return register


def _require_chat_admin(chat: SandboxChat, reason: str) -> None:
    if chat.is_group and not (chat.bot_is_admin and chat.bot_can_manage_topics):
        raise bad_request(reason)


class BotApi:
    """Handlers for the Bot API methods the sandbox emulates."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.webhook = WebhookDelivery(state, self.call)

    # ------------------------------------------------------------------ entry

    async def handle_http(self, request: web.Request) -> web.Response:
        match = TOKEN_RE.fullmatch(request.match_info["token"])
        if match is None:
            return _error_response(BotApiError(401, "Unauthorized"))
        try:
            params = await read_params(request)
            result = await self.call(int(match.group(1)), request.match_info["method"], params)
        except BotApiError as error:
            return _error_response(error)
        except Exception as exc:  # a sandbox bug must still look like a Telegram 500
            log.exception("sandbox failed on %s", request.match_info["method"])
            return _error_response(BotApiError(500, f"Internal Server Error: {exc}"))
        return web.json_response({"ok": True, "result": result})

    async def call(self, bot_id: int, method_name: str, params: Params) -> Any:
        """Run one method for the bot ``bot_id``; raises BotApiError like Telegram answers."""
        handler = _HANDLERS.get(method_name.lower())
        if handler is None:
            raise BotApiError(404, "Not Found")
        self.state.bot_id = bot_id
        if self.state.latency:
            await asyncio.sleep(self.state.latency)
        return await handler(self, Call(self.state.bot_user(bot_id), method_name.lower(), params))

    # ---------------------------------------------------------------- helpers

    def _chat(self, params: Params, name: str = "chat_id", *, sending: bool = False) -> SandboxChat:
        """The chat a call names; with ``business_connection_id``, the customer's chat with that
        business account (``sending``: a new message, held to the 24-hour rule)."""
        value = params.values.get(name)
        if value in (None, ""):
            raise bad_request(f"{name} is empty")
        connection_id = params.text("business_connection_id")
        if connection_id and name == "chat_id":
            return self.state.business_chat_for_bot(connection_id, value, sending=sending)
        return self.state.resolve_chat(value)

    def _message(self, chat: SandboxChat, params: Params, what: str) -> JsonDict:
        message_id = params.required_int("message_id", "message identifier is not specified")
        message = chat.message(message_id)
        if message is None:
            raise bad_request(f"message to {what} not found")
        return message

    @staticmethod
    def _formatted(
        params: Params, field: str, entities_field: str, *, limit: int
    ) -> tuple[str, list[JsonDict]] | None:
        """Text (or caption) after parse_mode/entities, or None when absent."""
        raw = params.text(field)
        if raw is None or raw == "":
            return None
        given = params.obj(entities_field)
        if given:
            text, entities = raw, list(given)
        else:
            try:
                text, entities = parse_text(raw, params.text("parse_mode"))
            except EntityParseError as error:
                raise bad_request(str(error)) from None
        if len(text) > limit:
            raise bad_request(
                "message is too long" if field == "text" else "message caption is too long"
            )
        return text, entities

    def _text_content(self, params: Params) -> JsonDict:
        formatted = self._formatted(params, "text", "entities", limit=4096)
        if formatted is None or not formatted[0].strip():
            raise bad_request("message text is empty")
        content: JsonDict = {"text": formatted[0]}
        if formatted[1]:
            content["entities"] = formatted[1]
        return content

    def _caption(self, params: Params) -> JsonDict:
        formatted = self._formatted(params, "caption", "caption_entities", limit=1024)
        if formatted is None:
            return {}
        caption: JsonDict = {"caption": formatted[0]}
        if formatted[1]:
            caption["caption_entities"] = formatted[1]
        return caption

    @staticmethod
    def _markup(params: Params, *, inline_only: bool = False) -> JsonDict | None:
        markup = params.obj("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            _validate_inline_keyboard(markup["inline_keyboard"])
        elif inline_only:
            raise bad_request("inline keyboard expected")
        elif not {"keyboard", "remove_keyboard", "force_reply"} & markup.keys():
            raise bad_request("can't parse reply keyboard markup JSON object")
        return markup

    @staticmethod
    def _thread(chat: SandboxChat, params: Params) -> int | None:
        """The forum topic to post in; ignored outside forums as Telegram does."""
        thread_id = params.integer("message_thread_id")
        if thread_id is None or not chat.is_forum:
            return None
        topic = chat.topics.get(thread_id)
        if topic is None:
            raise bad_request("message thread not found")
        if topic.is_closed:  # as Telegram answers bots, even admins that manage topics
            raise bad_request("TOPIC_CLOSED")
        return thread_id

    @staticmethod
    def _reply_to(chat: SandboxChat, params: Params) -> JsonDict | None:
        reply = params.obj("reply_parameters") or {}
        message_id = reply.get("message_id") or params.integer("reply_to_message_id")
        if not message_id:
            return None
        allow = reply.get("allow_sending_without_reply") or params.flag(
            "allow_sending_without_reply"
        )
        target = chat.message(int(message_id))
        if target is None and not allow:
            raise bad_request("message to be replied not found")
        return target

    def _deliver(
        self, call: Call, chat: SandboxChat, method_name: str, content: JsonDict
    ) -> JsonDict:
        """Shared tail of every send: topic, markup, reply, faults, then store."""
        thread_id = self._thread(chat, call.params)
        markup = self._markup(call.params)
        reply_to = self._reply_to(chat, call.params)
        if call.params.flag("protect_content"):
            content = {**content, "has_protected_content": True}
        sender = call.bot
        if chat.business_connection_id is not None:
            # Sent on the owner's behalf: from the business account, signed by the bot.
            _refuse_web_apps(markup)
            connection = self.state.business_connections[chat.business_connection_id]
            sender = self.state.users[connection.owner_id].as_user()
            content = {**content, "business_connection_id": connection.id, "sender_business_bot": call.bot}
        self.state.admit_send(chat, method_name, new_message=True)
        message = self.state.add_message(
            chat,
            sender=sender,
            from_bot=True,
            content=content,
            thread_id=thread_id,
            reply_markup=markup,
            reply_to=reply_to,
        )
        if chat.business_connection_id is not None:
            # Telegram tells the bot about every new message in a business chat, its own too.
            self.state.emit_update("business_message", public(message))
        return message

    def _media(self, params: Params, kind: str) -> StoredFile:
        given = params.file(kind)
        if given is None:
            raise bad_request(f"there is no {kind} in the request")
        if isinstance(given, Upload):
            return self.state.store_file(
                kind, given.data, file_name=given.filename, mime_type=given.content_type
            )
        if given.startswith(("http://", "https://")):
            return self.state.store_file(kind, b"", url=given)
        stored = self.state.files.get(given)
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        return stored

    async def _send_media(self, call: Call, kind: str) -> JsonDict:
        chat = self._chat(call.params, sending=True)
        stored = self._media(call.params, kind)
        content: JsonDict = {
            kind: stored.as_media(
                kind, duration=call.params.integer("duration"), emoji=call.params.text("emoji")
            )
        }
        if kind != "sticker":
            content.update(self._caption(call.params))
        return public(self._deliver(call, chat, f"send{kind.capitalize()}", content))

    def _editable(self, call: Call, what: str = "edit") -> tuple[SandboxChat, JsonDict]:
        chat = self._chat(call.params)
        message = self._message(chat, call.params, what)
        if not message["_from_bot"] or message["_service"]:
            raise bad_request("message can't be edited")
        return chat, message

    def _apply_edit(
        self, call: Call, method_name: str, chat: SandboxChat, message: JsonDict, changes: JsonDict
    ) -> JsonDict:
        """Telegram refuses no-op edits; otherwise admit like a send and apply."""
        if all(message.get(key) == value for key, value in changes.items()):
            raise bad_request(NOT_MODIFIED)
        self.state.admit_send(chat, method_name, new_message=False)
        return public(self.state.edit_message(message, changes))

    def _topic(self, chat: SandboxChat, params: Params) -> Topic:
        if not chat.is_forum:
            raise bad_request("the chat is not a forum")
        _require_chat_admin(chat, "not enough rights to manage topics")
        topic = chat.topics.get(params.integer("message_thread_id") or 0)
        if topic is None:
            raise bad_request("TOPIC_ID_INVALID")
        return topic

    def _topic_event(self, call: Call, chat: SandboxChat, topic: Topic, event: JsonDict) -> None:
        self.state.add_message(
            chat,
            sender=call.bot,
            from_bot=True,
            content=event,
            thread_id=topic.message_thread_id,
            service=True,
        )

    # ------------------------------------------------------------ identity

    @method("getMe")
    async def get_me(self, call: Call) -> JsonDict:
        return {
            **call.bot,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": True,
            "has_main_web_app": False,
        }

    # ------------------------------------------------------------- updates

    @method("getUpdates")
    async def get_updates(self, call: Call) -> list[JsonDict]:
        state, params = self.state, call.params
        if state.webhook is not None:
            raise BotApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        if params.has("allowed_updates"):
            state.allowed_updates = list(params.obj("allowed_updates") or [])
        limit = min(max(params.integer("limit") or 100, 1), 100)
        timeout = max(params.integer("timeout") or 0, 0)
        state.confirm_updates(params.integer("offset"))
        # A newer getUpdates terminates a waiting one, exactly like Telegram.
        state.poll_generation += 1
        generation = state.poll_generation
        state.updates_changed.fire()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != state.poll_generation:
                raise BotApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            if state.webhook is not None:
                return []
            updates = state.take_updates(limit)
            remaining = deadline - loop.time()
            if updates or remaining <= 0 or state.closing:
                return updates
            await state.updates_changed.wait(remaining)

    @method("setWebhook")
    async def set_webhook(self, call: Call) -> bool:
        params = call.params
        url = params.text("url") or ""
        secret = params.text("secret_token")
        if secret and not _SECRET_RE.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        if url and not url.startswith(("http://", "https://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if params.flag("drop_pending_updates"):
            self.state.drop_pending_updates()
        if not url:
            self.state.webhook = None
        else:
            self.state.webhook = Webhook(
                url=url,
                bot_id=call.bot_id,
                secret_token=secret or None,
                allowed_updates=params.obj("allowed_updates") or None,
                max_connections=params.integer("max_connections") or 40,
            )
            self.webhook.ensure_running()
        self.state.updates_changed.fire()
        return True

    @method("deleteWebhook")
    async def delete_webhook(self, call: Call) -> bool:
        if call.params.flag("drop_pending_updates"):
            self.state.drop_pending_updates()
        self.state.webhook = None
        self.state.updates_changed.fire()
        return True

    @method("getWebhookInfo")
    async def get_webhook_info(self, call: Call) -> JsonDict:
        return self.state.describe_webhook()

    # ------------------------------------------------------------- sending

    @method("sendMessage")
    async def send_message(self, call: Call) -> JsonDict:
        chat = self._chat(call.params, sending=True)
        content = self._text_content(call.params)
        preview = call.params.obj("link_preview_options")
        if preview:
            content["link_preview_options"] = preview
        return public(self._deliver(call, chat, "sendMessage", content))

    @method("sendMessageDraft")
    async def send_message_draft(self, call: Call) -> bool:
        """Bot API 9.3: a partial message streamed into a private chat (a 30-second preview that
        the bot's next message replaces); an empty text shows "Thinking…"."""
        chat = self._chat(call.params)
        if chat.is_group:
            raise bad_request("message drafts can be sent only to private chats")
        draft_id = call.params.required_int("draft_id", "draft_id is not specified")
        if draft_id == 0:
            raise bad_request("draft_id must be non-zero")
        formatted = self._formatted(call.params, "text", "entities", limit=4096)
        self.state.admit_send(chat, "sendMessageDraft", new_message=False)
        self.state.message_drafts.setdefault(chat.id, []).append(
            {"draft_id": draft_id, "text": formatted[0] if formatted else ""})
        return True

    @method("sendPhoto")
    async def send_photo(self, call: Call) -> JsonDict:
        return await self._send_media(call, "photo")

    @method("sendDocument")
    async def send_document(self, call: Call) -> JsonDict:
        return await self._send_media(call, "document")

    @method("copyMessage")
    async def copy_message(self, call: Call) -> JsonDict:
        params = call.params
        chat = self._chat(params)
        source_chat = self._chat(params, "from_chat_id")
        message_id = params.required_int("message_id", "message identifier is not specified")
        source = source_chat.message(message_id)
        if source is None:
            raise bad_request("message to copy not found")
        if source["_service"]:
            raise bad_request("message can't be copied")
        content = {key: source[key] for key in _CONTENT_KEYS if key in source}
        if params.has("caption") and "text" not in content:
            content.pop("caption_entities", None)
            content.update(self._caption(params))
        stored = self._deliver(call, chat, "copyMessage", content)
        return {"message_id": stored["message_id"]}

    # ------------------------------------------------------------- editing

    @method("editMessageText")
    async def edit_message_text(self, call: Call) -> JsonDict | bool:
        if call.params.has("inline_message_id"):
            self._text_content(call.params)
            return True
        chat, message = self._editable(call)
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        content = self._text_content(call.params)
        changes = {
            "text": content["text"],
            "entities": content.get("entities"),
            # Omitting reply_markup removes the inline keyboard, as on Telegram.
            "reply_markup": self._markup(call.params, inline_only=True),
        }
        return self._apply_edit(call, "editMessageText", chat, message, changes)

    @method("editMessageCaption")
    async def edit_message_caption(self, call: Call) -> JsonDict | bool:
        if call.params.has("inline_message_id"):
            return True
        chat, message = self._editable(call)
        if not any(kind in message for kind in _MEDIA_KINDS):
            raise bad_request("there is no caption in the message to edit")
        caption = self._caption(call.params)
        changes = {
            "caption": caption.get("caption"),
            "caption_entities": caption.get("caption_entities"),
            "reply_markup": self._markup(call.params, inline_only=True),
        }
        return self._apply_edit(call, "editMessageCaption", chat, message, changes)

    @method("editMessageReplyMarkup")
    async def edit_message_reply_markup(self, call: Call) -> JsonDict | bool:
        if call.params.has("inline_message_id"):
            return True
        chat, message = self._editable(call)
        changes = {"reply_markup": self._markup(call.params, inline_only=True)}
        return self._apply_edit(call, "editMessageReplyMarkup", chat, message, changes)

    @method("deleteMessage")
    async def delete_message(self, call: Call) -> bool:
        chat = self._chat(call.params)
        message = self._message(chat, call.params, "delete")
        if chat.is_group and not message["_from_bot"] and not chat.bot_is_admin:
            raise bad_request("message can't be deleted")
        self.state.delete_message(message)
        return True

    @method("answerCallbackQuery")
    async def answer_callback_query(self, call: Call) -> bool:
        query_id = call.params.text("callback_query_id") or ""
        issued = self.state.issued_callbacks.get(query_id)
        if issued is None or issued.answered:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        issued.answered = True
        self.state.rev += 1
        self.state.callback_answers.append(
            {
                "callback_query_id": query_id,
                "chat_id": issued.chat_id,
                "user_id": issued.user_id,
                "message_id": issued.message_id,
                "text": call.params.text("text"),
                "show_alert": call.params.flag("show_alert"),
                "url": call.params.text("url"),
                "cache_time": call.params.integer("cache_time") or 0,
                "_at": self.state.clock(),
                "_rev": self.state.rev,
            }
        )
        self.state.messages_changed.fire()
        return True

    # ------------------------------------------------------------ settings

    @method("setMyCommands")
    async def set_my_commands(self, call: Call) -> bool:
        commands = call.params.obj("commands")
        if not isinstance(commands, list):
            raise bad_request('parameter "commands" is required')
        for command in commands:
            if not _COMMAND_RE.fullmatch(str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.state.commands[_commands_key(call.params)] = list(commands)
        return True

    # -------------------------------------------------------------- forums

    @method("createForumTopic")
    async def create_forum_topic(self, call: Call) -> JsonDict:
        chat = self._chat(call.params)
        if not chat.is_forum:
            raise bad_request("the chat is not a forum")
        _require_chat_admin(chat, "not enough rights to create a topic")
        name = (call.params.text("name") or "").strip()
        if not name:
            raise bad_request("TOPIC_TITLE_EMPTY")
        if len(name) > 128:
            raise bad_request("TOPIC_TITLE_INVALID")
        icon_color = call.params.integer("icon_color") or TOPIC_ICON_COLOR
        emoji_id = call.params.text("icon_custom_emoji_id") or None
        event: JsonDict = {"name": name, "icon_color": icon_color}
        if emoji_id:
            event["icon_custom_emoji_id"] = emoji_id
        # The topic id is the id of its "topic created" service message.
        thread_id = chat.last_message_id + 1
        topic = chat.topics[thread_id] = Topic(thread_id, name, icon_color, emoji_id)
        self._topic_event(call, chat, topic, {"forum_topic_created": event})
        return topic.as_forum_topic()

    @method("closeForumTopic", "reopenForumTopic")
    async def close_forum_topic(self, call: Call) -> bool:
        chat = self._chat(call.params)
        topic = self._topic(chat, call.params)
        closing = call.method == "closeforumtopic"
        if topic.is_closed == closing:
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic.is_closed = closing
        event = "forum_topic_closed" if closing else "forum_topic_reopened"
        self._topic_event(call, chat, topic, {event: {}})
        return True

    @method("deleteForumTopic")
    async def delete_forum_topic(self, call: Call) -> bool:
        chat = self._chat(call.params)
        topic = self._topic(chat, call.params)
        del chat.topics[topic.message_thread_id]
        for message in list(self.state.iter_messages(chat.id, topic.message_thread_id)):
            self.state.delete_message(message)
        return True

    # ----------------------------------------------------- chats and members

    @method("getChat")
    async def get_chat(self, call: Call) -> JsonDict:
        chat = self._chat(call.params)
        info: JsonDict = {
            **chat.as_chat(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": dict.fromkeys(
                (
                    "unlimited_gifts",
                    "limited_gifts",
                    "unique_gifts",
                    "premium_subscription",
                    "gifts_from_channels",
                ),
                not chat.is_group,
            ),
        }
        return info

    @method("getBusinessConnection")
    async def get_business_connection(self, call: Call) -> JsonDict:
        connection = self.state.business_connections.get(call.params.text("business_connection_id") or "")
        if connection is None:
            raise bad_request("BUSINESS_CONNECTION_INVALID")
        return connection.as_json(self.state.users[connection.owner_id])

    @method("getChatMember")
    async def get_chat_member(self, call: Call) -> JsonDict:
        chat = self._chat(call.params)
        user_id = call.params.required_int("user_id", "user not found")
        return self.state.chat_member(chat, user_id, call.bot_id)

    @method("getFile")
    async def get_file(self, call: Call) -> JsonDict:
        stored = self.state.files.get(call.params.text("file_id") or "")
        if stored is None:
            raise bad_request("invalid file_id")
        return stored.as_file()


def _error_response(error: BotApiError) -> web.Response:
    return web.json_response(error.as_json(), status=error.error_code)


def _commands_key(params: Params) -> tuple[str, str]:
    scope = params.obj("scope") or {"type": "default"}
    parts = [str(scope.get("type", "default"))]
    parts += [str(scope[key]) for key in ("chat_id", "user_id") if key in scope]
    return ":".join(parts), params.text("language_code") or ""


def _refuse_web_apps(markup: JsonDict | None) -> None:
    """Telegram allows inline keyboards in business messages, but no web-app buttons."""
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            if "web_app" in button:
                raise bad_request("BUTTON_TYPE_INVALID")


def _validate_inline_keyboard(rows: Any) -> None:
    """Reject what Telegram rejects: non-list rows, bare text buttons, >64-byte data."""
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(
            "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
        )
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise bad_request(_TEXT_BUTTONS)
            actions = set(button) - {"text", "icon_custom_emoji_id", "style"}
            if not actions:
                raise bad_request(_TEXT_BUTTONS)
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise bad_request("BUTTON_DATA_INVALID")
            url = button.get("url")
            if url is not None and not str(url).startswith(("http://", "https://", "tg://")):
                raise bad_request("BUTTON_URL_INVALID")
