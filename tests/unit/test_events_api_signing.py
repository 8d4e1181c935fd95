"""Signature checks and payload validation, with hypothesis for malformed and oversized input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from touchpoint.events_api.schemas import EventErrors, parse_events
from touchpoint.events_api.signing import sign, verify

NOW = 1_800_000_000
SECRET = "s3cret"


def check(body: bytes, *, secret: str = SECRET, ts: int = NOW, signature: str | None = None,
          now: int = NOW) -> str | None:
    return verify(SECRET, str(ts), signature or sign(secret, ts, body), body, now=now, max_age_s=300)


def test_a_fresh_correct_signature_passes() -> None:
    assert check(b'{"a": 1}') is None


@given(body=st.binary(min_size=1, max_size=2048), position=st.integers(min_value=0), flip=st.integers(1, 255))
def test_any_tampered_byte_is_refused(body: bytes, position: int, flip: int) -> None:
    signature = sign(SECRET, NOW, body)
    index = position % len(body)
    tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1:]
    assert verify(SECRET, str(NOW), signature, tampered, now=NOW, max_age_s=300) == "bad_signature"


def test_wrong_secret_and_stale_or_missing_headers() -> None:
    assert check(b"{}", secret="other") == "bad_signature"
    assert check(b"{}", ts=NOW - 301) == "stale_timestamp"
    assert check(b"{}", ts=NOW + 301) == "stale_timestamp"
    assert check(b"{}", ts=NOW - 299) is None
    assert verify(SECRET, None, "sha256=x", b"{}", now=NOW, max_age_s=300) == "missing_signature"
    assert verify(SECRET, "yesterday", "sha256=x", b"{}", now=NOW, max_age_s=300) == "bad_timestamp"


def test_the_timestamp_is_part_of_what_is_signed() -> None:
    signature = sign(SECRET, NOW, b"{}")
    assert verify(SECRET, str(NOW + 1), signature, b"{}", now=NOW, max_age_s=300) == "bad_signature"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children,
                                                                          max_size=5),
    max_leaves=30,
)


event_like = st.fixed_dictionaries({
    "id": st.text(max_size=70),
    "type": st.sampled_from(["order.created", "order.status_changed", "cart.updated", "nope"]),
    "data": json_values,
})


@settings(max_examples=300)
@given(body=json_values | event_like)
def test_malformed_payloads_are_refused_cleanly(body: Any) -> None:
    """Whatever arrives, the answer is a validation error naming a field, never a crash."""
    try:
        parse_events(body, max_batch=10, phone_region="DE")
    except EventErrors as exc:
        assert all(error.field for error in exc.errors)
    except ValueError:
        pass


def test_oversized_batch_and_long_fields_are_refused() -> None:
    event = {"id": "x", "type": "product.viewed", "data": {"customer_id": "C-1", "sku": "S"}}
    with pytest.raises(ValueError, match="at most 10"):
        parse_events({"events": [event] * 11}, max_batch=10, phone_region="DE")
    with pytest.raises(EventErrors) as caught:
        parse_events({**event, "id": "x" * 65}, max_batch=10, phone_region="DE")
    assert caught.value.errors[0].field == "id"
    long_note = {"id": "y", "type": "order.status_changed",
                 "data": {"number": "BH-1234", "status": "paid", "note": "n" * 501}}
    with pytest.raises(EventErrors) as caught:
        parse_events({"events": [event, long_note]}, max_batch=10, phone_region="DE")
    assert (caught.value.errors[0].index, caught.value.errors[0].field) == (1, "data.note")


def test_phone_numbers_are_normalised_or_refused() -> None:
    upsert = {"id": "c", "type": "customer.upserted", "data": {"id": "C-1", "phone": "0151 1234 5671"}}
    events, _ = parse_events(upsert, max_batch=10, phone_region="DE")
    assert events[0].data.phone == "+4915112345671"
    with pytest.raises(EventErrors) as caught:
        parse_events(json.loads(json.dumps(upsert).replace("0151 1234 5671", "12")), max_batch=10,
                     phone_region="DE")
    assert caught.value.errors[0].field == "data.phone"


@given(timestamp=st.text(max_size=400), signature=st.text(max_size=200))
@example(timestamp="9" * 309, signature="sha256=" + "0" * 64)
@example(timestamp=str(NOW), signature="sha256=ü")
def test_any_header_text_gives_a_reason_never_an_exception(timestamp: str, signature: str) -> None:
    """Headers are checked for their format before any arithmetic or comparison: a 309-digit
    timestamp overflowed float subtraction, a non-ASCII signature made compare_digest raise."""
    reason = verify(SECRET, timestamp, signature, b"{}", now=NOW, max_age_s=300)
    assert reason in {"missing_signature", "bad_timestamp", "stale_timestamp", "bad_signature"}


def test_untrusted_json_refuses_deep_nesting_without_recursing() -> None:
    from touchpoint import untrusted_json

    for data in (b"[" * 1000 + b"]" * 1000, b"[" * 100_000, b'{"a":' * 33 + b"1" + b"}" * 33,
                 b"\xff"):
        with pytest.raises(untrusted_json.UntrustedJSONError):
            untrusted_json.loads(data)
    assert untrusted_json.loads(b'{"a":' * 31 + b"[1]" + b"}" * 31) is not None
    assert untrusted_json.depth([[[]], {"a": {"b": 1}}]) == 3 and untrusted_json.depth(5) == 0
