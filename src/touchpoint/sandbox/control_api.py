"""JSON control API under ``/sandbox/api/`` for the web pages and out-of-process tests.

Bodies are JSON (or a form); answers are JSON; a bad request answers
``{"error": "..."}`` with status 400 (404 for an unknown user, chat or file).

=======  ==========================================  =====================================
method   path                                        body → answer
=======  ==========================================  =====================================
GET      /sandbox/api/state                          → {bot, users, groups, rev}
GET      /sandbox/api/users                          → {users: [User + phone_number, blocked,
                                                     is_staff (a member of a group)]}
POST     /sandbox/api/users                          {first_name, language_code?, last_name?,
                                                     username?, user_id?} → {user}
POST     /sandbox/api/users/{user_id}/text           {text} → {update}
POST     /sandbox/api/users/{user_id}/press          {message_id, data, chat_id?} → {update}
POST     /sandbox/api/users/{user_id}/contact        {phone_number, own?=true} → {update}
POST     /sandbox/api/users/{user_id}/photo          multipart: photo=<file>, caption? → {update}
GET      /sandbox/api/chats/{chat_id}/messages       ?since=<rev>&after_id=<message id>
                                                     &thread_id=<topic> → {rev, messages,
                                                     reply_keyboard, callback_answers}
GET      /sandbox/api/groups                         → {groups: [{chat, members, topics}]}
POST     /sandbox/api/groups                         {chat_id, title, is_forum?, admins?,
                                                     members?, creator?, bot_is_admin?,
                                                     bot_can_manage_topics?} → {group}
POST     /sandbox/api/groups/{chat_id}/post          {user_id, text, message_thread_id?}
                                                     → {update}
POST     /sandbox/api/groups/{chat_id}/photo         multipart: user_id, photo=<file>,
                                                     caption?, message_thread_id? → {update}
POST     /sandbox/api/faults/{kind}                  retry_after {chat_id, retry_after,
                                                     times?} | block {chat_id} | unblock
                                                     {chat_id} | group_limit {max_messages,
                                                     per_seconds} | chaos {probability,
                                                     retry_after, seed?} | latency {seconds}
                                                     → {ok: true}
GET      /sandbox/api/business                       → {connections: [{id, owner, can_reply,
                                                     is_enabled}]}
POST     /sandbox/api/business                       {owner_id?, owner_name?, can_reply?}
                                                     → {connection} (connects, or re-enables)
POST     /sandbox/api/business/{id}/disconnect       → {update}
POST     /sandbox/api/business/{id}/chats/{user_id}/text
                                                     {text, as_owner?} → {update} (the customer
                                                     writes to the business account, or its owner
                                                     writes in that chat)
POST     /sandbox/api/business/{id}/chats/{user_id}/press
                                                     {message_id, data} → {update}
GET      /sandbox/api/business/{id}/chats/{user_id}/messages
                                                     ?since=<rev> → {rev, messages,
                                                     callback_answers}
GET      /sandbox/api/log                            → {send_log, callback_answers, webhook,
                                                     commands, pending_updates}
GET      /sandbox/api/files/{file_id}                → the file's bytes
=======  ==========================================  =====================================

``messages`` answers only what changed since the ``since`` revision (0: everything,
deleted messages included with ``_deleted: true``), so a page can poll cheaply and
apply edits in place; ``after_id`` instead lists live messages after a message id.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.web_request import FileField

from touchpoint.sandbox.state import JsonDict, SendRecord

if TYPE_CHECKING:
    from touchpoint.sandbox.server import Sandbox

PREFIX = "/sandbox/api"
FIRST_USER_ID = 1001
BUSINESS_OWNER_ID = 4242  # the demo brand's own Telegram account

Route = Callable[[web.Request], Awaitable[Any]]


class NotFound(LookupError):
    pass


def _json_route(handler: Callable[[Any, web.Request], Awaitable[Any]]) -> Any:
    """Turn a handler's return value into JSON and its input errors into 400/404."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: web.Request) -> web.StreamResponse:
        try:
            result = await handler(self, request)
        except NotFound as exc:
            return web.json_response({"error": str(exc)}, status=404)
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response(result)

    return wrapper


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        return body
    return dict(await request.post())


def _int(value: Any, name: str) -> int:
    if value in (None, ""):
        raise ValueError(f"{name} is required")
    return int(value)


