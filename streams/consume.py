"""How a latency-bound service takes its next batch from a consumer.

``Consumer.consume(n, timeout)`` returns when ``n`` records are there or when the timeout
has passed, so below ``n`` records per timeout every call waits the whole timeout. In a
loop that then works on the batch, that dead time adds to every cycle and, under load,
grows the batches, which lengthen the cycle again (docs/adr/0003-polling.md).

:func:`next_batch` takes what librdkafka has already fetched, at once, and waits only when
it has nothing: for the first record, at most ``wait_s``, then with that record whatever
came with it. Batches are as large as what arrived while the previous one was worked on -
small when the service keeps up, large when it falls behind - and no cycle idles while
records are waiting.
"""

from __future__ import annotations

from typing import Protocol

from confluent_kafka import Message


class BatchSource(Protocol):
    """The part of ``confluent_kafka.Consumer`` :func:`next_batch` uses."""

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]: ...

    def poll(self, timeout: float = -1) -> Message | None: ...


def next_batch(consumer: BatchSource, max_messages: int, wait_s: float) -> list[Message]:
    """Up to ``max_messages`` records: those already fetched, without waiting; when there
    are none, the first to arrive within ``wait_s`` and those fetched with it; else ``[]``.

    Error events (``message.error()`` set) are returned like records, as ``consume`` does.
    """
    if max_messages < 1:
        raise ValueError(f"max_messages must be at least 1, not {max_messages}")
    queued = consumer.consume(max_messages, 0)
    if queued:
        return queued
    first = consumer.poll(wait_s)
    if first is None:
        return []
    return [first, *consumer.consume(max_messages - 1, 0)] if max_messages > 1 else [first]
