"""Hostile input: the PAN scanner, the decoder's guards and safe dead letters."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.dlq import MAX_ORIGINAL_BYTES, dead_letter
from streams.events import Label, Transaction
from streams.jsonscan import MAX_DEPTH, nesting_depth
from streams.pan import (
    _CANDIDATE,
    REDACTED,
    _may_hold_candidate,
    contains_pan,
    find_pan,
    pan_spans,
    redact_payload,
    redact_text,
)
from streams.serde import EventTimeBounds, Rejection, label_decoder, transaction_decoder
from tests.malformed import GOOD

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
BOUNDED = transaction_decoder.with_bounds(EventTimeBounds(max_skew_s=300, max_age_s=86_400))
WINDOW = BOUNDED.bounds.window(NOW) if BOUNDED.bounds else None


def _tx(**changes: object) -> bytes:
    return json.dumps({**GOOD, "event_time": NOW.isoformat(), **changes}).encode()


# -- the scanner ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pans"),
    [
        ("4111111111111111", ["4111111111111111"]),
        ("x4111111111111111", ["4111111111111111"]),  # a prefix does not hide it
        ("call 4111 1111 1111 1111 back", ["4111 1111 1111 1111"]),
        ("4111-1111-1111-1111", ["4111-1111-1111-1111"]),
        ("4111.1111.1111.1111", ["4111.1111.1111.1111"]),
        ("amex 3782 822463 10005.", ["3782 822463 10005"]),  # 4-6-5
        ("4111111111111111 5500000000000004", ["4111111111111111", "5500000000000004"]),
        ("４１１１１１１１１１１１１１１１", ["４１１１１１１１１１１１１１１１"]),  # full-width
        ("6011111111111117", ["6011111111111117"]),
    ],
)
def test_scanner_finds_card_numbers_in_any_text(text: str, pans: list[str]) -> None:
    assert [text[a:b] for a, b in pan_spans(text)] == pans
    assert contains_pan(text)
    assert REDACTED in redact_text(text) and not contains_pan(redact_text(text))


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",  # fails Luhn
        "41111111111111110",  # 17 digits: not Luhn-valid as a whole
        "0000000000000000",  # Luhn-valid but starts with 0: no scheme issues it
        "411111111111",  # 12 digits
        "12345678901234567890123",  # a 23-digit number is not a card number
        "6f1b4c2e-4111-1111-1111-111111111111",  # a UUID's groups are not a card's
        "2026-11-23T10:00:00.123456+00:00",
        "tx8fa73647-81811172",
        "4111 11111 111 1111",  # not a card's grouping
        "drift of +0.439719946999503 s",  # a float's fraction
    ],
)
def test_scanner_leaves_other_numbers_alone(text: str) -> None:
    assert list(pan_spans(text)) == []
    assert redact_text(text) == text


@pytest.mark.parametrize(
    "payload",
    [
        b'{"memo": "\\u0034111111111111111"}',  # a JSON escape spells the same digits
        b'{"memo": "x4111111111111111"}',
        b'{"memo": "paid with 5500 0000 0000 0004"}',
        b'{"4111111111111111": 1}',  # keys are strings too
        b'{"PAN": "tok_1"}',
        b'{"card_number": "tok_1"}',
        b'{"p\\u0061n": "tok_1"}',  # an escaped field name
        b'[{"a": ["x", {"b": "4111111111111111"}]}]',
    ],
)
def test_find_pan_sees_through_json(payload: bytes) -> None:
    assert find_pan(payload) is not None


def test_find_pan_ignores_numbers_and_harmless_text() -> None:
    assert find_pan(b'{"produced_at_us": 4111111111111111, "method": "pan"}') is None
    assert find_pan(_tx()) is None


def test_redacted_payload_keeps_structure_and_drops_every_pan() -> None:
    payload = b'{"a": ["4111-1111-1111-1111", 3], "\\u0034111111111111111": "ok"}'
    kept, redacted = redact_payload(payload)
    assert redacted
    document = json.loads(kept)
    assert document["a"] == [REDACTED, 3]
    assert list(document) == ["a", REDACTED]
    assert find_pan(kept) is None


def test_clean_payload_is_kept_byte_for_byte() -> None:
    payload = b'{"a":  "tx-1",\n"b": [1, 2]}'
    assert redact_payload(payload) == (payload, False)


def test_bytes_that_are_not_json_are_redacted_as_text() -> None:
    kept, redacted = redact_payload(b"\xff\xfe not json 4111111111111111 \\u00345")
    assert redacted and b"4111111111111111" not in kept
    assert redact_payload(b"\xff\xfe not json at all") == (b"\xff\xfe not json at all", False)


# -- the decoder's guards ----------------------------------------------------------------


def test_nesting_depth_is_exact_and_ignores_strings() -> None:
    wide = b'{"a": [' + b'[1], {"b": [2]}, ' * 50 + b"[3]]}"
    assert nesting_depth(wide) == 4  # 153 opening brackets, 4 deep
    assert nesting_depth(b'{"a": [[1], {"b": [2]}]}') <= MAX_DEPTH  # few: no exact scan
    assert nesting_depth(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}') == 1
    assert nesting_depth(b"[" * 5000) == 5000


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (_tx()[:-1] + b', "x": ' + b"[" * 1000 + b"]" * 1000 + b"}", "too_deep"),
        (b"[" * 200_000, "too_large"),
        (
            _tx()[:-1] + b', "x": ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}",
            "too_deep",
        ),
        (_tx(transaction_id="t1\n"), "invalid_value"),
        (_tx(currency="EUR\n"), "invalid_value"),
        (_tx(schema_version=2), "unsupported_version"),
        (_tx()[:-1] + b', "amount": 1.0}', "duplicate_field"),
        (_tx()[:-1] + b', "am\\u006funt": 9999.0}', "duplicate_field"),  # the same key, escaped
        (_tx()[:-1] + b', "amount"\n : 9999.0}', "duplicate_field"),
        (_tx(event_time="9999-01-01T00:00:00Z"), "event_time_out_of_range"),
        (_tx(event_time=(NOW + timedelta(minutes=6)).isoformat()), "event_time_out_of_range"),
        (_tx(event_time=(NOW - timedelta(days=2)).isoformat()), "event_time_out_of_range"),
        (_tx(memo="x4111111111111111"), "pan_not_allowed"),
        (b"\xc3\x28", "invalid_utf8"),
    ],
)
def test_hostile_transactions_get_their_reason(payload: bytes, reason: str) -> None:
    result = BOUNDED.decode(payload, WINDOW)
    assert isinstance(result, Rejection), result
    assert result.reason == reason, result.message


def test_escaped_pan_in_json_string_is_refused() -> None:
    payload = _tx().replace(b'"memo"', b"")[:-1] + b', "memo": "\\u0034111111111111111"}'
    result = BOUNDED.decode(payload, WINDOW)
    assert isinstance(result, Rejection) and result.reason == "pan_not_allowed"


def test_a_duplicate_inside_a_string_is_not_a_duplicate_field() -> None:
    payload = _tx(memo='"amount": 3')
    assert isinstance(BOUNDED.decode(payload, WINDOW), Transaction)


def test_time_window_edges() -> None:
    on_edge = _tx(event_time=(NOW + timedelta(minutes=5)).isoformat())
    assert isinstance(BOUNDED.decode(on_edge, WINDOW), Transaction)
    unbounded = transaction_decoder.with_bounds(None)
    assert isinstance(unbounded.decode(_tx(event_time="2020-01-01T00:00:00Z")), Transaction)


def test_labels_from_the_future_are_refused() -> None:
    label = {
        "transaction_id": "tx1",
        "label": "fraud",
        "analyst": "ana",
        "labelled_at": "9999-01-01T00:00:00Z",
        "source": "chargeback",
    }
    result = label_decoder.decode(json.dumps(label).encode())
    assert isinstance(result, Rejection) and result.reason == "event_time_out_of_range"
    now = {**label, "labelled_at": datetime.now(UTC).isoformat()}
    assert isinstance(label_decoder.decode(json.dumps(now).encode()), Label)
    control = {**now, "analyst": "ana\x1b[2J"}
    assert isinstance(label_decoder.decode(json.dumps(control).encode()), Rejection)


@pytest.mark.parametrize("guard", ["clean_flat_object", "find_pan"])
def test_decode_never_raises_even_when_a_guard_does(
    guard: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_: bytes) -> None:
        raise MemoryError("simulated")

    if guard == "find_pan":  # reached only for a payload the C pass is not sure of
        monkeypatch.setattr("streams.serde.clean_flat_object", lambda _: False)
    monkeypatch.setattr(f"streams.serde.{guard}", broken)
    result = BOUNDED.decode(_tx(), WINDOW)
    assert result == Rejection("processing_error", "MemoryError while decoding")


# -- dead letters -------------------------------------------------------------------------


def _letter(original: bytes, key: bytes | None = None) -> object:
    return dead_letter(
        source_topic="t",
        partition=0,
        offset=7,
        reason="pan_not_allowed",
        message="a card number 4111111111111111 was here",
        original=original,
        key=key,
    )


def test_dead_letter_never_holds_a_pan() -> None:
    original = _tx(memo="x4111111111111111")
    letter = _letter(original, key=b"4111111111111111")
    assert letter.redacted
    assert b"4111111111111111" not in letter.original
    assert letter.key is not None and b"4111111111111111" not in letter.key
    assert "4111111111111111" not in letter.message
    assert letter.original_sha256 == hashlib.sha256(original).hexdigest()
    assert letter.original_bytes == len(original)


def test_dead_letter_keeps_a_clean_original_exactly() -> None:
    original = b'{"transaction_id": "tx-1", "amount": "12"}'
    letter = _letter(original, key=b"K1")
    assert (letter.original, letter.key, letter.redacted) == (original, b"K1", False)


def test_dead_letter_cuts_huge_originals() -> None:
    original = b'{"pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    letter = _letter(original)
    assert letter.truncated and len(letter.original) == MAX_ORIGINAL_BYTES
    assert letter.original_bytes == len(original)


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111.1111.1111.1111",
        "x4111111111111111y",
        "1234567890123",
    ],
)
def test_the_candidate_prefilter_never_hides_what_the_pattern_finds(text: str) -> None:
    """The cheap prefilter is a necessary condition of the candidate pattern: wherever
    the pattern matches, the prefilter must say "maybe"."""
    payload = json.dumps({"note": text, "amount": 12.5}).encode()
    assert _CANDIDATE.search(payload) is not None
    assert _may_hold_candidate(payload)


@settings(max_examples=2_000, deadline=None, database=None)
@given(st.binary(max_size=120) | st.text(alphabet="0123456789 -.x", max_size=60).map(str.encode))
def test_the_candidate_prefilter_is_a_necessary_condition(payload: bytes) -> None:
    if _CANDIDATE.search(payload) is not None:
        assert _may_hold_candidate(payload)
