"""The zero-work echo service: the latency floor the broker sets on this machine.

Consume -> produce, no decoding, no features, no model, but the scorer's Kafka shape:
the same latency-tuned client settings, batches of up to ``batch_max`` taken the same way
(:func:`streams.consume.next_batch`, same wait when idle), every output acknowledged
before the offsets are committed.
Each record is copied with its key and its original produce timestamp - as the record's
timestamp and in a header (:data:`PRODUCED_AT_HEADER`, which survives a
sink topic that stamps append times) - so a reader of the sink computes produce ->
readable latency from the record alone.

Run as a process: ``python -m loadtest.echo --bootstrap H:P --source T --sink T2 --group G``
(SIGTERM / SIGINT stop it after the current batch).
"""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Callable, Sequence
from types import FrameType

from confluent_kafka import Consumer, Producer, TopicPartition

from streams.consume import next_batch
from streams.errors import DeliveryFailed
from streams.kafka import consumer_config, producer_config

BATCH_MAX = 500
PRODUCED_AT_HEADER = "produced-at-ms"
"""The header in which each copy carries the input record's produce timestamp (ms)."""
POLL_TIMEOUT_S = 0.005


def run_echo(
    bootstrap: str,
    source: str,
    sink: str,
    group_id: str,
    *,
    max_idle_s: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    batch_max: int = BATCH_MAX,
    poll_timeout_s: float = POLL_TIMEOUT_S,
) -> int:
    """Copy ``source`` to ``sink`` until stopped (or idle); return the records copied."""
    consumer = Consumer(consumer_config(bootstrap, group_id=group_id, client_id="echo"))
    producer = Producer(producer_config(bootstrap, client_id="echo"))
    consumer.subscribe([source])
    copied = 0
    offsets: dict[tuple[str, int], int] = {}
    idle_since = time.monotonic()
    try:
        while not should_stop():
            messages = next_batch(consumer, batch_max, poll_timeout_s)
            if not messages:
                if max_idle_s is not None and time.monotonic() - idle_since > max_idle_s:
                    break
                continue
            idle_since = time.monotonic()
            for m in messages:
                if m.error() is not None:
                    continue
                produced_ms = m.timestamp()[1]
                producer.produce(
                    sink,
                    m.value(),
                    key=m.key(),
                    timestamp=produced_ms,
                    headers=[(PRODUCED_AT_HEADER, str(produced_ms).encode())],
                )
                key = (str(m.topic()), int(m.partition() or 0))
                offsets[key] = int(m.offset() or 0) + 1
                copied += 1
            remaining = producer.flush(30)
            if remaining:
                raise DeliveryFailed(sink, f"{remaining} echoes not acknowledged")
            if offsets:
                consumer.commit(offsets=_positions(offsets), asynchronous=True)
        if offsets:  # a clean stop: the last positions, synchronously
            consumer.commit(offsets=_positions(offsets), asynchronous=False)
    finally:
        consumer.close()
    return copied


def _positions(offsets: dict[tuple[str, int], int]) -> list[TopicPartition]:
    return [TopicPartition(t, p, o) for (t, p), o in offsets.items()]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--max-idle-s", type=float, default=None)
    args = parser.parse_args(argv)
    stopping = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    copied = run_echo(
        args.bootstrap,
        args.source,
        args.sink,
        args.group,
        max_idle_s=args.max_idle_s,
        should_stop=lambda: stopping,
    )
    print(f"echo copied {copied} records", flush=True)


if __name__ == "__main__":  # pragma: no cover - the benchmark runs it as a process
    main()
