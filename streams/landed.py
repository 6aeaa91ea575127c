"""Which failed records are in the log anyway: read back before sending them again.

A record whose delivery timed out while it was in flight may have been written by the
broker without its acknowledgement ever arriving (the broker stopped after appending, the
connection dropped). Sending it again would write it twice. So before a resend, the
partitions of the failed records are read from a little before their timestamps to their
ends, and a record whose exact bytes are there is not sent again. Exact bytes identify a
record: the scorer's records carry their transaction id and decision time.

Only the resend path reads (a broker outage, a failover); the hot path never does.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams.errors import BrokerUnavailable
from streams.kafka import Endpoint, consumer_config
from streams.producer import FailedRecord

MARGIN_MS = 10_000
"""How far before the oldest failed record's timestamp the read starts (producer clocks
and broker append times differ; a record's timestamp is set when it is produced)."""


def landed(
    bootstrap: Endpoint, records: Sequence[FailedRecord], timeout_s: float = 30.0
) -> list[bool]:
    """For each of ``records``: is a record with its exact value already in its partition?

    Records with no partition (the topic was unknown when they failed) cannot have landed;
    tombstones (no value) are not looked for: sending one twice changes nothing.
    Raises :class:`BrokerUnavailable` when the partitions cannot be read to their ends in
    ``timeout_s`` (the caller must not resend then: it does not know).
    """
    wanted: dict[tuple[str, int], set[bytes]] = defaultdict(set)
    since: dict[tuple[str, int], int] = {}
    for r in records:
        if r.partition < 0 or r.value is None:
            continue
        where = (r.topic, r.partition)
        wanted[where].add(r.value)
        stamp = (r.timestamp_ms or int(time.time() * 1000)) - MARGIN_MS
        since[where] = min(since.get(where, stamp), stamp)
    if not wanted:
        return [False] * len(records)
    found = _scan(bootstrap, wanted, since, timeout_s)
    return [
        r.partition >= 0 and r.value is not None and r.value in found[(r.topic, r.partition)]
        for r in records
    ]


def _scan(
    bootstrap: Endpoint,
    wanted: dict[tuple[str, int], set[bytes]],
    since: dict[tuple[str, int], int],
    timeout_s: float,
) -> dict[tuple[str, int], set[bytes]]:
    reader = Consumer(consumer_config(bootstrap, group_id="resend-check", client_id="resend-check"))
    found: dict[tuple[str, int], set[bytes]] = defaultdict(set)
    try:
        starts = reader.offsets_for_times(
            [TopicPartition(t, p, ms) for (t, p), ms in since.items()], timeout_s
        )
        ends: dict[tuple[str, int], int] = {}
        assign = []
        for tp in starts:
            where = (tp.topic, tp.partition)
            _, high = reader.get_watermark_offsets(TopicPartition(*where), timeout=timeout_s)
            if tp.offset >= 0 and tp.offset < high:  # else nothing that recent
                ends[where] = high
                assign.append(TopicPartition(tp.topic, tp.partition, tp.offset))
        reader.assign(assign)
        deadline = time.monotonic() + timeout_s
        while ends:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(
                    str(bootstrap), f"{len(ends)} partitions not read to the end"
                )
            for message in reader.consume(1000, 0.2):
                if message.error() is not None:
                    continue
                where = (str(message.topic()), int(message.partition() or 0))
                value = message.value() or b""
                if value in wanted.get(where, ()):
                    found[where].add(value)
                if where in ends and int(message.offset() or 0) + 1 >= ends[where]:
                    del ends[where]
        return found
    except KafkaException as exc:
        raise BrokerUnavailable(str(bootstrap), str(exc)) from exc
    finally:
        reader.close()
