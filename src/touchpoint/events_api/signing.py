"""HMAC-SHA256 request signatures: ``sha256=hex(HMAC(secret, "<timestamp>." + body))``.

The timestamp (Unix seconds) is signed with the body, so a captured request cannot be replayed
after ``max_age_s``; event ids make a replay within that window harmless too.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

TIMESTAMP_HEADER = "X-Touchpoint-Timestamp"
SIGNATURE_HEADER = "X-Touchpoint-Signature"
# Header formats, checked before any arithmetic or comparison: Unix seconds in ASCII digits (no
# sign, no spaces, no 300-digit numbers), and a lowercase or uppercase hex SHA-256.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"sha256=[0-9a-fA-F]{64}")


def demo_secret() -> str:
    """The demo's own secret, new at every start and printed with the events URL."""
    return secrets.token_hex(32)


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        "Content-Type": "application/json",
    }


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, *,
           now: float, max_age_s: int) -> str | None:
    """None when the request is authentic and fresh, else the reason it is refused."""
    if not timestamp or not signature:
        return "missing_signature"
    if not _TIMESTAMP.fullmatch(timestamp.strip()):
        return "bad_timestamp"
    sent_at = int(timestamp.strip())
    if abs(now - sent_at) > max_age_s:
        return "stale_timestamp"
    signature = signature.strip()
    if not _SIGNATURE.fullmatch(signature):
        return "bad_signature"
    expected = sign(secret, sent_at, body)
    if not hmac.compare_digest(expected.encode(), ("sha256=" + signature[7:].lower()).encode()):
        return "bad_signature"
    return None
