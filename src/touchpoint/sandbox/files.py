"""Uploaded files: storage records, Telegram-style ids and media objects."""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from typing import Any


@dataclass
class StoredFile:
    """One file the sandbox knows, addressable by ``file_id`` and ``file_path``."""

    file_id: str
    file_unique_id: str
    kind: str  # photo | document | voice | sticker
    data: bytes
    file_path: str
    mime_type: str
    file_name: str | None = None
    url: str | None = None  # set when the bot sent an HTTP URL instead of bytes

    def as_file(self) -> dict[str, Any]:
        """Bot API ``File`` object (getFile)."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }

    def as_media(
        self, kind: str | None = None, *, duration: int | None = None, emoji: str | None = None
    ) -> Any:
        """The message field for this file sent as ``kind`` (default: as uploaded).

        A PhotoSize list for photos, else a Document, Voice or Sticker object.
        """
        kind = kind or self.kind
        base: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
        }
        if kind == "photo":
            width, height = image_size(self.data) or (800, 600)
            return [{**base, "width": width, "height": height}]
        if kind == "voice":
            return {**base, "duration": duration or 1, "mime_type": self.mime_type}
        if kind == "sticker":
            width, height = image_size(self.data) or (512, 512)
            sticker = {
                **base,
                "type": "regular",
                "width": width,
                "height": height,
                "is_animated": False,
                "is_video": False,
            }
            if emoji:
                sticker["emoji"] = emoji
            return sticker
        document = {**base, "mime_type": self.mime_type}
        if self.file_name:
            document["file_name"] = self.file_name
        return document


_EXTENSIONS = {"photo": "jpg", "voice": "oga", "sticker": "webp", "document": "bin"}
_DEFAULT_MIME = {
    "photo": "image/jpeg",
    "voice": "audio/ogg",
    "sticker": "image/webp",
    "document": "application/octet-stream",
}


def make_file(
    number: int,
    kind: str,
    data: bytes,
    *,
    file_name: str | None = None,
    mime_type: str | None = None,
    url: str | None = None,
) -> StoredFile:
    """Build a record with Telegram-looking ids; same bytes → same ``file_unique_id``."""
    digest = hashlib.sha256(data or (url or "").encode()).hexdigest()
    sniffed = sniff_mime(data)
    extension = (file_name or "").rpartition(".")[2] if file_name and "." in file_name else None
    folder = {"photo": "photos", "voice": "voice", "sticker": "stickers"}.get(kind, "documents")
    return StoredFile(
        file_id=f"SBX{kind[:2].upper()}{number:06d}{digest[:18]}",
        file_unique_id=f"SBXU{digest[:12]}",
        kind=kind,
        data=data,
        file_path=f"{folder}/file_{number}.{extension or _EXTENSIONS[kind]}",
        mime_type=mime_type or sniffed or _DEFAULT_MIME[kind],
        file_name=file_name,
        url=url,
    )


def sniff_mime(data: bytes) -> str | None:
    """Recognise the image formats the web page may show."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"OggS"):
        return "audio/ogg"
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG (PhotoSize needs them); None if unknown."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            width, height = struct.unpack(">II", data[16:24])
            return width, height
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", data[6:10])
            return width, height
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
    except struct.error:
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def tiny_png(width: int = 4, height: int = 3, rgb: tuple[int, int, int] = (76, 132, 255)) -> bytes:
    """A valid solid-colour PNG, the default picture simulated people send."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


TINY_PNG = tiny_png()
TINY_OGG = b"OggS\x00\x02" + b"\x00" * 58  # enough for a header-sniffing client
