"""The sandbox's world on disk, so a restarted demo carries on where it stopped.

``<state_dir>/sandbox.json`` holds people, chats (messages, topics), business connections and
business chats, file records and the update counter; ``<state_dir>/files/`` holds the uploaded
bytes. Written atomically (a temp file renamed over the old one) whenever something changed, at
most about once a second, and on stop.
Pending updates, fault injectors and logs are not kept: they belong to one run.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from touchpoint.sandbox.files import StoredFile
from touchpoint.sandbox.state import (
    BusinessConnection,
    JsonDict,
    SandboxChat,
    SandboxState,
    SandboxUser,
    Topic,
)

STATE_FILE = "sandbox.json"
FILES_DIR = "files"
FORMAT = 1


def signature(state: SandboxState) -> tuple[int, ...]:
    """Changes whenever something worth saving changed (cheap: no hashing of contents)."""
    return (state.rev, state.last_update_id, len(state.users), len(state.chats), len(state.files),
            sum(len(chat.topics) for chat in state.chats.values()), state.user_edits,
            state.business_edits, len(state.business_chats))


def save(state: SandboxState, state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    files_dir = state_dir / FILES_DIR
    files_dir.mkdir(exist_ok=True)
    files = []
    for stored in state.files.values():
        record = asdict(stored)
        data = record.pop("data")
        blob = files_dir / stored.file_id
        if not blob.exists():
            _atomic_write(blob, data)
        files.append(record)
    document = {
        "format": FORMAT,
        "last_update_id": state.last_update_id,
        "rev": state.rev,
        "users": [asdict(user) for user in state.users.values()],
        "chats": [_chat_to_json(chat) for chat in state.chats.values()],
        "files": files,
        "business_connections": [asdict(c) for c in state.business_connections.values()],
        "business_chats": [_chat_to_json(chat) for chat in state.business_chats.values()],
    }
    _atomic_write(state_dir / STATE_FILE, json.dumps(document, ensure_ascii=False).encode("utf-8"))


def load(state: SandboxState, state_dir: Path) -> bool:
    """Restore a saved world into an empty ``state``; False when there is none to restore."""
    path = state_dir / STATE_FILE
    if not path.exists():
        return False
    document = json.loads(path.read_text("utf-8"))
    if document.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown sandbox state format {document.get('format')!r}")
    state.users = {u["id"]: SandboxUser(**u) for u in document["users"]}
    state.chats = {}
    for raw in document["chats"]:
        chat = _chat_from_json(raw, state.users)
        state.chats[chat.id] = chat
    state.business_connections = {
        raw["id"]: BusinessConnection(**raw) for raw in document.get("business_connections", [])
    }
    state.business_chats = {}
    for raw in document.get("business_chats", []):
        chat = _chat_from_json(raw, state.users)
        state.business_chats[(chat.business_connection_id or "", chat.id)] = chat
    state.files, state.files_by_path = {}, {}
    for record in document["files"]:
        blob = state_dir / FILES_DIR / record["file_id"]
        stored = StoredFile(**record, data=blob.read_bytes() if blob.exists() else b"")
        state.files[stored.file_id] = stored
        state.files_by_path[stored.file_path] = stored
    state.advance_update_id(int(document["last_update_id"]))
    state.rev = max(state.rev, int(document["rev"]))
    return True


def _chat_to_json(chat: SandboxChat) -> JsonDict:
    raw = asdict(chat)
    raw["user"] = chat.user.id if chat.user is not None else None
    raw["messages"] = list(chat.messages.values())
    raw["topics"] = [asdict(topic) for topic in chat.topics.values()]
    return raw


def _chat_from_json(raw: dict[str, Any], users: dict[int, SandboxUser]) -> SandboxChat:
    raw = dict(raw)
    user_id = raw.pop("user")
    messages = raw.pop("messages")
    topics = raw.pop("topics")
    chat = SandboxChat(**raw, user=users.get(user_id) if user_id is not None else None)
    chat.messages = {m["message_id"]: m for m in messages}
    chat.topics = {t["message_thread_id"]: Topic(**t) for t in topics}
    return chat


def _atomic_write(path: Path, data: bytes) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_bytes(data)
    os.replace(temp, path)