def _optional_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _flag(value: Any, default: bool) -> bool:
    if value in (None, ""):
        return default
    return value in (True, 1, "1", "true", "True", "on")


def _upload(body: dict[str, Any], name: str) -> bytes:
    field = body.get(name)
    if not isinstance(field, FileField):
        raise ValueError(f"{name} must be an uploaded file")
    return field.file.read()


class ControlApi:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def register(self, router: web.UrlDispatcher) -> None:
        routes: list[tuple[str, str, Route]] = [
            ("GET", "/state", self.state),
            ("GET", "/users", self.list_users),
            ("POST", "/users", self.create_user),
            ("POST", "/users/{user_id}/text", self.user_text),
            ("POST", "/users/{user_id}/press", self.user_press),
            ("POST", "/users/{user_id}/contact", self.user_contact),
            ("POST", "/users/{user_id}/photo", self.user_photo),
            ("GET", "/chats/{chat_id}/messages", self.chat_messages),
            ("GET", "/groups", self.list_groups),
            ("POST", "/groups", self.create_group),
            ("POST", "/groups/{chat_id}/post", self.group_post),
            ("POST", "/groups/{chat_id}/photo", self.group_photo),
            ("POST", "/faults/{kind}", self.fault),
            ("GET", "/business", self.list_business),
            ("POST", "/business", self.connect_business),
            ("POST", "/business/{connection_id}/disconnect", self.disconnect_business),
            ("POST", "/business/{connection_id}/chats/{user_id}/text", self.business_text),
            ("POST", "/business/{connection_id}/chats/{user_id}/press", self.business_press),
            ("GET", "/business/{connection_id}/chats/{user_id}/messages", self.business_messages),
            ("GET", "/log", self.log),
            ("GET", "/files/{file_id}", self.file),
        ]
        for http_method, path, handler in routes:
            router.add_route(http_method, PREFIX + path, handler)

    # ----------------------------------------------------------------- helpers

    def _user_id(self, request: web.Request) -> int:
        user_id = int(request.match_info["user_id"])
        if user_id not in self.sandbox.users:
            raise NotFound(f"unknown user {user_id}")
        return user_id

    def _chat_id(self, request: web.Request) -> int:
        chat_id = int(request.match_info["chat_id"])
        if chat_id not in self.sandbox.chats:
            raise NotFound(f"unknown chat {chat_id}")
        return chat_id

    def _user_json(self, user_id: int) -> JsonDict:
        user = self.sandbox.users[user_id]
        chat = self.sandbox.chats[user_id]
        is_staff = any(
            c.is_group and user_id in c.all_members() for c in self.sandbox.chats.values()
        )
        return {
            **user.as_user(),
            "phone_number": user.phone_number,
            "blocked": chat.blocked,
            "is_staff": is_staff,
            "is_business_owner": any(
                c.owner_id == user_id for c in self.sandbox.business_connections.values()
            ),
        }

    def _group_json(self, chat_id: int) -> JsonDict:
        sandbox = self.sandbox
        chat = sandbox.chats[chat_id]
        bot_id = sandbox.bot_id or 0
        return {
            "chat": chat.as_chat(),
            "members": [
                sandbox.chat_member(chat, member_id, bot_id) for member_id in chat.all_members()
            ],
            "topics": sandbox.topics(chat_id),
            "bot_is_admin": chat.bot_is_admin,
            "bot_can_manage_topics": chat.bot_can_manage_topics,
        }

    # ------------------------------------------------------------------ routes

    @_json_route
    async def state(self, request: web.Request) -> JsonDict:
        sandbox = self.sandbox
        return {
            "bot": sandbox.bot_user() if sandbox.bot_id is not None else None,
            "users": [self._user_json(user_id) for user_id in sandbox.users],
            "groups": [
                self._group_json(chat.id) for chat in sandbox.chats.values() if chat.is_group
            ],
            "rev": sandbox.rev,
        }

    @_json_route
    async def list_users(self, request: web.Request) -> JsonDict:
        return {"users": [self._user_json(user_id) for user_id in self.sandbox.users]}

    @_json_route
    async def create_user(self, request: web.Request) -> JsonDict:
        body = await _body(request)
        first_name = str(body.get("first_name") or "").strip()
        if not first_name:
            raise ValueError("first_name is required")
        user_id = _optional_int(body.get("user_id")) or max(
            [FIRST_USER_ID - 1, *(uid for uid in self.sandbox.users if uid > 0)]
        ) + 1
        self.sandbox.user(
            user_id,
            first_name,
            language_code=str(body.get("language_code") or "en"),
            username=body.get("username") or None,
            last_name=body.get("last_name") or None,
        )
        return {"user": self._user_json(user_id)}

    @_json_route
    async def user_text(self, request: web.Request) -> JsonDict:
        user_id = self._user_id(request)
        body = await _body(request)
        text = str(body.get("text") or "")
        if not text.strip():
            raise ValueError("text is required")
        return {"update": self.sandbox.send_text(user_id, text)}

    @_json_route
    async def user_press(self, request: web.Request) -> JsonDict:
        user_id = self._user_id(request)
        body = await _body(request)
        update = self.sandbox.press_button(
            user_id,
            _int(body.get("message_id"), "message_id"),
            str(body.get("data") or ""),
            chat_id=_optional_int(body.get("chat_id")),
        )
        return {"update": update}

    @_json_route
    async def user_contact(self, request: web.Request) -> JsonDict:
        user_id = self._user_id(request)
        body = await _body(request)
        phone = str(body.get("phone_number") or "").strip()
        if not phone:
            raise ValueError("phone_number is required")
        own = _flag(body.get("own"), default=True)
        return {"update": self.sandbox.share_contact(user_id, phone, own=own)}

    @_json_route
    async def user_photo(self, request: web.Request) -> JsonDict:
        user_id = self._user_id(request)
        body = await _body(request)
        caption = str(body.get("caption") or "") or None
        return {"update": self.sandbox.send_photo(user_id, _upload(body, "photo"), caption)}

    @_json_route
    async def chat_messages(self, request: web.Request) -> JsonDict:
        chat_id = self._chat_id(request)
        since = int(request.query.get("since") or 0)
        after_id = _optional_int(request.query.get("after_id"))
        thread_id = _optional_int(request.query.get("thread_id"))
        sandbox = self.sandbox
        if after_id is not None:
            messages = [
                m for m in sandbox.messages(chat_id, thread_id) if m["message_id"] > after_id
            ]
        else:
            messages = [
                copy.deepcopy(m)
                for m in sandbox.iter_messages(chat_id, thread_id, deleted=True)
                if m["_rev"] > since
            ]
        answers = [
            answer
            for answer in sandbox.callback_answers
            if answer["chat_id"] == chat_id and answer["_rev"] > since
        ]
        return {
            "rev": sandbox.rev,
            "messages": messages,
            "reply_keyboard": sandbox.reply_keyboard(chat_id),
            "callback_answers": answers,
        }

    @_json_route
    async def list_groups(self, request: web.Request) -> JsonDict:
        chats = self.sandbox.chats.values()
        return {"groups": [self._group_json(chat.id) for chat in chats if chat.is_group]}

    @_json_route
    async def create_group(self, request: web.Request) -> JsonDict:
        body = await _body(request)
        chat_id = _int(body.get("chat_id"), "chat_id")
        self.sandbox.create_group(
            chat_id,
            str(body.get("title") or "Staff"),
            is_forum=_flag(body.get("is_forum"), default=True),
            admins=[int(i) for i in body.get("admins") or []],
            members=[int(i) for i in body.get("members") or []],
            bot_is_admin=_flag(body.get("bot_is_admin"), default=True),
            bot_can_manage_topics=_flag(body.get("bot_can_manage_topics"), default=True),
            creator=_optional_int(body.get("creator")),
        )
        return {"group": self._group_json(chat_id)}

    @_json_route
    async def group_post(self, request: web.Request) -> JsonDict:
        chat_id = self._chat_id(request)
        body = await _body(request)
        text = str(body.get("text") or "")
        if not text.strip():
            raise ValueError("text is required")
        update = self.sandbox.staff_post(
            chat_id,
            _int(body.get("user_id"), "user_id"),
            text,
            _optional_int(body.get("message_thread_id")),
        )
        return {"update": update}

    @_json_route
    async def group_photo(self, request: web.Request) -> JsonDict:
        chat_id = self._chat_id(request)
        body = await _body(request)
        update = self.sandbox.staff_post_photo(
            chat_id,
            _int(body.get("user_id"), "user_id"),
            _upload(body, "photo"),
            caption=str(body.get("caption") or "") or None,
            message_thread_id=_optional_int(body.get("message_thread_id")),
        )
        return {"update": update}

    @_json_route
    async def fault(self, request: web.Request) -> JsonDict:
        kind = request.match_info["kind"]
        body = await _body(request)
        sandbox = self.sandbox
        if kind == "retry_after":
            sandbox.inject_retry_after(
                _int(body.get("chat_id"), "chat_id"),
                _int(body.get("retry_after"), "retry_after"),
                times=_optional_int(body.get("times")) or 1,
            )
        elif kind in ("block", "unblock"):
            chat_id = _int(body.get("chat_id"), "chat_id")
            (sandbox.block if kind == "block" else sandbox.unblock)(chat_id)
        elif kind == "group_limit":
            sandbox.set_group_limit(
                _optional_int(body.get("max_messages")), float(body.get("per_seconds") or 60)
            )
        elif kind == "chaos":
            sandbox.set_random_retry_after(
                float(body.get("probability") or 0),
                _optional_int(body.get("retry_after")) or 1,
                seed=_optional_int(body.get("seed")),
            )
        elif kind == "latency":
            sandbox.set_latency(float(body.get("seconds") or 0))
        else:
            raise NotFound(f"unknown fault {kind!r}")
        return {"ok": True}

    def _connection_id(self, request: web.Request) -> str:
        connection_id = request.match_info["connection_id"]
        if connection_id not in self.sandbox.business_connections:
            raise NotFound(f"unknown business connection {connection_id}")
        return connection_id

    def _connection_json(self, connection_id: str) -> JsonDict:
        connection = self.sandbox.business_connections[connection_id]
        return connection.as_json(self.sandbox.users[connection.owner_id])

    @_json_route
    async def list_business(self, request: web.Request) -> JsonDict:
        return {"connections": [self._connection_json(c) for c in self.sandbox.business_connections]}

    @_json_route
    async def connect_business(self, request: web.Request) -> JsonDict:
        body = await _body(request)
        connection = self.sandbox.connect_business(
            _optional_int(body.get("owner_id")) or BUSINESS_OWNER_ID,
            str(body.get("owner_name") or "Brewhaus (business account)"),
            can_reply=_flag(body.get("can_reply"), default=True),
        )
        return {"connection": self._connection_json(connection.id)}

    @_json_route
    async def disconnect_business(self, request: web.Request) -> JsonDict:
        return {"update": self.sandbox.disconnect_business(self._connection_id(request))}

    @_json_route
    async def business_text(self, request: web.Request) -> JsonDict:
        connection_id, user_id = self._connection_id(request), self._user_id(request)
        body = await _body(request)
        text = str(body.get("text") or "")
        if not text.strip():
            raise ValueError("text is required")
        write = self.sandbox.owner_text if _flag(body.get("as_owner"), False) else self.sandbox.business_text
        return {"update": write(connection_id, user_id, text)}

    @_json_route
    async def business_press(self, request: web.Request) -> JsonDict:
        connection_id, user_id = self._connection_id(request), self._user_id(request)
        body = await _body(request)
        return {"update": self.sandbox.business_press(
            connection_id, user_id, _int(body.get("message_id"), "message_id"), str(body.get("data") or ""))}

    @_json_route
    async def business_messages(self, request: web.Request) -> JsonDict:
        connection_id, user_id = self._connection_id(request), self._user_id(request)
        since = int(request.query.get("since") or 0)
        chat = self.sandbox.business_chat(connection_id, user_id)
        messages = [copy.deepcopy(m) for m in chat.messages.values() if m["_rev"] > since]
        answers = [answer for answer in self.sandbox.callback_answers
                   if answer["chat_id"] == user_id and answer["_rev"] > since]
        return {"rev": self.sandbox.rev, "messages": messages, "callback_answers": answers}

    @_json_route
    async def log(self, request: web.Request) -> JsonDict:
        sandbox = self.sandbox
        return {
            "send_log": [record._asdict() for record in sandbox.send_log],
            "callback_answers": sandbox.callback_answers,
            "webhook": sandbox.webhook_info,
            "commands": [
                {"scope": scope, "language_code": language, "commands": commands}
                for (scope, language), commands in sandbox.commands.items()
            ],
            "pending_updates": len(sandbox.pending),
        }

    @_json_route
    async def file(self, request: web.Request) -> web.StreamResponse:
        from touchpoint.sandbox.server import file_response

        stored = self.sandbox.files.get(request.match_info["file_id"])
        if stored is None:
            raise NotFound("unknown file")
        return file_response(stored)


__all__ = ["ControlApi", "SendRecord"]
