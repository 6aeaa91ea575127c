"""Encoding and strict decoding of events.

Decoding never raises, whatever the bytes: it returns either the event or a
:class:`Rejection` with a machine-readable reason (the DLQ reason) and a precise human
message naming the field. The scorer turns rejections into ``DeadLetter`` records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

import msgspec

from streams.events import (
    DeadLetterReason,
    Decision,
    Label,
    ModelEvent,
    ReviewCase,
    Transaction,
    transaction_text_error,
)
from streams.jsonscan import MAX_DEPTH, clean_flat_object, nesting_depth
from streams.pan import contains_pan, find_pan

MAX_MESSAGE_BYTES = 64 * 1024

E = TypeVar("E", bound=msgspec.Struct)
TextCheck = Callable[[E], tuple[str, str] | None]

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


@dataclass(frozen=True)
class EventTimeBounds:
    """How far an event's time may be from the clock: a transaction dated in the future
    would make every later one of its card and terminal "too late" for the windows, and
    one older than the longest window cannot be scored as of its time."""

    max_skew_s: float = 300.0
    max_age_s: float | None = 30 * 86_400.0

    def window(self, now: datetime) -> tuple[datetime | None, datetime]:
        oldest = None if self.max_age_s is None else now - timedelta(seconds=self.max_age_s)
        return oldest, now + timedelta(seconds=self.max_skew_s)


Window = tuple[datetime | None, datetime]


class Decoder(Generic[E]):
    """A reusable strict decoder for one event type, with the input guards in front.

    Order: size, UTF-8, nesting depth (before any parser recurses), card numbers,
    duplicate fields, the typed decode, the time window. The four checks after the size
    run in Python only for a payload that one C pass (:func:`clean_flat_object`) cannot
    vouch for: a flat object of plain ASCII with unique keys and no digit run a card number
    needs, which they all would pass. Anything any step raises on one
    payload becomes a :class:`Rejection`; :meth:`decode` never raises.
    """

    def __init__(
        self,
        event_type: type[E],
        *,
        max_bytes: int = MAX_MESSAGE_BYTES,
        check_pan: bool = True,
        time_field: str | None = None,
        bounds: EventTimeBounds | None = None,
        free_text: tuple[str, ...] = (),
        text_check: TextCheck[E] | None = None,
    ) -> None:
        """``free_text``: fields where a card number is redacted by the caller, not refused;
        the PAN check then runs on the decoded event's other string fields (for structs that
        forbid unknown fields, so nothing else can hide one). ``text_check``: the text
        patterns the event's type leaves to the decoder (:class:`Transaction`); it returns
        the path of the first refused field and its pattern."""
        self.event_type = event_type
        self._decoder = msgspec.json.Decoder(event_type)
        self._max_bytes = max_bytes
        self._check_pan = check_pan
        self._time_field = time_field
        self.bounds = bounds
        self._free_text = free_text
        self._text_check = text_check
        fields = "|".join(re.escape(f) for f in event_type.__struct_fields__)
        self._field_token = re.compile(rb'"(' + fields.encode() + rb')"\s*:')

    def with_bounds(self, bounds: EventTimeBounds | None) -> Decoder[E]:
        """The same decoder checking ``time_field`` against ``bounds`` (None: unchecked)."""
        return Decoder(
            self.event_type,
            max_bytes=self._max_bytes,
            check_pan=self._check_pan,
            time_field=self._time_field,
            bounds=bounds,
            free_text=self._free_text,
            text_check=self._text_check,
        )

    def window(self) -> Window | None:
        """The accepted time window as of now (compute once per batch, pass to decode)."""
        return None if self.bounds is None else self.bounds.window(datetime.now(UTC))

    def decode(self, payload: bytes | None, window: Window | None = None) -> E | Rejection:
        try:
            return self._decode(payload, window)
        except Exception as exc:  # a decoder bug must cost one dead letter, not the service
            return Rejection("processing_error", f"{type(exc).__name__} while decoding")

    def _decode(self, payload: bytes | None, window: Window | None) -> E | Rejection:
        if payload is None or len(payload) == 0:
            return Rejection("invalid_json", "empty payload")
        if len(payload) > self._max_bytes:
            return Rejection(
                "too_large", f"payload is {len(payload)} bytes, limit {self._max_bytes}"
            )
        if not clean_flat_object(payload):  # the usual payload passes in one C pass
            refused = self._guard(payload)
            if refused is not None:
                return refused
        try:
            event = self._decoder.decode(payload)
        except msgspec.ValidationError as exc:
            text = str(exc)
            return Rejection(classify_validation_error(text), text)
        except (msgspec.DecodeError, RecursionError) as exc:
            return Rejection("invalid_json", str(exc)[:200])
        if self._text_check is not None:
            mismatch = self._text_check(event)
            if mismatch is not None:  # worded as msgspec words a pattern it checks itself
                path, pattern = mismatch
                return Rejection(
                    "invalid_value", f"Expected `str` matching regex {pattern!r} - at `$.{path}`"
                )
        if self._free_text:
            for name in event.__struct_fields__:
                value = getattr(event, name)
                if name not in self._free_text and isinstance(value, str) and contains_pan(value):
                    return Rejection("pan_not_allowed", f"a card number in `$.{name}`")
        if self._time_field is not None and self.bounds is not None:
            return self._in_window(event, window or self.window())
        return event

    def _guard(self, payload: bytes) -> Rejection | None:
        """The exact input checks, for a payload the C pass was not sure of."""
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Rejection("invalid_utf8", f"not UTF-8 at byte {exc.start}")
        depth = nesting_depth(payload)
        if depth > MAX_DEPTH:
            return Rejection("too_deep", f"nested {depth} deep, limit {MAX_DEPTH}")
        if self._check_pan and not self._free_text:
            pan = find_pan(payload)
            if pan is not None:
                return Rejection("pan_not_allowed", pan)
        duplicate = self._duplicate_field(payload)
        if duplicate is not None:
            return Rejection("duplicate_field", f"field `{duplicate}` appears more than once")
        return None

    def _duplicate_field(self, payload: bytes) -> str | None:
        """A known field given twice in one object (JSON keeps the last silently, so a
        validator and this decoder could read two different events from the same bytes).
        Token counting finds candidates; the exact check parses only those payloads, and
        every payload with an escape (``"am\\u006funt"`` is ``amount`` to a JSON parser)."""
        if b"\\" not in payload:
            tokens = self._field_token.findall(payload)
            if len(tokens) == len(set(tokens)):
                return None
        return duplicate_key(payload)

    def _in_window(self, event: E, window: Window | None) -> E | Rejection:
        assert self._time_field is not None and window is not None
        at = getattr(event, self._time_field)
        oldest, latest = window
        if at > latest or (oldest is not None and at < oldest):
            return Rejection(
                "event_time_out_of_range",
                f"`{self._time_field}` {at.isoformat()} is outside "
                f"[{oldest.isoformat() if oldest else '-'}, {latest.isoformat()}]",
            )
        return event


def duplicate_key(payload: bytes) -> str | None:
    """The first key that appears twice in one object of a JSON document, else None."""
    found: list[str] = []

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen and not found:
                found.append(key)
            seen.add(key)
        return dict(items)

    try:
        json.loads(payload, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None  # not JSON: the typed decode says why
    return found[0] if found else None


def _case_text(case: ReviewCase) -> tuple[str, str] | None:
    refused = transaction_text_error(case.transaction)
    return None if refused is None else (f"transaction.{refused[0]}", refused[1])


transaction_decoder: Decoder[Transaction] = Decoder(
    Transaction, time_field="event_time", text_check=transaction_text_error
)
"""The contract alone; the scorer and the API check ``event_time`` against the bounds of
their settings (:meth:`Decoder.with_bounds`)."""
decision_decoder: Decoder[Decision] = Decoder(Decision, max_bytes=1024 * 1024, check_pan=False)
review_case_decoder: Decoder[ReviewCase] = Decoder(
    ReviewCase, max_bytes=1024 * 1024, text_check=_case_text
)
label_decoder: Decoder[Label] = Decoder(
    Label, time_field="labelled_at", bounds=EventTimeBounds(max_age_s=None)
)
model_event_decoder: Decoder[ModelEvent] = Decoder(
    ModelEvent, max_bytes=1024 * 1024, check_pan=False
)
