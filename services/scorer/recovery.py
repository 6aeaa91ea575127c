"""What a replay must not repeat, and what it still owes: read our own recent output.

The ledger marks a transaction decided only after its writes are acknowledged, so a crash
between the acknowledgement and the mark would replay an already-written decision. When
partitions are assigned (start, restart, rebalance) the scorer reads the tail of the same
partitions of ``transactions.scored`` (a decision is written to its transaction's
partition number): the transaction_ids found there count as decided. The tail is far
longer than what can be uncommitted (offsets are committed after every batch), so a replay
finds its earlier decision whichever process wrote it.

A batch's decision and its review case go to different partitions, so a crash can leave
a flagged decision in the log without its case. The scorer also reads ``fraud.review``
from a minute before the oldest flagged decision of the tail: every flagged decision with
no case there is *owed* one, sent when its transaction replays - once: rebuilt from the
decision (score, model version, the feature vector it served) and explained again
(:mod:`services.scorer.reasons`; stream decisions carry no reasons of their own).

The read says whether it reached the end of every partition (``complete``): a partial
set would let a replay decide a transaction twice, so the scorer reads again (keeping
its group membership) until it is complete, and counts each incomplete read.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import msgspec
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from services.scorer import metrics
from streams.events import Decision
from streams.kafka import Endpoint, consumer_config
from streams.topics import Topics

log = logging.getLogger("fraud.scorer")

CASE_MARGIN_MS = 60_000
"""How far before the oldest flagged decision of the tail the review topic is read."""


class _DecidedId(msgspec.Struct):
    transaction_id: str
    decision: str = "approve"


class _CaseId(msgspec.Struct):
    case_id: str


_decided = msgspec.json.Decoder(_DecidedId)
_case = msgspec.json.Decoder(_CaseId)
_decision = msgspec.json.Decoder(Decision)


@dataclass
class Recovered:
    decided: set[str] = field(default_factory=set)
    """transaction_ids with a decision in the tail."""
    owed: dict[str, Decision] = field(default_factory=dict)
    """Flagged decisions of the tail with no review case, by transaction_id."""
    complete: bool = True
    """Every partition was read to the end it had when the read began."""
    unread: list[str] = field(default_factory=list)
    """``topic[partition]`` not read to their end (when not complete)."""


def recover(
    bootstrap: Endpoint,
    topics: Topics,
    tail: int,
    timeout_s: float = 30.0,
    keep_alive: Callable[[], None] = lambda: None,
    partitions: Collection[int] | None = None,
) -> Recovered:
    """The decided ids of the last ``tail`` decisions of each of ``partitions`` (None:
    every partition) of the scored topic, those of them still owed a review case, and
    whether all was read within ``timeout_s`` (``keep_alive`` is called between reads).
    Raises ``KafkaException`` when a topic's metadata cannot be read."""
    reader = Consumer(
        consumer_config(bootstrap, group_id="scorer-recovery", client_id="scorer-recovery")
    )
    out = Recovered()
    flagged: dict[str, Decision] = {}
    oldest = [time.time() * 1e3]

    def on_decision(message: Message) -> None:
        value = message.value() or b""
        # not a decision (or a hostile record): skip it, never die on it
        with contextlib.suppress(msgspec.DecodeError, RecursionError, ValueError):
            head = _decided.decode(value)
            out.decided.add(head.transaction_id)
            if head.decision != "approve":
                flagged[head.transaction_id] = _decision.decode(value)
                oldest[0] = min(oldest[0], float(message.timestamp()[1]))

    cases: set[str] = set()

    def on_case(message: Message) -> None:
        with contextlib.suppress(msgspec.DecodeError, RecursionError, ValueError):
            cases.add(_case.decode(message.value() or b"").case_id)

    try:
        deadline = time.monotonic() + timeout_s
        ranges = _tail_ranges(reader, topics.scored, tail, partitions)
        unread = _read(reader, topics.scored, ranges, on_decision, deadline, keep_alive)
        if flagged and not unread:
            since = int(oldest[0]) - CASE_MARGIN_MS
            ranges = _ranges_since(reader, topics.review, since)
            unread = _read(reader, topics.review, ranges, on_case, deadline, keep_alive)
        out.owed = {tid: d for tid, d in flagged.items() if tid not in cases}
        out.complete, out.unread = not unread, unread
        return out
    finally:
        reader.close()


def recover_whole(
    bootstrap: Endpoint,
    topics: Topics,
    tail: int,
    keep_alive: Callable[[], None],
    wait: Callable[[float], None],
    partitions: Collection[int] | None = None,
) -> Recovered:
    """:func:`recover` until the read is whole (a partial one could let a replay decide a
    transaction twice), each incomplete or failed read logged and counted."""
    while True:
        try:
            found = recover(bootstrap, topics, tail, keep_alive=keep_alive, partitions=partitions)
        except KafkaException as exc:
            log.warning("stage=dedupe recent decisions not readable: %s; reading again", exc)
            wait(1.0)
            continue
        if found.complete:
            return found
        metrics.RECOVERY_INCOMPLETE.inc()
        log.warning(
            "stage=dedupe recent decisions incomplete: %s not read to the end (%d found so "
            "far); reading again before deciding",
            ",".join(found.unread),
            len(found.decided),
        )
        wait(1.0)


def _partitions(reader: Consumer, topic: str) -> list[int]:
    metadata = reader.list_topics(topic, timeout=10)
    return sorted(metadata.topics[topic].partitions)


def _tail_ranges(
    reader: Consumer, topic: str, tail: int, only: Collection[int] | None = None
) -> dict[int, tuple[int, int]]:
    """[start, end) offsets of the last ``tail`` records of each non-empty partition (of
    ``only``, when given)."""
    out = {}
    for p in _partitions(reader, topic):
        if only is not None and p not in only:
            continue
        low, high = reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            out[p] = (max(low, high - tail), high)
    return out


def _ranges_since(reader: Consumer, topic: str, since_ms: int) -> dict[int, tuple[int, int]]:
    """[start, end) offsets of the records of each partition stamped ``since_ms`` or later."""
    parts = _partitions(reader, topic)
    found = reader.offsets_for_times([TopicPartition(topic, p, since_ms) for p in parts], 10)
    out = {}
    for tp in found:
        low, high = reader.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
        start = tp.offset if tp.offset >= 0 else high  # none that recent
        if high > max(start, low):
            out[tp.partition] = (max(start, low), high)
    return out


def _read(
    reader: Consumer,
    topic: str,
    ranges: dict[int, tuple[int, int]],
    on_message: Callable[[Message], None],
    deadline: float,
    keep_alive: Callable[[], None],
) -> list[str]:
    """Feed every record of ``ranges`` to ``on_message``; the partitions not read to
    their end by ``deadline``."""
    ends = {p: end for p, (_, end) in ranges.items()}
    reader.assign([TopicPartition(topic, p, start) for p, (start, _) in ranges.items()])
    try:
        while ends and time.monotonic() < deadline:
            keep_alive()
            for message in reader.consume(1000, 0.2):
                if message.error() is not None:
                    continue
                partition = int(message.partition() or 0)
                offset = int(message.offset() or 0)
                if partition in ends and offset < ends[partition]:
                    on_message(message)
                if partition in ends and offset + 1 >= ends[partition]:
                    del ends[partition]
    finally:
        reader.unassign()
    return [f"{topic}[{p}]" for p in sorted(ends)]
