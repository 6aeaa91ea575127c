"""Encoding and strict decoding of events.

Decoding never raises on bad input: it returns either the event or a :class:`Rejection`
with a machine-readable reason (the DLQ reason) and a precise human message naming the
field. The scorer turns rejections into ``DeadLetter`` records.
"""

from __future__ import annotations

import re
from typing import Generic, TypeVar

import msgspec

from streams.events import (
    DeadLetterReason,
    Decision,
    Label,
    ModelEvent,
    ReviewCase,
    Transaction,
)
from streams.pan import find_pan

MAX_MESSAGE_BYTES = 64 * 1024

E = TypeVar("E", bound=msgspec.Struct)

_encoder = msgspec.json.Encoder()
_RANGE = re.compile(r"^Expected `(?:int|float|str|array|object)` (?:[<>]=?|of length)")


class Rejection(msgspec.Struct, frozen=True):
    """Why a payload was refused: ``reason`` is the DLQ reason code."""

    reason: DeadLetterReason
    message: str


def encode(event: msgspec.Struct) -> bytes:
    """Encode any event to compact JSON bytes."""
    return _encoder.encode(event)


def classify_validation_error(message: str) -> DeadLetterReason:
    """Map a msgspec validation message to a DLQ reason code."""
    if "missing required field" in message:
        return "missing_field"
    if "$.schema_version" in message:
        return "unsupported_version"
    if _RANGE.match(message):
        return "out_of_range"
    if message.startswith("Expected `") and ", got `" in message:
        return "wrong_type"
    return "invalid_value"


class Decoder(Generic[E]):
    """A reusable strict decoder for one event type, with the input guards in front."""

    def __init__(
        self, event_type: type[E], *, max_bytes: int = MAX_MESSAGE_BYTES, check_pan: bool = True
    ) -> None:
        self._decoder = msgspec.json.Decoder(event_type)
        self._max_bytes = max_bytes
        self._check_pan = check_pan

    def decode(self, payload: bytes | None) -> E | Rejection:
        if payload is None or len(payload) == 0:
            return Rejection("invalid_json", "empty payload")
        if len(payload) > self._max_bytes:
            return Rejection(
                "too_large", f"payload is {len(payload)} bytes, limit {self._max_bytes}"
            )
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Rejection("invalid_utf8", f"not UTF-8 at byte {exc.start}")
        if self._check_pan:
            pan = find_pan(payload)
            if pan is not None:
                return Rejection("pan_not_allowed", pan)
        try:
            return self._decoder.decode(payload)
        except msgspec.ValidationError as exc:
            text = str(exc)
            return Rejection(classify_validation_error(text), text)
        except msgspec.DecodeError as exc:
            return Rejection("invalid_json", str(exc))


transaction_decoder: Decoder[Transaction] = Decoder(Transaction)
decision_decoder: Decoder[Decision] = Decoder(Decision, max_bytes=1024 * 1024, check_pan=False)
review_case_decoder: Decoder[ReviewCase] = Decoder(ReviewCase, max_bytes=1024 * 1024)
label_decoder: Decoder[Label] = Decoder(Label)
model_event_decoder: Decoder[ModelEvent] = Decoder(
    ModelEvent, max_bytes=1024 * 1024, check_pan=False
)
