"""The scorer process, top to bottom.

    poll -> decode (bad -> DLQ) -> dedupe -> features -> inference -> policy -> explain
         -> produce Decision (every tx) + ReviewCase (flagged)
         -> settle the previous batch: wait for its acks -> mark decided -> commit offsets

One process is one member of the ``scorer`` consumer group (static membership, so a
restarted process reclaims its partitions at once; the assignment strategy is a setting,
see :mod:`streams.kafka`). Add processes to scale out, up to the partition count of
``transactions``.

Delivery: at-least-once from Kafka made effectively-once by idempotence. Offsets are
committed only after the broker acknowledged every decision, review case and dead letter
of the batch. Feature updates are idempotent per transaction_id, and the decision ledger
stops a replayed transaction from being decided twice.

Polling (:func:`streams.consume.next_batch`): a batch is what arrived while the previous
one was scored, taken at once; only an idle scorer waits (``poll_timeout_ms``) for the
first record. So batches grow with the load and no cycle idles while records wait.

Settling one batch late: the scorer sends batch N+1's writes before it settles batch N -
waits for what is left of N's acks (they had N+1's poll and scoring to arrive), marks N in
the ledger, commits N's offsets - so the ack round trip overlaps the next batch's work
instead of stalling the loop. Each batch's writes are counted on their own
(:class:`streams.producer.Deliveries`), and N's transaction ids count as decided in N+1's
dedupe. When it polls, the scorer holds at most one unsettled batch; it is settled before
partitions are revoked, when no record comes and on shutdown. A crash can leave two batches
sent and not committed; their replay is skipped by the ledger or, for writes the broker
took before the crash, by the re-read of ``transactions.scored`` on assignment. When a
batch's writes fail and are resent (a broker outage), the next batch's may already be in,
so a card's decisions can land out of order in that case (each carries its event time).

Back-pressure: when Redis (features, ledger) is unavailable the scorer pauses its
partitions, retries the same batch with exponential back-off and resumes when it passes;
a full producer queue blocks ``produce`` until deliveries drain (bounded, never grows).
"""

from __future__ import annotations

import gc
import logging
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TypeVar

import numpy as np
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from prometheus_client import start_http_server

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from features.errors import FeatureStoreUnavailable
from features.interface import FeatureStore
from models.registry import ModelRegistry
from services.allocator import tune_hot_path
from services.scorer import metrics
from services.scorer.champion import ChampionWatcher
from services.scorer.crashpoints import CrashHook
from services.scorer.ledger import DecisionLedger
from services.scorer.pipeline import ScoredBatch, ScoringPipeline, StageClock
from services.scorer.recovery import recently_decided
from services.scorer.settings import ScorerSettings
from services.scorer.wiring import open_feature_store, redis_client
from streams.consume import next_batch
from streams.dlq import encode_dead_letter
from streams.errors import DeliveryFailed
from streams.intake import DecodedBatch, decode_batch
from streams.kafka import consumer_config, producer_config
from streams.producer import AckedProducer, Deliveries, produce_decisions
from streams.serde import transaction_decoder
from streams.topics import Topics

log = logging.getLogger("fraud.scorer")
T = TypeVar("T")


@dataclass
class Unsettled:
    """A batch whose writes are sent but not yet acknowledged, committed or in the ledger."""

    messages: Sequence[Message]
    batch: DecodedBatch
    scored: ScoredBatch
    deliveries: Deliveries
    ids: frozenset[str] = frozenset()
    """The decided transaction ids (what the next batch's dedupe must treat as decided)."""


