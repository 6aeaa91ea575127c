"""The faust app of the feedback processor, top to bottom.

    transactions.scored (key card_id) --route_decisions--> <app>.served (key transaction_id)
    fraud.labels (key transaction_id) --route_labels-----> <app>.labels (key transaction_id)
    <app>.served --join_decisions--+
                                   +--> FeedbackJoin (tables ``served``, ``pending``) --> sink
    <app>.labels --join_labels-----+                       (on its own thread, awaited)
                                                               |
                              table ``deferred`` <-- pairs whose risk update must wait
    timer: expire served rows past retention; labels that waited too long -> DLQ;
           deferred pairs -> sink.retry; labels whose training rows were lost -> sink again

Why the two routing agents: ``transactions.scored`` is keyed by card_id and producers of
``fraud.labels`` may use any partitioner (librdkafka hashes with CRC32, faust with murmur2),
so neither source is co-partitioned by transaction_id. Both are re-keyed into two internal
topics of ``partitions`` partitions written by faust's own partitioner; the join tables use
``use_partitioner=True`` with the same raw key bytes, so a transaction's decision, labels
and changelog entries always share one partition number and one worker, however many
workers run. The served row is projected to what a training row needs (no reasons/timings).

Delivery: ``processing_guarantee="at_least_once"`` (exactly-once does not work on the
embedded broker). faust acks an event only after the agent finished with the batch holding
it and commits offsets only after its producer flushed (internal topics, changelogs, DLQ),
so a crash replays, never loses; the join and the sink are idempotent, so a replay writes
nothing twice. The sink's blocking writes run on one thread of their own
(:mod:`streams.feedback.offload`) and an agent awaits them before its batch is acknowledged.
Pairs whose terminal-risk update must wait live in the ``deferred`` table, so a restart
loses none of them. Tables live in memory (``store="memory://"``; rocksdb is not installed)
and are rebuilt from their changelog topics at start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import faust

from streams.dlq import dead_letter as build_dead_letter
from streams.errors import FraudError
from streams.events import DeadLetter, Label
from streams.feedback.credentials import broker_urls, faust_credentials
from streams.feedback.join import FeedbackJoin
from streams.feedback.offload import Offload
from streams.feedback.records import (
    Labelled,
    RoutedLabel,
    ServedRow,
    WaitingPair,
    label_key,
    pack,
    routed_decoder,
    served_decoder,
    waiting_decoder,
)
from streams.feedback.stall import StallWatch, read_positions
from streams.kafka import Endpoint
from streams.serde import Rejection, decision_decoder, encode, label_decoder
from streams.topics import Topics

log = logging.getLogger("fraud.feedback")
EXIT_STALLED = 75
"""The worker's exit status when the stall watch stops it (EX_TEMPFAIL: restart me)."""


class SinkStopped(FraudError):
    """The sink gave up a call at shutdown: its batch is not written."""


class LabelledSink(Protocol):
    """Where joined pairs go (the service: training store + terminal-risk writer). Every
    call blocks until done (retrying inside); the app runs them on one thread."""

    def write(self, pairs: Sequence[Labelled]) -> list[Labelled]:
        """Store ``pairs``; return those whose risk update must wait (kept in ``deferred``)."""

    def retry(self, pairs: Sequence[Labelled]) -> list[Labelled]:
        """The waiting risk updates again; return the pairs that still wait."""

    def missing_rows(self) -> Mapping[str, Sequence[Label]]:
        """Labels whose training rows were lost, by transaction_id (written again)."""

    def stop(self) -> None:
        """Give up retrying: the pending call raises :class:`SinkStopped`."""


