"""Dead-letter records: bad input becomes data on ``transactions.dlq``, never a crash.

Every dead letter of the project is built here, so none of them can hold a card number:
the original bytes are kept only when the scanner proves they hold no PAN, otherwise a
redacted copy (:func:`streams.pan.redact_payload`); the key and the message are redacted
alike. ``original_sha256`` identifies the exact bytes that were refused (to match a
producer's log) without keeping them; originals past ``MAX_ORIGINAL_BYTES`` are cut.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Message

from streams.events import DeadLetter, DeadLetterReason
from streams.pan import redact_payload
from streams.serde import Rejection, encode

MAX_ORIGINAL_BYTES = 64 * 1024
"""The largest transaction the intake accepts: a refused record beyond it (reason
``too_large``) could never be replayed, so only its head is kept, for diagnosis."""


def dead_letter(
    *,
    source_topic: str,
    partition: int,
    offset: int,
    reason: DeadLetterReason,
    message: str,
    original: bytes,
    key: bytes | None,
) -> DeadLetter:
    """The dead letter for one refused record, with its original made safe to keep."""
    truncated = len(original) > MAX_ORIGINAL_BYTES
    kept, redacted = redact_payload(original[:MAX_ORIGINAL_BYTES])
    safe_key = None
    if key is not None:
        safe_key, key_redacted = redact_payload(key, as_text=True)
        redacted = redacted or key_redacted
    return DeadLetter(
        source_topic=source_topic,
        partition=partition,
        offset=offset,
        reason=reason,
        message=_safe_text(message[:2000]),
        original=kept,
        key=safe_key,
        failed_at=datetime.now(UTC),
        original_sha256=hashlib.sha256(original).hexdigest(),
        original_bytes=len(original),
        redacted=redacted,
        truncated=truncated,
    )


def _safe_text(text: str) -> str:
    """``text`` redacted as it reads and as it would read with its escapes decoded."""
    kept, redacted = redact_payload(text.encode("utf-8", "replace"), as_text=True)
    return kept.decode("utf-8", "replace") if redacted else text


def dead_letter_for(message: Message, rejection: Rejection) -> DeadLetter:
    """The DLQ record for a Kafka message that failed decoding or processing."""
    return dead_letter(
        source_topic=str(message.topic()),
        partition=int(message.partition() or 0),
        offset=int(message.offset() or 0),
        reason=rejection.reason,
        message=rejection.message,
        original=_bytes(message.value()),
        key=_key(message.key()),
    )


def _bytes(value: Any) -> bytes:
    return bytes(value) if value is not None else b""


def _key(key: Any) -> bytes | None:
    if isinstance(key, str):
        return key.encode()
    return bytes(key) if isinstance(key, bytes | bytearray) else None


def encode_dead_letter(letter: DeadLetter) -> tuple[bytes, bytes | None]:
    """(value, key) to produce: keyed like the source record so replays stay ordered."""
    return encode(letter), letter.key