class Scorer:
    def __init__(
        self,
        settings: ScorerSettings,
        features: FeatureStore,
        ledger: DecisionLedger,
        champion: ChampionWatcher,
    ) -> None:
        self.settings = settings
        self.topics: Topics = settings.topics()
        self.features = features
        self.ledger = ledger
        self.champion = champion
        self.pipeline = ScoringPipeline(features, champion.current)
        self.decoder = transaction_decoder.with_bounds(settings.event_time_bounds())
        member = settings.member_id()
        self.consumer = Consumer(
            consumer_config(
                settings.kafka(),
                group_id=settings.group_id,
                client_id=member,
                instance_id=member,
                assignment_strategy=settings.kafka_assignment_strategy,
                **{
                    "statistics.interval.ms": settings.stats_interval_ms,
                    "stats_cb": metrics.record_stats,
                    "session.timeout.ms": settings.session_timeout_ms,
                    "max.poll.interval.ms": settings.max_poll_interval_ms,
                },
            )
        )
        self.producer = AckedProducer(producer_config(settings.kafka(), client_id=member))
        self.running = True
        self.decided = 0
        self.recovered: set[str] = set()
        self.unsettled: Unsettled | None = None
        self.crash = CrashHook(settings.crash_at, settings.crash_after)

    # -- the loop ---------------------------------------------------------------------
    def run(self, max_idle_s: float | None = None) -> None:
        """Consume until stopped (SIGTERM/SIGINT) or, when given, ``max_idle_s`` without input."""
        self.consumer.subscribe(
            [self.topics.transactions], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        log.info(
            "stage=start member=%s model=%s",
            self.settings.member_id(),
            self.champion.current().version,
        )
        idle_since = next_progress = time.monotonic()
        try:
            while self.running:
                if time.monotonic() >= next_progress:
                    next_progress = time.monotonic() + self.settings.progress_log_s
                    self._log_progress()
                clock = StageClock()
                messages = next_batch(
                    self.consumer, self.settings.batch_max, self.settings.poll_timeout_ms / 1000
                )
                clock.lap("poll")
                if not messages:
                    self.settle(clock)  # nothing to overlap the previous batch's acks with
                    if max_idle_s is not None and time.monotonic() - idle_since > max_idle_s:
                        break
                    continue
                idle_since = time.monotonic()
                metrics.BATCH_SIZE.observe(len(messages))
                self.process(messages, clock)
        finally:
            self.close()

    def _log_progress(self) -> None:
        """One line a stalled scorer can be diagnosed from: is it assigned anything, and
        where does librdkafka say the group join is (its statistics, ``cgrp``)."""
        group = metrics.GROUP_STATE
        log.info(
            "stage=progress decided=%d assigned=%d group_state=%s join_state=%s rebalances=%s",
            self.decided,
            len(self.consumer.assignment()),
            group.get("state", "?"),
            group.get("join_state", "?"),
            group.get("rebalance_cnt", "?"),
        )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """New partitions may replay decided transactions: learn them from our output."""
        log.info("stage=assign partitions=%s", _partition_list(partitions))
        if self.settings.recovery_tail:
            self.recovered = recently_decided(
                self.settings.kafka(), self.topics.scored, self.settings.recovery_tail
            )
            log.info("stage=dedupe recovered %d recent decisions", len(self.recovered))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Settle before giving partitions up; their cards will be written by another
        member: forget them (saves re-reads)."""
        log.info("stage=revoke partitions=%s", _partition_list(partitions))
        metrics.forget_partitions((p.topic, p.partition) for p in partitions)
        self.settle(synchronous=True)
        self.features.clear_cache()

    def process(self, messages: Sequence[Message], clock: StageClock) -> None:
        """Score a batch and send its writes, then settle the batch before it; this one is
        settled after the next batch is sent (or when no record comes)."""
        batch = decode_batch(messages, self.decoder)  # 1. decode + validate
        clock.lap("decode")
        scored = self._with_backoff(lambda: self._score(batch, clock))  # 2-6
        for letter in batch.dead_letters:
            metrics.DEAD_LETTERS.labels(letter.reason).inc()
        sent = Unsettled(  # 7. one Decision per transaction, ReviewCase per flag
            messages,
            batch,
            scored,
            self._send(batch, scored),
            frozenset(d.transaction_id for d in scored.decisions),
        )
        clock.lap("produce")
        self.crash.reached("after_send")
        self.settle(clock)  # 8. the previous batch
        self.unsettled = sent

    def settle(self, clock: StageClock | None = None, *, synchronous: bool = False) -> None:
        """The unsettled batch, if any: wait for its acks, mark it decided, commit."""
        unsettled, self.unsettled = self.unsettled, None
        if unsettled is None:
            return
        self._wait_acked(unsettled)
        self.crash.reached("after_ack")
        ids = [d.transaction_id for d in unsettled.scored.decisions]
        self._with_backoff(lambda: self.ledger.mark_decided(ids))
        self.crash.reached("after_mark")
        self._commit(unsettled.messages, synchronous)  # only now: everything is acknowledged
        self.crash.reached("after_commit")
        self.decided += len(ids)
        if clock is not None:
            clock.lap("commit")

    def _score(self, batch: DecodedBatch, clock: StageClock) -> ScoredBatch:
        txs = batch.transactions
        fresh = self.ledger.undecided([t.transaction_id for t in txs])  # 3. dedupe
        sent = self.unsettled.ids if self.unsettled is not None else frozenset()
        if self.recovered or sent:
            recovered = self.recovered
            fresh &= np.fromiter(
                (t.transaction_id not in recovered and t.transaction_id not in sent for t in txs),
                dtype=bool,
                count=len(txs),
            )
        skipped = len(txs) - int(fresh.sum())
        if skipped:
            metrics.DUPLICATES.inc(skipped)
            txs = [t for t, keep in zip(txs, fresh, strict=True) if keep]
            produced = [p for p, keep in zip(batch.produced_at_ms, fresh, strict=True) if keep]
        else:
            produced = batch.produced_at_ms
        clock.lap("dedupe")
        return self.pipeline.score(txs, produced, clock)  # 4-6. features, ONNX, policy, reasons

    def _wait_acked(self, unsettled: Unsettled) -> None:
        """Until the broker acknowledged the batch's writes; resend them if any failed.
        Gives up (raises) only when stopping: nothing is committed, the batch replays."""
        while True:
            try:
                self.producer.wait_for(unsettled.deliveries)
                return
            except DeliveryFailed as exc:  # nothing is committed; the broker may be restarting
                metrics.BACKPRESSURE.labels("producer").inc()
                if not self.running:
                    raise
                log.warning("stage=produce %s; resending the batch's writes", exc)
                time.sleep(1.0)
                unsettled.deliveries = self._send(unsettled.batch, unsettled.scored)

    def _send(self, batch: DecodedBatch, scored: ScoredBatch) -> Deliveries:
        """Queue the batch's dead letters, decisions and review cases; their acks, counted."""
        deliveries = Deliveries()
        for letter in batch.dead_letters:
            value, key = encode_dead_letter(letter)
            self.producer.produce(self.topics.dlq, value, key, group=deliveries)
        produce_decisions(
            self.producer, self.topics, scored.decisions, scored.review_cases, group=deliveries
        )
        return deliveries

    def _commit(self, messages: Sequence[Message], synchronous: bool = False) -> None:
        next_offsets: dict[tuple[str, int], int] = {}
        for m in messages:
            if m.error() is None:
                key = (str(m.topic()), int(m.partition() or 0))
                next_offsets[key] = max(next_offsets.get(key, 0), int(m.offset() or 0) + 1)
        offsets = [TopicPartition(t, p, o) for (t, p), o in next_offsets.items()]
        if offsets and synchronous:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:  # e.g. a rebalance moved on: the batch is in the
                # ledger, so the new owner's replay of it is not decided twice
                log.warning("stage=commit %s", exc)
        elif offsets:
            self.consumer.commit(offsets=offsets, asynchronous=True)

    def _with_backoff(self, step: Callable[[], T]) -> T:
        """Run ``step``; while Redis is down, pause partitions and retry with back-off."""
        delay = 0.05
        paused: list[TopicPartition] = []
        try:
            while True:
                try:
                    return step()
                except FeatureStoreUnavailable as exc:
                    if not paused:
                        paused = self.consumer.assignment()
                        self.consumer.pause(paused)
                        metrics.BACKPRESSURE.labels("redis").inc()
                    log.warning("stage=features redis unavailable (%s); retry in %.2fs", exc, delay)
                    time.sleep(delay)
                    delay = min(delay * 2, self.settings.max_backoff_s)
                    if not self.running:
                        raise
        finally:
            if paused:
                self.consumer.resume(paused)

    # -- lifecycle --------------------------------------------------------------------
    def stop(self, *_: object) -> None:
        self.running = False

    def close(self) -> None:
        try:
            self.settle(synchronous=True)
        except Exception as exc:  # not settled: not committed either, so it replays
            log.warning("stage=commit last batch not settled: %s", exc)
        self.consumer.close()
        self.champion.stop()
        log.info("stage=stop decided=%d", self.decided)


def _partition_list(partitions: Sequence[TopicPartition]) -> str:
    return ",".join(str(p.partition) for p in sorted(partitions, key=lambda p: p.partition)) or "-"


def build_scorer(settings: ScorerSettings, scorer_class: type[Scorer] = Scorer) -> Scorer:
    """The scorer with its Redis feature store, decision ledger and champion watcher."""
    client = redis_client(settings)
    features = open_feature_store(client, settings)
    ledger = DecisionLedger(client, settings.redis_prefix, settings.dedupe_ttl_s)
    champion = ChampionWatcher(
        ModelRegistry(settings.registry_dir),
        FEATURE_NAMES,
        FEATURE_SET_ID,
        interval_s=settings.reload_interval_s,
    )
    return scorer_class(settings, features, ledger, champion)


def main(settings: ScorerSettings | None = None) -> None:
    settings = settings or ScorerSettings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log.info(
        "stage=boot member=%s group=%s assignment=%s",
        settings.member_id(),
        settings.group_id,
        settings.kafka_assignment_strategy,
    )
    tune_hot_path(settings)  # before the first batch: its buffers stay in the heap
    scorer = build_scorer(settings)
    gc.freeze()  # the start-up objects (model, modules) leave the collector's scans: shorter pauses
    if settings.metrics_port:
        start_http_server(settings.metrics_port)

    def _stop(signum: int, frame: FrameType | None) -> None:
        scorer.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    scorer.champion.start()
    scorer.run()
