"""HMAC-SHA256 request signatures: ``sha256=hex(HMAC(secret, "<timestamp>." + body))``.

The timestamp (Unix seconds) is signed with the body, so a captured request cannot be replayed
after ``max_age_s``; event ids make a replay within that window harmless too.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Touchpoint-Timestamp"
SIGNATURE_HEADER = "X-Touchpoint-Signature"


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
    try:
        sent_at = int(timestamp)
    except ValueError:
        return "bad_timestamp"
    if abs(now - sent_at) > max_age_s:
        return "stale_timestamp"
    if not hmac.compare_digest(sign(secret, sent_at, body), signature.strip()):
        return "bad_signature"
    return None
