"""Dead-letter records: bad input becomes data on ``transactions.dlq``, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime

from confluent_kafka import Message

from streams.events import DeadLetter
from streams.serde import Rejection, encode


def dead_letter_for(message: Message, rejection: Rejection) -> DeadLetter:
    """The DLQ record for a Kafka message that failed decoding or processing."""
    value = message.value()
    key = message.key()
    return DeadLetter(
        source_topic=str(message.topic()),
        partition=int(message.partition() or 0),
        offset=int(message.offset() or 0),
        reason=rejection.reason,
        message=rejection.message[:2000],
        original=bytes(value) if value is not None else b"",
        key=bytes(key) if isinstance(key, bytes | bytearray) else None,
        failed_at=datetime.now(UTC),
    )


def encode_dead_letter(letter: DeadLetter) -> tuple[bytes, bytes | None]:
    """(value, key) to produce: keyed like the source record so replays stay ordered."""
    return encode(letter), letter.key
