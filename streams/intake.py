"""Turning a polled batch of Kafka messages into transactions plus dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

from streams.dlq import dead_letter, dead_letter_for
from streams.events import DeadLetter, Transaction
from streams.serde import Decoder, Rejection, transaction_decoder


@dataclass
class DecodedBatch:
    """The good transactions (with their produce timestamps and partitions) and the
    rejected records."""

    transactions: list[Transaction] = field(default_factory=list)
    produced_at_ms: list[int] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)

    def partition_of(self) -> dict[str, int]:
        """transaction_id -> the partition it was read from (where its decision goes)."""
        ids = (t.transaction_id for t in self.transactions)
        return dict(zip(ids, self.partitions, strict=False))  # a batch built without them: none


def decode_batch(
    messages: Sequence[Message], decoder: Decoder[Transaction] = transaction_decoder
) -> DecodedBatch:
    batch = DecodedBatch()
    window = decoder.window()  # one clock reading for the batch's time checks
    for message in messages:
        error = message.error()
        if error is not None:  # partition EOF or a transport hiccup: not a record
            batch.transport_errors.append(str(error))
            continue
        result = decoder.decode(message.value(), window)
        if isinstance(result, Rejection):
            batch.dead_letters.append(_letter(message, result))
            continue
        ts_type, ts = message.timestamp()
        batch.transactions.append(result)
        batch.produced_at_ms.append(ts if ts_type != TIMESTAMP_NOT_AVAILABLE else -1)
        batch.partitions.append(int(message.partition() or 0))
    return batch


def _letter(message: Message, rejection: Rejection) -> DeadLetter:
    """The record's dead letter; if even building it fails, one without the original, so a
    record that defeats the redaction costs its bytes, not the batch."""
    try:
        return dead_letter_for(message, rejection)
    except Exception as exc:
        return dead_letter(
            source_topic=str(message.topic()),
            partition=int(message.partition() or 0),
            offset=int(message.offset() or 0),
            reason=rejection.reason,
            message=f"{rejection.message} (original dropped: {type(exc).__name__})",
            original=b"",
            key=None,
        )
