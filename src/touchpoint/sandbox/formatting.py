"""Telegram's text formatting: parse_mode markup → plain text + MessageEntity dicts.

Telegram never stores markup: a message sent with ``parse_mode=HTML`` comes back as
plain ``text`` plus ``entities`` whose offsets count UTF-16 code units, and
malformed markup is rejected with "can't parse entities". The sandbox does the same
so a bot that forgets to escape user input fails here exactly as it would live.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

Entity = dict[str, Any]


class EntityParseError(ValueError):
    """Raised with Telegram's wording (without the "Bad Request: " prefix)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"can't parse entities: {reason}")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[Entity]]:
    """Apply ``parse_mode`` (HTML, MarkdownV2, Markdown or none) to ``text``."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown(text, v2=True)
    if mode == "markdown":
        return parse_markdown(text, v2=False)
    return text, []


_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")


def detect_entities(text: str) -> list[Entity]:
    """Entities Telegram adds to what people type: only bot commands are emulated."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: match.start()]),
            "length": utf16_len(match.group()),
        }
        for match in _COMMAND_RE.finditer(text)
    ]


# --------------------------------------------------------------------------- builder


@dataclass
class _Open:
    tag: str
    entity: Entity | None
    offset: int
    byte_offset: int


@dataclass
class _Builder:
    """Accumulates output text and entities while a parser walks the markup."""

    parts: list[str] = field(default_factory=list)
    length: int = 0
    entities: list[Entity] = field(default_factory=list)

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.length += utf16_len(text)

    def close(self, opened: _Open) -> None:
        if opened.entity is None:
            return
        length = self.length - opened.offset
        if length > 0:
            self.entities.append({**opened.entity, "offset": opened.offset, "length": length})

    def result(self) -> tuple[str, list[Entity]]:
        entities = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), entities


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode())


# ------------------------------------------------------------------------------ HTML

_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_OTHER_TAGS = {"a", "span", "blockquote", "tg-emoji"}
_START_TAG_RE = re.compile(
    r"<([a-zA-Z][a-zA-Z0-9-]*)"
    r"((?:\s+[^\s=>/]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*)\s*/?>"
)
_TAG_NAME_RE = re.compile(r"<([^\s>/]*)")
_ATTR_RE = re.compile(r"([^\s=>/]+)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+))?")
_CHAR_REF_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);")


def _html_entity(tag: str, attrs: dict[str, str]) -> Entity | None:
    """The entity a start tag opens (None for tags that carry no formatting)."""
    if tag in _SIMPLE_TAGS:
        return {"type": _SIMPLE_TAGS[tag]}
    if tag == "a":
        href = attrs.get("href")
        return {"type": "text_link", "url": href} if href else None
    if tag == "span":
        return {"type": "spoiler"} if attrs.get("class") == "tg-spoiler" else None
    if tag == "blockquote":
        return {"type": "expandable_blockquote" if "expandable" in attrs else "blockquote"}
    if tag == "tg-emoji":
        return {"type": "custom_emoji", "custom_emoji_id": attrs.get("emoji-id", "")}
    return None


def parse_html(source: str) -> tuple[str, list[Entity]]:
    """Parse Telegram's HTML subset; reject anything Telegram would reject."""
    out = _Builder()
    stack: list[_Open] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "&":
            match = _CHAR_REF_RE.match(source, i)
            out.write(html.unescape(match.group()) if match else "&")
            i = match.end() if match else i + 1
        elif char != "<":
            end = min(p for p in (source.find("<", i), source.find("&", i), len(source)) if p >= 0)
            out.write(source[i:end])
            i = end
        elif source.startswith("</", i):
            i = _html_end_tag(source, i, stack, out)
        else:
            i = _html_start_tag(source, i, stack, out)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    return out.result()


def _html_start_tag(source: str, i: int, stack: list[_Open], out: _Builder) -> int:
    match = _START_TAG_RE.match(source, i)
    name = _TAG_NAME_RE.match(source, i)
    tag = (match.group(1) if match else name.group(1) if name else "").lower()
    if match is None or (tag not in _SIMPLE_TAGS and tag not in _OTHER_TAGS):
        raise EntityParseError(
            f'Unsupported start tag "{tag}" at byte offset {_byte_offset(source, i)}'
        )
    attrs = {
        name.lower(): html.unescape(value.strip("\"'")) if value else ""
        for name, value in _ATTR_RE.findall(match.group(2) or "")
    }
    entity = _html_entity(tag, attrs)
    if tag == "code" and stack and stack[-1].tag == "pre" and stack[-1].entity is not None:
        # <pre><code class="language-x"> is one pre entity with a language.
        language = attrs.get("class", "").removeprefix("language-")
        if language:
            stack[-1].entity["language"] = language
        entity = None
    stack.append(_Open(tag, entity, out.length, _byte_offset(source, i)))
    return match.end()


