"""Closing the last duplicate window: read our own recent output when partitions arrive.

The ledger marks a transaction decided only after its decision is acknowledged, so a
crash between the acknowledgement and the mark would replay an already-written decision.
When partitions are assigned (start, restart, rebalance) the scorer reads the tail of every
``transactions.scored`` partition and treats the transaction_ids found there as decided.
The tail is far longer than what can be uncommitted (offsets are committed after every
batch), so a replay finds its earlier decision whichever process wrote it.
"""

from __future__ import annotations

import contextlib
import time

import msgspec
from confluent_kafka import Consumer, TopicPartition

from streams.kafka import Endpoint, consumer_config


class _DecidedId(msgspec.Struct):
    transaction_id: str


_decoder = msgspec.json.Decoder(_DecidedId)


def recently_decided(
    bootstrap: Endpoint, scored_topic: str, tail: int, timeout_s: float = 30.0
) -> set[str]:
    """transaction_ids of the last ``tail`` decisions of each partition of ``scored_topic``."""
    reader = Consumer(
        consumer_config(bootstrap, group_id="scorer-recovery", client_id="scorer-recovery")
    )
    try:
        metadata = reader.list_topics(scored_topic, timeout=10)
        partitions = list(metadata.topics[scored_topic].partitions)
        ends: dict[int, int] = {}
        starts = []
        for p in partitions:
            low, high = reader.get_watermark_offsets(TopicPartition(scored_topic, p), timeout=10)
            if high > low:
                ends[p] = high
                starts.append(TopicPartition(scored_topic, p, max(low, high - tail)))
        reader.assign(starts)
        found: set[str] = set()
        deadline = time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            for message in reader.consume(1000, 0.2):
                if message.error() is not None:
                    continue
                # not a decision (or a hostile record): skip it, never die on it
                with contextlib.suppress(msgspec.DecodeError, RecursionError, ValueError):
                    found.add(_decoder.decode(message.value() or b"").transaction_id)
                partition = int(message.partition() or 0)
                if partition in ends and int(message.offset() or 0) + 1 >= ends[partition]:
                    del ends[partition]
        return found
    finally:
        reader.close()
