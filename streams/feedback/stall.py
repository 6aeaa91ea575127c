"""The stall watch: a worker that holds partitions with records waiting, yet moves none.

Seen on the embedded broker under load: a faust worker restarted after a SIGKILL joined
its group, got its partitions, finished recovery and then fetched nothing, for minutes,
without an error. Its process answered ``/metrics``, so nothing outside saw it; labels
stopped reaching the training store and terminal risk. The watch compares, for the
partitions this worker is assigned, the group's committed offset with the partition's end
(both read from the broker, not from faust's own bookkeeping, which is what went quiet):
records wait beyond a committed offset that has not moved for ``stall_s`` -> stalled.
The worker then exits as if killed; its supervisor restarts it, and the restart path (the
rewind, static membership, idempotent sinks) is the one the SIGKILL tests hold.

Not a stall: rebalancing or recovering (the clock restarts), and a sink call in progress
(a failing sink holds the stream back on purpose: ``fraud_feedback_sink_failing``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from streams.kafka import Endpoint, consumer_config

Partition = tuple[str, int]


@dataclass(frozen=True)
class Position:
    """A partition as the broker sees it: the group's committed offset (-1: none yet),
    the start and the end of the log."""

    committed: int
    start: int
    end: int

    @property
    def waiting(self) -> bool:
        return self.end > (self.committed if self.committed >= 0 else self.start)


class StallWatch:
    """Decides, from successive broker positions, which partitions have stalled."""

    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self._since: dict[Partition, tuple[int, float]] = {}
        """partition -> (committed offset, when it was first seen with records waiting)."""

    def reset(self) -> None:
        """Forget every clock: a rebalance, a recovery or a sink call is under way."""
        self._since.clear()

    def observe(self, now: float, positions: Mapping[Partition, Position]) -> list[Partition]:
        """The partitions whose committed offset has stayed put for ``stall_s`` or more
        while records waited beyond it (sorted); a partition that moved, or has nothing
        waiting, starts over."""
        stalled = []
        for partition, position in positions.items():
            seen = self._since.get(partition)
            if not position.waiting:
                self._since.pop(partition, None)
            elif seen is None or seen[0] != position.committed:
                self._since[partition] = (position.committed, now)
            elif now - seen[1] >= self.stall_s:
                stalled.append(partition)
        for gone in set(self._since) - set(positions):
            del self._since[gone]
        return sorted(stalled)


def read_positions(
    bootstrap: Endpoint, group_id: str, partitions: Iterable[Partition], timeout_s: float = 10.0
) -> dict[Partition, Position]:
    """The committed offset of ``group_id`` and the log end of each partition, from the
    broker (a plain consumer that never joins the group). Blocking: run it off the loop."""
    wanted = list(partitions)
    if not wanted:
        return {}
    reader = Consumer(consumer_config(bootstrap, group_id=group_id, client_id=f"{group_id}-watch"))
    try:
        return positions_of(reader, wanted, timeout_s)
    finally:
        reader.close()


def positions_of(
    reader: Consumer, partitions: Iterable[Partition], timeout_s: float
) -> dict[Partition, Position]:
    """:func:`read_positions` through a consumer the caller holds (configured with the
    group whose committed offsets are wanted)."""
    wanted = [TopicPartition(topic, p) for topic, p in partitions]
    if not wanted:
        return {}
    out: dict[Partition, Position] = {}
    for tp in reader.committed(wanted, timeout=timeout_s):
        start, end = reader.get_watermark_offsets(tp, timeout=timeout_s)
        out[(tp.topic, tp.partition)] = Position(tp.offset, start, end)
    return out
