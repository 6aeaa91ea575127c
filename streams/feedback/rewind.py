"""Rewind the feedback app's committed offsets before its worker starts (restart safety).

Measured on the embedded broker: when a faust worker restarts with table state to recover,
the first records after the committed offset of a source partition are now and then
skipped (faust's fetcher races its own "seek to committed offsets" after recovery; a lost
record was never handed to the agent, yet its offset was committed later). Since every
step behind the consumers is idempotent (the join re-stores the same row, the training
store skips labels it holds, terminal risk is guarded per transaction_id), the processor
moves its group's committed offsets back by ``records`` per partition before starting: the
race then only replays records that were already processed, and nothing is lost.

The commit is made as a non-member while the group is empty (a graceful restart). After a
SIGKILL the dead worker's static membership (``group.instance.id``) still holds the group,
so the rewind takes that membership over with a plain consumer, commits, and leaves; the
faust worker then joins under the same id. With other live workers in the group the take-
over would steal their partitions for a moment only (they rejoin), never lose records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams.feedback.stall import positions_of
from streams.kafka import Endpoint, consumer_config

log = logging.getLogger("fraud.feedback")


def rewind_committed(
    bootstrap: Endpoint,
    group_id: str,
    topics: Iterable[str],
    records: int,
    *,
    instance_id: str | None = None,
    timeout_s: float = 30.0,
) -> dict[tuple[str, int], tuple[int, int]]:
    """Move each committed offset of ``group_id`` on ``topics`` back by ``records`` (not before
    the low watermark). Returns ``{(topic, partition): (old, new)}``; ``{}`` if refused."""
    if records <= 0:
        return {}
    reader = Consumer(consumer_config(bootstrap, group_id=group_id, client_id=f"{group_id}-rw"))
    try:
        metadata = reader.list_topics(timeout=timeout_s)
        wanted = [
            (topic, p)
            for topic in topics
            if topic in metadata.topics
            for p in metadata.topics[topic].partitions
        ]
        moved: dict[tuple[str, int], tuple[int, int]] = {}
        for partition, at in positions_of(reader, wanted, timeout_s).items():
            if at.committed < 0:  # nothing committed yet: the worker starts from earliest
                continue
            back = max(at.start, at.committed - records)
            if back < at.committed:
                moved[partition] = (at.committed, back)
        if not moved:
            return {}
        offsets = [TopicPartition(t, p, new) for (t, p), (_old, new) in moved.items()]
        try:
            reader.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            if instance_id is None:
                raise
            # a SIGKILLed static member still holds the group: take its place, then commit
            log.info("stage=rewind group busy (%s); committing as member %s", exc, instance_id)
            _commit_as_member(bootstrap, group_id, instance_id, list(topics), offsets, timeout_s)
    except KafkaException as exc:
        log.warning("stage=rewind skipped for group %s: %s", group_id, exc)
        return {}
    finally:
        reader.close()
    log.info("stage=rewind group=%s partitions=%d records=%d", group_id, len(moved), records)
    return moved


def _commit_as_member(
    bootstrap: Endpoint,
    group_id: str,
    instance_id: str,
    topics: list[str],
    offsets: list[TopicPartition],
    timeout_s: float,
) -> None:
    member = Consumer(
        consumer_config(
            bootstrap,
            group_id=group_id,
            client_id=f"{group_id}-rewind",
            instance_id=instance_id,
            assignment_strategy="range",
        )
    )
    try:
        member.subscribe(topics)
        deadline = time.monotonic() + timeout_s
        while not member.assignment():
            if time.monotonic() > deadline:
                raise KafkaException(f"no assignment for {instance_id} within {timeout_s}s")
            member.poll(0.2)
        member.commit(offsets=offsets, asynchronous=False)
    finally:
        member.close()