@dataclass(frozen=True)
class FeedbackConfig:
    app_id: str
    """faust app id = consumer group and name root of the internal topics (prefixed)."""
    bootstrap: Endpoint
    topics: Topics
    partitions: int = 3
    store: str = "memory://"
    datadir: str | None = None
    """faust's data folder (its table files); None: ``<app_id>-data`` in the working
    directory, faust's own default."""
    retention_s: float = 7 * 86_400.0
    label_wait_s: float = 600.0
    batch_max: int = 500
    batch_within_s: float = 0.5
    tick_s: float = 5.0
    progress_log_s: float = 30.0
    """How often the worker logs its counters and whether it is rebalancing or recovering:
    a worker that holds partitions yet processes nothing shows up in its own log."""
    session_timeout_s: float = 10.0
    instance_id: str | None = None
    """Static group membership: a restarted worker with the same id takes its partitions
    back at once (the embedded broker never expires a SIGKILLed dynamic member by itself)."""
    """How soon a crashed worker's partitions go to a restarted or surviving one."""
    stall_s: float = 120.0
    """Records waiting beyond a committed offset that has not moved for this long stop the
    worker (:mod:`streams.feedback.stall`); 0 turns the watch off."""
    pause_after: int | None = None
    """Test hook: pause this worker's partitions once it has routed this many records, as a
    stalled fetcher does. Never set in production."""

    @property
    def source_topics(self) -> list[str]:
        """The topics the worker's agents consume (the tables' changelogs aside)."""
        return [self.topics.scored, self.topics.labels, self.served_topic, self.labels_topic]

    @property
    def served_topic(self) -> str:
        return f"{self.app_id}.served"

    @property
    def labels_topic(self) -> str:
        return f"{self.app_id}.labels"

    @property
    def served_changelog(self) -> str:
        return f"{self.app_id}.served-changelog"

    @property
    def pending_changelog(self) -> str:
        return f"{self.app_id}.pending-changelog"

    @property
    def deferred_changelog(self) -> str:
        return f"{self.app_id}.deferred-changelog"


@dataclass
class FeedbackCounters:
    routed_decisions: int = 0
    routed_labels: int = 0
    decisions: int = 0
    labels: int = 0
    joined: int = 0
    dead_letters: int = 0
    expired_served: int = 0
    deferred: int = 0
    relanded: int = 0


