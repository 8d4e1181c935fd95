"""Files between the console and Telegram, through the Bot API over HTTP (the console has no bot
object): fetching a photo or document a customer sent, sending one staff attached to a reply.

Files are never stored by the console; Telegram keeps them and the transcript keeps their ids."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import ClientError, ClientSession, ClientTimeout, FormData

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # Telegram's limit for photos; documents are held to it too
TIMEOUT = ClientTimeout(total=30)


@dataclass(frozen=True, slots=True)
class Attachment:
    """An uploaded file the console accepts: what it is (by its first bytes, not its name)."""

    kind: str  # photo | document
    data: bytes
    file_name: str
    content_type: str


# What staff may attach, recognised by content: JPEG and PNG go as photos, PDF as a document.
_SIGNATURES = (
    (b"\xff\xd8\xff", "photo", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "photo", "image/png", ".png"),
    (b"%PDF-", "document", "application/pdf", ".pdf"),
)


class AttachmentRefused(ValueError):
    """``code``: empty | too_large | type (the console says it in words)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class SendFailed(Exception):
    """``code``: blocked (the customer blocked the bot) | rejected | unavailable."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def accept_attachment(data: bytes, file_name: str) -> Attachment:
    """The upload as an attachment, or ``AttachmentRefused`` (nothing is sent or written)."""
    if not data:
        raise AttachmentRefused("empty")
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise AttachmentRefused("too_large")
    for signature, kind, content_type, extension in _SIGNATURES:
        if data.startswith(signature):
            name = "".join(ch for ch in file_name if ch.isprintable() and ch not in '/\\"').strip()[-120:]
            return Attachment(kind, data, name or f"file{extension}", content_type)
    raise AttachmentRefused("type")


async def fetch_file(api_base: str, token: str, file_id: str) -> bytes | None:
    """A file's bytes by its Telegram file id; None when Telegram does not have it (any more)."""
    try:
        async with ClientSession(timeout=TIMEOUT) as client:
            async with client.post(f"{api_base}/bot{token}/getFile", json={"file_id": file_id}) as response:
                answer = await response.json(content_type=None)
            if not answer.get("ok"):
                return None
            path = answer["result"]["file_path"]
            async with client.get(f"{api_base}/file/bot{token}/{path}") as response:
                return await response.read() if response.status == 200 else None
    except (ClientError, TimeoutError, ValueError, KeyError):
        return None


async def send_attachment(
    api_base: str, token: str, chat_id: int, attachment: Attachment, caption_html: str
) -> tuple[int, str]:
    """Send the file to a chat (sendPhoto / sendDocument); (message id, Telegram's file id).

    Raises ``SendFailed``: blocked (403), rejected (other 4xx), unavailable (network, 5xx, 429)."""
    method = "sendPhoto" if attachment.kind == "photo" else "sendDocument"
    form = FormData()
    form.add_field("chat_id", str(chat_id))
    form.add_field("caption", caption_html[:1024])
    form.add_field("parse_mode", "HTML")
    form.add_field(attachment.kind, attachment.data, filename=attachment.file_name,
                   content_type=attachment.content_type)
    try:
        async with ClientSession(timeout=TIMEOUT) as client, \
                client.post(f"{api_base}/bot{token}/{method}", data=form) as response:
            answer = await response.json(content_type=None)
            status = response.status
    except (ClientError, TimeoutError, ValueError):
        raise SendFailed("unavailable") from None
    if not answer.get("ok"):
        code = answer.get("error_code", status)
        raise SendFailed("blocked" if code == 403 else "unavailable" if code in (429, 500, 502, 503)
                         else "rejected")
    message = answer["result"]
    sizes = message.get("photo") or [message.get("document") or {}]  # a photo comes in sizes
    return int(message["message_id"]), str(sizes[-1].get("file_id", ""))


def content_disposition(file_name: str) -> str:
    """A download named as sent, safe for any characters (RFC 6266 / 5987)."""
    ascii_name = file_name.encode("ascii", "replace").decode().replace("?", "_") or "file"
    return f"attachment; filename={json.dumps(ascii_name)}; filename*=UTF-8''{quote(file_name)}"
