"""Topics in an erasure: find the subject's records, tombstone the compacted ones.

Append-only topics (``transactions``, ``transactions.scored``, ``fraud.review``,
``fraud.labels``, the DLQ) cannot be edited in place: their records age out at the
topic's retention. Compacted topics (the feedback processor's table changelogs, keyed by
transaction_id) take a tombstone per key, which compaction then applies.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import msgspec
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from services.erasure.parts import Subject
from streams.events import ReviewCase, Transaction
from streams.feedback.records import served_decoder
from streams.kafka import Endpoint, consumer_config, producer_config
from streams.producer import AckedProducer
from streams.serde import review_case_decoder, transaction_decoder


def scan(endpoint: Endpoint, topic: str, timeout_s: float = 120.0) -> Iterator[Message]:
    """Every record of ``topic`` from its low to its high watermark, group-less."""
    reader = Consumer(consumer_config(endpoint, group_id="erasure-scan", client_id="erasure-scan"))
    try:
        try:
            metadata = reader.list_topics(topic, timeout=10)
        except KafkaException:
            return
        if topic not in metadata.topics or metadata.topics[topic].error is not None:
            return
        ends: dict[int, int] = {}
        starts = []
        for p in metadata.topics[topic].partitions:
            low, high = reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
                starts.append(TopicPartition(topic, p, low))
        reader.assign(starts)
        deadline = time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            for message in reader.consume(1000, 0.2):
                if message.error() is not None:
                    continue
                yield message
                partition = int(message.partition() or 0)
                if int(message.offset() or 0) + 1 >= ends.get(partition, 0):
                    ends.pop(partition, None)
    finally:
        reader.close()


def discover(endpoint: Endpoint, topics: list[str], subject: Subject) -> int:
    """Add the cards and transactions the retained ``transactions`` / ``fraud.review``
    records show for the customer; how many records matched."""
    found = 0
    for topic in topics:
        for message in scan(endpoint, topic):
            value = message.value() or b""
            if subject.customer_id.encode() not in value:
                continue  # cheap filter before decoding
            tx = _transaction_of(value)
            if tx is not None and tx.customer_id == subject.customer_id:
                subject.card_ids.add(tx.card_id)
                subject.transaction_ids.add(tx.transaction_id)
                found += 1
    return found


def _transaction_of(value: bytes) -> Transaction | None:
    """The transaction a ``transactions`` or ``fraud.review`` record holds, if any."""
    tx = transaction_decoder.decode(value)
    if isinstance(tx, Transaction):
        return tx
    case = review_case_decoder.decode(value)
    return case.transaction if isinstance(case, ReviewCase) else None


def _latest(endpoint: Endpoint, topic: str) -> dict[tuple[int, bytes], bytes | None]:
    """The compacted view of ``topic``: the last value of each (partition, key)."""
    view: dict[tuple[int, bytes], bytes | None] = {}
    for message in scan(endpoint, topic):
        key = message.key()
        if key is not None:
            value = message.value()
            view[(int(message.partition() or 0), bytes(key))] = (
                bytes(value) if value is not None else None
            )
    return view


def tombstone_changelogs(
    endpoint: Endpoint, served_changelog: str, pending_changelog: str, subject: Subject
) -> int:
    """Tombstones for the subject's rows in the feedback processor's changelogs (served
    rows by card, waiting labels by transaction), each to the partition its key is in.
    Keys already tombstoned are left alone, so a second run sends nothing."""
    doomed: list[tuple[str, int, bytes]] = []
    for (partition, key), value in _latest(endpoint, served_changelog).items():
        if value is None:
            continue
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            row = served_decoder.decode(value)
            if row.card_id in subject.card_ids:
                subject.transaction_ids.add(row.transaction_id)
                doomed.append((served_changelog, partition, key))
    for (partition, key), value in _latest(endpoint, pending_changelog).items():
        if value is not None and key.decode(errors="replace") in subject.transaction_ids:
            doomed.append((pending_changelog, partition, key))
    if not doomed:
        return 0
    producer = AckedProducer(producer_config(endpoint, client_id="erasure"))
    for topic, partition, key in doomed:
        producer.produce(topic, None, key, partition=partition)
    producer.wait_acked(30.0)
    return len(doomed)
