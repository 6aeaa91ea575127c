"""Rebuilding the real-time state from ``transactions`` after Redis lost it.

The scorer that claims the rebuild (one at a time: a lease in Redis) replays the retained
history of every partition of ``transactions`` - from the features' horizon (card window
plus lateness, terminal day slots) to each partition's end when the rebuild starts - into
a fresh namespace (:mod:`features.realtime.epoch`), then publishes the new epoch. The
partitions are merged by event time, so each terminal sees its transactions in the order
live traffic gave them (the lateness rule, see :mod:`features.definitions`).

Transactions past the committed offsets are in the replay too; when the scorers decide
them afterwards their features are applied a second time, which changes nothing (the
store is idempotent per transaction and serves a replayed transaction the features it had
just before it).

What this cannot bring back: history older than the topic's retention (then the rebuild
says ``complete=False``: card and terminal windows reach back only as far as the retained
history), and the Feast profiles (terminal label risk), which the feedback processor and
``fraudctl features materialize`` write. See docs/adr/0007-redis-state-epoch.md.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import redis
from confluent_kafka import Consumer, Message, TopicPartition

from features.definitions import ALLOWED_LATENESS_S, CARD_WINDOW_S, DAY_S, TERMINAL_DAY_SLOTS
from features.interface import FeatureStore
from features.realtime.cluster_store import redis_feature_store
from services.settings import CommonSettings
from streams.errors import BrokerUnavailable
from streams.events import Transaction
from streams.intake import decode_batch
from streams.kafka import Endpoint, consumer_config

HORIZON_S = max(CARD_WINDOW_S + ALLOWED_LATENESS_S, (TERMINAL_DAY_SLOTS // 2 + 2) * DAY_S)
"""How far back a feature can look: the replay starts there (or at the oldest record)."""
APPLY_BATCH = 2_000
QUEUE_MAX = 50_000
"""Decoded transactions a partition may hold in memory ahead of the merge."""

log = logging.getLogger("fraud.scorer")


@dataclass(frozen=True)
class RebuildReport:
    transactions: int
    partitions: int
    complete: bool
    """The retained history reaches back to the features' horizon on every partition."""
    seconds: float


def replay_transactions(
    bootstrap: Endpoint,
    topic: str,
    store: FeatureStore,
    *,
    progress: Callable[[int], None] = lambda applied: None,
    horizon_s: int = HORIZON_S,
    timeout_s: float = 60.0,
) -> RebuildReport:
    """Apply the retained ``topic`` to ``store`` (a store writing the fresh namespace), in
    event-time order across partitions. ``progress`` is called between applied batches
    (the caller renews its lease and keeps its group membership there)."""
    started = time.monotonic()
    reader = Consumer(
        consumer_config(bootstrap, group_id="scorer-rebuild", client_id="scorer-rebuild")
    )
    try:
        ranges, complete = _ranges(reader, topic, horizon_s, timeout_s)
        applied = 0
        batch: list[Transaction] = []
        for tx in _merged(reader, topic, ranges, timeout_s):
            batch.append(tx)
            if len(batch) >= APPLY_BATCH:
                store.update_batch(batch)
                applied += len(batch)
                batch = []
                progress(applied)
        if batch:
            store.update_batch(batch)
            applied += len(batch)
        return RebuildReport(applied, len(ranges), complete, time.monotonic() - started)
    finally:
        reader.close()


def _ranges(
    reader: Consumer, topic: str, horizon_s: int, timeout_s: float
) -> tuple[dict[int, tuple[int, int]], bool]:
    """Per partition ``[start, end)`` to replay, and whether the history is complete."""
    metadata = reader.list_topics(topic, timeout=timeout_s)
    if topic not in metadata.topics or metadata.topics[topic].error is not None:
        raise BrokerUnavailable(str(reader), f"topic {topic} not readable")
    partitions = sorted(metadata.topics[topic].partitions)
    since_ms = int((time.time() - horizon_s) * 1000)
    found = reader.offsets_for_times(
        [TopicPartition(topic, p, since_ms) for p in partitions], timeout_s
    )
    ranges: dict[int, tuple[int, int]] = {}
    complete = True
    for tp in found:
        low, high = reader.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout_s)
        start = tp.offset if tp.offset >= 0 else high  # none that recent: nothing to replay
        if start <= low and low > 0:
            complete = False  # retention already dropped records inside the horizon
        start = max(start, low)
        if high > start:
            ranges[tp.partition] = (start, high)
    return ranges, complete


def _merged(
    reader: Consumer, topic: str, ranges: dict[int, tuple[int, int]], timeout_s: float
) -> Iterator[Transaction]:
    """The transactions of ``ranges``, merged across partitions by event time (each
    partition's own order kept). Records that do not decode are skipped: the scorer
    dead-lettered them. A partition far ahead of the others is paused, so what waits in
    memory stays bounded."""
    ends = {p: end for p, (_, end) in ranges.items()}
    reader.assign([TopicPartition(topic, p, start) for p, (start, _) in ranges.items()])
    queues: dict[int, deque[Transaction]] = {p: deque() for p in ranges}
    done: set[int] = set()
    paused: set[int] = set()

    def fill() -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            messages = [m for m in reader.consume(5_000, 0.2) if m.error() is None]
            if messages:
                break
            if time.monotonic() > deadline:
                raise BrokerUnavailable(str(reader), "the rebuild stopped receiving records")
        by_partition: dict[int, list[Message]] = {}
        for m in messages:
            p, offset = int(m.partition() or 0), int(m.offset() or 0)
            if p in done or offset >= ends[p]:
                continue
            by_partition.setdefault(p, []).append(m)
            if offset + 1 >= ends[p]:
                done.add(p)
        for p, part in by_partition.items():
            queues[p].extend(decode_batch(part).transactions)
        full = {p for p, q in queues.items() if len(q) >= QUEUE_MAX} - paused
        empty = {p for p in paused if len(queues[p]) < QUEUE_MAX // 2}
        if full:
            reader.pause([TopicPartition(topic, p) for p in full])
        if empty:
            reader.resume([TopicPartition(topic, p) for p in empty])
        paused.update(full)
        paused.difference_update(empty)

    heads: list[tuple[float, int, Transaction]] = []
    waiting = set(ranges)  # partitions whose next transaction is not in ``heads``
    while True:
        for p in sorted(waiting):
            while not queues[p] and p not in done:
                fill()
            if queues[p]:
                tx = queues[p].popleft()
                heapq.heappush(heads, (tx.event_time.timestamp(), p, tx))
                waiting.discard(p)
            elif p in done:
                waiting.discard(p)
        if not heads:
            return
        _, p, tx = heapq.heappop(heads)
        waiting.add(p)
        yield tx


def rebuild_from_transactions(
    client: redis.Redis, settings: CommonSettings
) -> Callable[[str, Callable[[int], None]], RebuildReport]:
    """The rebuild a scorer runs: ``transactions`` replayed into a namespace of ``client``."""

    def rebuild(namespace: str, progress: Callable[[int], None]) -> RebuildReport:
        # the same cache bound as the scorer's own store: both live in the process meanwhile
        target = redis_feature_store(
            client,
            prefix=namespace,
            card_cache_size=settings.card_cache_size,
            card_writes=settings.card_writes,
        )
        return replay_transactions(
            settings.kafka(), settings.topics().transactions, target, progress=progress
        )

    return rebuild