def build_app(
    config: FeedbackConfig, sink: LabelledSink, *, exit: Callable[[int], None] = os._exit
) -> tuple[faust.App, FeedbackJoin]:
    """The faust app (not started) and its join, wired to ``sink``; ``exit`` ends the
    process when the stall watch finds it stalled."""
    app = faust.App(
        config.app_id,
        broker=broker_urls(config.bootstrap),
        broker_credentials=faust_credentials(config.bootstrap),
        store=config.store,
        processing_guarantee="at_least_once",
        topic_partitions=config.partitions,
        topic_replication_factor=config.topics.default_replication,  # FRAUD_TOPIC_LAYOUT
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        **_datadir(config),
        broker_session_timeout=config.session_timeout_s,
        consumer_group_instance_id=config.instance_id,
        broker_heartbeat_interval=min(3.0, config.session_timeout_s / 5),
        broker_rebalance_timeout=max(20.0, 2 * config.session_timeout_s),
        key_serializer="raw",
        value_serializer="raw",
    )
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes}
    scored = app.topic(config.topics.scored, **raw)
    labels = app.topic(config.topics.labels, **raw)
    dlq = app.topic(config.topics.dlq, **raw)
    served_topic = app.topic(
        config.served_topic, partitions=config.partitions, internal=True, **raw
    )
    labels_topic = app.topic(
        config.labels_topic, partitions=config.partitions, internal=True, **raw
    )
    served_table = app.Table(
        "served",
        partitions=config.partitions,
        use_partitioner=True,
        changelog_topic=_changelog(app, config.served_changelog, config),
        **raw,
    )
    pending_table = app.Table(
        "pending",
        partitions=config.partitions,
        use_partitioner=True,
        changelog_topic=_changelog(app, config.pending_changelog, config),
        **raw,
    )
    deferred_table = app.Table(
        "deferred",
        partitions=config.partitions,
        use_partitioner=True,
        changelog_topic=_changelog(app, config.deferred_changelog, config),
        **raw,
    )
    join = FeedbackJoin(
        served_table,
        pending_table,
        retention_s=config.retention_s,
        label_wait_s=config.label_wait_s,
    )
    counters = FeedbackCounters()
    app.feedback_counters = counters  # type: ignore[attr-defined]
    offload = Offload(sink.stop)
    app.feedback_offload = offload  # type: ignore[attr-defined]

    async def deliver(pairs: list[Labelled]) -> None:
        """Write ``pairs`` (awaited: the batch is acked after), keep the ones that wait."""
        if not pairs:
            return
        waiting = await offload.run("write", sink.write, pairs, then=keep_waiting)
        counters.joined += len(pairs)
        counters.deferred += len(waiting)
        log.info(
            "stage=join pairs=%d total=%d waiting=%d", len(pairs), counters.joined, len(waiting)
        )

    def keep_waiting(waiting: list[Labelled]) -> None:
        for pair in waiting:
            key = pair.served.transaction_id.encode()
            parked = waiting_decoder.decode(deferred_table[key]) if key in deferred_table else []
            if all(label_key(p) != label_key(pair) for p in parked):
                deferred_table[key] = pack([*parked, WaitingPair.of(pair)])

    async def retry_waiting() -> None:
        snapshot = {k: waiting_decoder.decode(v) for k, v in list(deferred_table.items())}
        if not snapshot:
            return
        pairs = [w.pair() for parked in snapshot.values() for w in parked]
        still = {label_key(p) for p in await offload.run("retry", sink.retry, pairs)}
        for key, parked in snapshot.items():  # the table may have grown while we waited
            tried = {label_key(w) for w in parked}
            current = waiting_decoder.decode(deferred_table[key]) if key in deferred_table else []
            keep = [w for w in current if label_key(w) in still or label_key(w) not in tried]
            if keep:
                deferred_table[key] = pack(keep)
            elif key in deferred_table:
                del deferred_table[key]
        applied = len(pairs) - len(still)
        if applied:
            log.info("stage=risk applied %d waiting labels, %d still wait", applied, len(still))

    async def reland_missing() -> None:
        missing = await offload.run("missing_rows", sink.missing_rows)
        pairs = [
            Labelled(served_decoder.decode(row), label)
            for transaction_id, labels in missing.items()
            if (row := served_table.get(transaction_id.encode())) is not None
            for label in labels
        ]
        if pairs:
            await deliver(pairs)
            counters.relanded += len(pairs)
            log.warning("stage=sink wrote %d lost training rows again", len(pairs))

    async def dead_letter(letter: DeadLetter) -> None:
        counters.dead_letters += 1
        await dlq.send(key=letter.key, value=encode(letter))

    @app.agent(scored, name="route_decisions")
    async def route_decisions(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            decision = decision_decoder.decode(message.value)
            if isinstance(decision, Rejection):
                await dead_letter(_letter(message, decision.reason, decision.message))
                continue
            row = ServedRow.from_decision(decision, stored_at=time.time())
            await served_topic.send(key=row.transaction_id.encode(), value=pack(row))
            counters.routed_decisions += 1
            pause_if_asked()

    @app.agent(labels, name="route_labels")
    async def route_labels(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            label = label_decoder.decode(message.value)
            if isinstance(label, Rejection):
                await dead_letter(_letter(message, label.reason, label.message))
                continue
            routed = RoutedLabel(
                label=label,
                source_topic=str(message.topic),
                partition=int(message.partition),
                offset=int(message.offset),
                original=bytes(message.value or b""),
                key=message.key if isinstance(message.key, bytes) else None,
                arrived_at=time.time(),
            )
            await labels_topic.send(key=label.transaction_id.encode(), value=pack(routed))
            counters.routed_labels += 1
            pause_if_asked()

    @app.agent(served_topic, name="join_decisions")
    async def join_decisions(stream: faust.StreamT[bytes]) -> None:
        async for values in stream.take(config.batch_max, within=config.batch_within_s):
            pairs: list[Labelled] = []
            for value in values:
                pairs += join.on_decision(served_decoder.decode(value))
            counters.decisions += len(values)
            await deliver(pairs)

    @app.agent(labels_topic, name="join_labels")
    async def join_labels(stream: faust.StreamT[bytes]) -> None:
        async for values in stream.take(config.batch_max, within=config.batch_within_s):
            pairs = []
            for value in values:
                pairs += join.on_label(routed_decoder.decode(value))
            counters.labels += len(values)
            await deliver(pairs)

    sources = set(config.source_topics)
    watch = StallWatch(config.stall_s)
    paused = [False]
    reading = [False]

    def pause_if_asked() -> None:
        routed = counters.routed_decisions + counters.routed_labels
        if config.pause_after is not None and not paused[0] and routed >= config.pause_after:
            paused[0] = True
            log.warning("stage=stall test hook: pausing every partition after %d records", routed)
            app.consumer.pause_partitions(app.consumer.assignment())

    async def watch_stall(recovered: bool) -> None:
        """Exit when an assigned source partition has stalled (:mod:`.stall`)."""
        if app.rebalancing or not recovered or offload.calls:
            watch.reset()
            return
        if reading[0]:  # the last read still waits for the broker
            return
        assigned = [(tp.topic, tp.partition) for tp in app.consumer.assignment()]
        mine = [tp for tp in assigned if tp[0] in sources]
        reading[0] = True
        try:
            positions = await asyncio.get_running_loop().run_in_executor(
                None, read_positions, config.bootstrap, config.app_id, mine
            )
        except Exception as exc:  # the broker is away: nothing can move, the clocks restart
            log.warning("stage=stall positions not read: %s", exc)
            watch.reset()
            return
        finally:
            reading[0] = False
        stalled = watch.observe(time.monotonic(), positions)
        if stalled:
            log.critical(
                "stage=stall partitions=%s: records wait beyond committed offsets that have "
                "not moved for %.0fs; exiting so that the worker restarts",
                ",".join(f"{t}[{p}]" for t, p in stalled),
                config.stall_s,
            )
            exit(EXIT_STALLED)

    last_progress = [time.monotonic()]

    @app.timer(config.tick_s)
    async def expire() -> None:
        recovered = cast(Any, app.tables).recovery.completed.is_set()
        if time.monotonic() - last_progress[0] >= config.progress_log_s:
            last_progress[0] = time.monotonic()
            log.info(
                "stage=progress rebalancing=%s recovered=%s counters=%s",
                app.rebalancing,
                recovered,
                counters,
            )
        if config.stall_s > 0:
            await watch_stall(recovered)
        if app.rebalancing or not recovered:
            return
        expired = join.expire()
        counters.expired_served += expired.served_rows
        for routed in expired.labels:
            letter = build_dead_letter(
                source_topic=routed.source_topic,
                partition=routed.partition,
                offset=routed.offset,
                reason="unknown_transaction",
                message=(
                    f"no decision for transaction {routed.label.transaction_id} within "
                    f"{config.label_wait_s:g}s (unknown or older than the retention window)"
                ),
                original=routed.original,
                key=routed.key,
            )
            await dead_letter(letter)
        await retry_waiting()
        await reland_missing()

    async def _on_recovered() -> None:
        join.reindex()

    served_table.on_recover(_on_recovered)
    return app, join


def _datadir(config: FeedbackConfig) -> dict[str, Any]:
    return {"datadir": config.datadir} if config.datadir else {}


def _changelog(app: faust.App, name: str, config: FeedbackConfig) -> faust.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        partitions=config.partitions,
        compacting=True,
        internal=True,
        acks=False,
        allow_empty=True,
        maxsize=131_072,
    )


def _letter(message: Any, reason: Any, text: str) -> DeadLetter:
    key = message.key
    return build_dead_letter(
        source_topic=str(message.topic),
        partition=int(message.partition),
        offset=int(message.offset),
        reason=reason,
        message=text,
        original=bytes(message.value or b""),
        key=bytes(key) if isinstance(key, bytes | bytearray) else None,
    )