def _html_end_tag(source: str, i: int, stack: list[_Open], out: _Builder) -> int:
    end = source.find(">", i)
    if end < 0:
        raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(source, i)}")
    tag = source[i + 2 : end].strip().lower()
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(source, i)}")
    opened = stack.pop()
    if opened.tag != tag:
        raise EntityParseError(
            f"Unmatched end tag at byte offset {_byte_offset(source, i)}, "
            f'expected "</{opened.tag}>", found "</{tag}>"'
        )
    out.close(opened)
    return end + 1


# -------------------------------------------------------------------------- Markdown

_MD_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
}


def parse_markdown(source: str, *, v2: bool) -> tuple[str, list[Entity]]:
    """Parse MarkdownV2 (strict: reserved characters must be escaped) or legacy Markdown."""
    markers = (
        [
            ("||", "spoiler"),
            ("__", "underline"),
            ("*", "bold"),
            ("_", "italic"),
            ("~", "strikethrough"),
        ]
        if v2
        else [("*", "bold"), ("_", "italic")]
    )
    out = _Builder()
    stack: list[_Open] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "\\" and i + 1 < len(source) and (v2 or source[i + 1] in "_*`["):
            out.write(source[i + 1])
            i += 2
            continue
        if char == "`":
            i = _md_code(source, i, out, v2=v2)
            continue
        if char == "[" or (v2 and source.startswith("![", i)):
            start = i + (2 if char == "!" else 1)
            kind = "custom_emoji" if char == "!" else "text_link"
            stack.append(_Open("]", {"type": kind}, out.length, _byte_offset(source, i)))
            i = start
            continue
        if char == "]" and stack and stack[-1].tag == "]":
            i = _md_link_end(source, i, stack.pop(), out, v2=v2)
            continue
        marker = next((m for m in markers if source.startswith(m[0], i)), None)
        if marker is not None:
            token, kind = marker
            open_index = next((n for n, o in enumerate(stack) if o.tag == token), None)
            if open_index is None:
                stack.append(_Open(token, {"type": kind}, out.length, _byte_offset(source, i)))
            else:
                out.close(stack.pop(open_index))
            i += len(token)
            continue
        if v2 and char in _MD_RESERVED:
            raise EntityParseError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        out.write(char)
        i += 1
    if stack:
        opened = stack[-1]
        name = _MD_NAMES.get(opened.entity["type"] if opened.entity else "", "TextUrl")
        raise EntityParseError(
            f"Can't find end of {name} entity at byte offset {opened.byte_offset}"
        )
    return out.result()


def _md_code(source: str, i: int, out: _Builder, *, v2: bool) -> int:
    """Inline `code` or a ```pre``` block; inside, only ` and \\ are escaped."""
    fence = "```" if source.startswith("```", i) else "`"
    j = i + len(fence)
    chunk: list[str] = []
    while j < len(source) and not source.startswith(fence, j):
        if v2 and source[j] == "\\" and j + 1 < len(source):
            chunk.append(source[j + 1])
            j += 2
        else:
            chunk.append(source[j])
            j += 1
    if j >= len(source):
        kind = "Pre" if fence == "```" else "Code"
        raise EntityParseError(
            f"Can't find end of {kind} entity at byte offset {_byte_offset(source, i)}"
        )
    body = "".join(chunk)
    entity: Entity = {"type": "code"}
    if fence == "```":
        entity = {"type": "pre"}
        first, newline, rest = body.partition("\n")
        if newline and first and " " not in first:
            entity["language"] = first
            body = rest
        elif newline and not first:
            body = rest
    start = out.length
    out.write(body)
    out.close(_Open(fence, entity, start, 0))
    return j + len(fence)


def _md_link_end(source: str, i: int, opened: _Open, out: _Builder, *, v2: bool) -> int:
    """Finish ``[text](url)`` (or ``![emoji](tg://emoji?id=…)``) at the closing bracket."""
    if not source.startswith("(", i + 1):
        if v2:
            raise EntityParseError(
                "Character ']' is reserved and must be escaped with the preceding '\\'"
            )
        return i + 1
    j = i + 2
    url: list[str] = []
    while j < len(source) and source[j] != ")":
        if source[j] == "\\" and j + 1 < len(source):
            j += 1
        url.append(source[j])
        j += 1
    if j >= len(source):
        raise EntityParseError(f"Can't find end of a URL at byte offset {_byte_offset(source, i)}")
    target = "".join(url)
    assert opened.entity is not None
    if opened.entity["type"] == "custom_emoji":
        opened.entity["custom_emoji_id"] = target.partition("id=")[2]
    else:
        opened.entity["url"] = target
    out.close(opened)
    return j + 1
