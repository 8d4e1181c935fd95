"""`/start` deep-link payloads: at most 64 characters of A-Za-z0-9_- (Telegram's rule)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PAYLOAD = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
KNOWN_KINDS = ("ref", "link")


@dataclass(frozen=True, slots=True)
class StartPayload:
    kind: str  # "ref" (referral code), "link" (account link token) or "unknown"
    value: str


def parse_start_payload(raw: str | None) -> StartPayload | None:
    """Split ``ref_ABC`` into kind and value; anything malformed is ignored, not trusted."""
    if not raw or not _PAYLOAD.match(raw):
        return None
    kind, _, value = raw.partition("_")
    if kind in KNOWN_KINDS and value:
        return StartPayload(kind, value)
    return StartPayload("unknown", raw)
