"""The scorer process, top to bottom.

    poll -> decode (bad -> DLQ) -> dedupe -> features -> inference -> policy
         -> produce Decision (every tx)            flagged rows -> reasons worker (TreeSHAP)
         -> settle earlier batches: their ReviewCases (once explained) -> wait for acks
            -> mark decided -> commit offsets

One process is one member of the ``scorer`` consumer group (static membership, so a
restarted process reclaims its partitions at once; the assignment strategy is a setting,
see :mod:`streams.kafka`). Add processes to scale out, up to the partition count of
``transactions``.

Delivery: at-least-once from Kafka made effectively-once by idempotence. Offsets are
committed only after the broker acknowledged every decision, review case and dead letter
of the batch. Feature updates are idempotent per transaction_id, and the decision ledger
stops a replayed transaction from being decided twice.

Reasons off the decision's path (:mod:`.reasons`, docs/adr/0010-reasons-off-the-decision-path.md):
a batch's decisions are sent as soon as it is scored, with empty reasons; its flagged rows
are explained on a worker thread and their review cases follow. A batch is settled only
once its review cases are sent too, and a flagged decision found in the log without its
case after a crash is explained again and its case sent when it replays.

Polling (:func:`streams.consume.next_batch`): a batch is what arrived while the previous
one was scored, taken at once; only an idle scorer waits (``poll_timeout_ms``) for the
first record. So batches grow with the load and no cycle idles while records wait.

Settling late: the scorer sends batch N+1's writes before it settles batch N - sends N's
review cases if not yet sent, waits for what is left of N's acks (they had N+1's poll and
scoring to arrive), marks N in the ledger, commits N's offsets - so the ack round trip and
the reasons overlap the next batch's work instead of stalling the loop. A batch whose
reasons are not computed yet stays unsettled; when it polls, the scorer holds at most
``max_unsettled_batches`` (:mod:`.settling`). Each batch's writes are counted on their own
(:class:`streams.producer.Deliveries`), and the unsettled batches' transaction ids count as
decided in the next batch's dedupe. They are settled before partitions are revoked, when
no record comes and on shutdown. A crash can leave several batches sent and not committed;
their replay is skipped by the ledger or, for writes the broker took before the crash, by
the re-read of ``transactions.scored`` on assignment. When a
batch's writes fail and are resent (a broker outage), the next batch's may already be in,
so a card's decisions can land out of order in that case (each carries its event time).

Faults (docs/adr/0008-delivery-under-faults.md; each visible while it lasts,
:mod:`services.scorer.faults`): waits for Redis or the broker keep the partitions paused
and polled, so the group keeps the member; failed writes are resent only if not in the
log (:mod:`.delivery`), a permanent refusal stops the scorer; a batch whose partitions
moved is neither written, resent nor committed (:mod:`.group`, :mod:`.settling`); a lost
Redis state is rebuilt before anything more is scored (:mod:`.state`).
``FRAUD_DELIVERY_MODE=transactions`` writes each batch and its offsets as one Kafka
transaction instead (:mod:`.transactional`).

A full producer queue blocks ``produce`` until deliveries drain (bounded, never grows).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TypeVar

import numpy as np
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from prometheus_client import start_http_server

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from features.errors import FeatureStateLost, FeatureStoreUnavailable
from features.interface import FeatureStore
from features.realtime.epoch import EpochStore
from services.allocator import tune_hot_path
from services.gc_pauses import settle_collector
from services.scorer import metrics
from services.scorer.champion import ChampionWatcher
from services.scorer.crashpoints import CrashHook
from services.scorer.faults import FaultState
from services.scorer.group import ScorerGroup, partition_list
from services.scorer.ledger import DecisionLedger, first_seen
from services.scorer.model_events import ModelEventsListener
from services.scorer.pipeline import ScoredBatch, ScoringPipeline, StageClock
from services.scorer.reasons import Flagged, ReasonsWorker
from services.scorer.rebuild import rebuild_from_transactions
from services.scorer.recovery import recover_whole
from services.scorer.settings import ScorerSettings
from services.scorer.settling import Settler, Unsettled
from services.scorer.state import StateGuard
from services.scorer.transactional import (
    TransactionAborted,
    TransactionalOutput,
    transactional_config,
)
from services.scorer.wiring import open_feature_store, redis_client
from streams.dlq import encode_dead_letter
from streams.errors import DeliveryRefused, MembershipLost
from streams.events import Decision
from streams.intake import DecodedBatch, decode_batch
from streams.kafka import producer_config
from streams.producer import AckedProducer, Deliveries, produce_decisions
from streams.serde import transaction_decoder
from streams.topics import Topics

log = logging.getLogger("fraud.scorer")
BURST_LINGER_MS = 5
"""The scorer's producer linger: each batch's records are sent by
:meth:`~streams.producer.AckedProducer.send_queued` as soon as they are queued, so the
linger only bounds a missed trigger, and a longer one keeps librdkafka's broker thread
from spinning through the burst (streams/kafka.py)."""
T = TypeVar("T")


class Scorer:
    def __init__(
        self,
        settings: ScorerSettings,
        features: FeatureStore,
        ledger: DecisionLedger,
        champion: ChampionWatcher,
        state: StateGuard | None = None,
    ) -> None:
        self.settings = settings
        self.topics: Topics = settings.topics()
        self.features = features
        self.ledger = ledger
        self.champion = champion
        self.state = state
        self.pipeline = ScoringPipeline(features, champion.current)
        self.reasons = ReasonsWorker(champion.explainer)
        self.decoder = transaction_decoder.with_bounds(settings.event_time_bounds())
        self.faults = state.faults if state is not None else FaultState()
        self.group = ScorerGroup(
            settings, self.topics.transactions, self._on_assign, self._on_revoke, self._on_error
        )
        self.producer = AckedProducer(
            producer_config(
                settings.kafka(),
                client_id=settings.member_id(),
                defaults={"linger.ms": BURST_LINGER_MS},
                **{
                    "message.timeout.ms": settings.delivery_timeout_ms,
                    "error_cb": self._on_error,
                    **transactional_config(settings),
                },
            )
        )
        self.transactional = (
            TransactionalOutput(self.producer.client)
            if settings.delivery_mode == "transactions"
            else None
        )
        self.running = True
        self.recovered: set[str] = set()
        self.owed: dict[str, Decision] = {}
        """Flagged decisions in the log without a review case (found on assignment)."""
        self.recovery_pending = False
        self.crash = CrashHook(settings.crash_at, settings.crash_after)
        self.settler = Settler(
            settings,
            self.topics,
            self.producer,
            self.group,
            ledger,
            self.faults,
            self.crash,
            self._with_backoff,
            lambda: self.running,
            self._written,
        )
        self.stall_s = settings.session_timeout_ms / 2000

    @property
    def consumer(self) -> Consumer:
        return self.group.consumer

    @property
    def unsettled(self) -> Unsettled | None:
        return self.settler.unsettled

    @property
    def decided(self) -> int:
        return self.settler.decided

    def settle(self, clock: StageClock | None = None, *, synchronous: bool = False) -> None:
        """Settle every batch sent (see :mod:`services.scorer.settling`)."""
        self.settler.settle(clock, synchronous=synchronous)

    def _written(self, decided: frozenset[str], owed: dict[str, Decision]) -> None:
        """Decisions of a given-up batch that are in the log anyway (and the flagged ones
        among them whose review case is not): its replay must not decide them again."""
        self.recovered.update(decided)
        self.owed.update(owed)

    # -- the loop ---------------------------------------------------------------------
    def run(self, max_idle_s: float | None = None) -> None:
        """Consume until stopped (SIGTERM/SIGINT) or, when given, ``max_idle_s`` without input."""
        if self.state is not None:  # before any batch: is the state there to write to?
            self.state.start(self.group.committed_offsets())
            self.group.metadata = self.state.metadata
        if self.transactional is not None:
            self.transactional.start()
        self.group.subscribe()
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
                if self.group.lost:
                    self._rejoin(self.group.lost)
                    continue
                clock = StageClock()
                messages = self.group.next_batch()
                clock.lap("poll")
                if not messages:
                    self.settle(clock)  # nothing to overlap the previous batch's acks with
                    if max_idle_s is not None and time.monotonic() - idle_since > max_idle_s:
                        break
                    continue
                idle_since = time.monotonic()
                metrics.BATCH_SIZE.observe(len(messages))
                self.process(messages, clock)
        except DeliveryRefused as exc:
            self.faults.begin("refused", str(exc))
            log.error(
                "stage=produce writes refused for good, stopping: %s. Nothing of the batch "
                "is committed; it replays once the cause is fixed",
                exc,
            )
            self.settler.clear()  # not settled: a retry would be refused the same way
            raise
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

    def _on_error(self, error: KafkaError) -> None:
        """Client-level errors of the consumer and the producer: every broker down is the
        ``broker`` fault (it ends once writes are acknowledged or partitions assigned)."""
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self.faults.begin("broker", f"no broker answers: {error.str()}")

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        """New partitions may replay decided transactions: learn them from our output
        before the next batch is scored (not here: a failed read must not kill the
        callback, and the read must keep the membership alive)."""
        # transactions: offsets commit with the output, so nothing replays that was visible
        self.recovery_pending = bool(self.settings.recovery_tail) and not self.transactional
        self.faults.end("group", "partitions assigned")
        self.faults.end("broker", "partitions assigned")

    def _on_revoke(self, partitions: list[TopicPartition], lost: bool) -> None:
        """Partitions go to another member. Revoked (still ours until this returns):
        settle the unsettled batch if its writes get acknowledged in time, else give it
        up. Lost (already someone else's): give it up. Either way forget their cards."""
        metrics.forget_partitions((p.topic, p.partition) for p in partitions)
        if lost:
            self.faults.begin("group", f"partitions {partition_list(partitions)} lost")
        self.settler.revoked(lost)
        self.features.clear_cache()

    def _rejoin(self, reason: str) -> None:
        self.faults.begin("group", f"membership lost: {reason}")
        self.settler.abandon_all("fenced")
        self.group.rejoin()

    def process(self, messages: Sequence[Message], clock: StageClock) -> None:
        """Score a batch and send its writes, then settle the batch before it; this one is
        settled after the next batch is sent (or when no record comes)."""
        polled_at, generation = time.monotonic(), self.group.generation
        batch = decode_batch(messages, self.decoder)  # 1. decode + validate
        if batch.transport_errors:
            self.group.membership.screen(messages)
            if self.group.lost:
                return  # not ours any more: replayed after the rejoin
        clock.lap("decode")
        try:
            scored, owed = self._with_backoff(lambda: self._score(batch, clock), generation)
            stalled = time.monotonic() - polled_at > self.stall_s
            if stalled and not self.group.confirm([*self._pending(), *messages]):
                raise MembershipLost("the batch stalled and the group moved on")
        except MembershipLost as exc:
            metrics.BATCHES_ABANDONED.labels("unsent").inc()
            log.warning("stage=abandon batch of %d records not sent: %s", len(messages), exc)
            self.group.rewind(messages)
            return
        for letter in batch.dead_letters:
            metrics.DEAD_LETTERS.labels(letter.reason).inc()
        flagged = [scored.flagged, owed]
        if self.transactional is not None:
            self._transact(messages, batch, scored, flagged, clock)
            return
        sent = Unsettled(  # 7. one Decision per transaction; its ReviewCase follows
            messages,
            batch,
            scored,
            self._send(batch, scored),
            frozenset(d.transaction_id for d in scored.decisions),
            cases=self.reasons.submit(flagged),
            flagged=flagged,
        )
        self.producer.send_queued()  # the decisions leave now, not at the linger's end
        clock.lap("produce")
        self.settler.add(sent)
        self.crash.reached("after_send")
        self.settler.settle_sent(clock)  # 8. the batches before it, in order

    def _pending(self) -> Sequence[Message]:
        return self.settler.messages()

    def _score(self, batch: DecodedBatch, clock: StageClock) -> tuple[ScoredBatch, Flagged]:
        """2-5: the batch's decisions (flagged rows not explained yet), and the replayed
        transactions owed a review case."""
        if self.recovery_pending:
            self._recover()
        txs = batch.transactions
        ids = [t.transaction_id for t in txs]
        fresh = first_seen(ids) if self.transactional else self.ledger.undecided(ids)  # 3.
        sent = self.settler.sent_ids()  # every batch held unsettled: none is in the ledger
        if self.recovered or sent:
            recovered = self.recovered
            fresh &= np.fromiter(
                (t.transaction_id not in recovered and t.transaction_id not in sent for t in txs),
                dtype=bool,
                count=len(txs),
            )
        skipped = len(txs) - int(fresh.sum())
        owed = Flagged()
        if skipped:
            metrics.DUPLICATES.inc(skipped)
            if self.owed:  # decided before a crash, but the case never made it
                replayed = [
                    t
                    for t, keep in zip(txs, fresh, strict=True)
                    if not keep and t.transaction_id in self.owed
                ]
                owed = Flagged([self.owed.pop(t.transaction_id) for t in replayed], replayed)
            txs = [t for t, keep in zip(txs, fresh, strict=True) if keep]
            produced = [p for p, keep in zip(batch.produced_at_ms, fresh, strict=True) if keep]
        else:
            produced = batch.produced_at_ms
        clock.lap("dedupe")
        scored = self.pipeline.score(txs, produced, clock, explain=False)  # 4-5.
        return scored, owed

    def _recover(self) -> None:
        """The recent decisions and the review cases they owe, read whole."""
        found = recover_whole(
            self.settings.kafka(),
            self.topics,
            self.settings.recovery_tail,
            self.group.keep_alive,
            self.group.wait,
            partitions={tp.partition for tp in self.consumer.assignment()},
        )
        self.recovered |= found.decided
        self.owed = found.owed
        self.recovery_pending = False
        log.info(
            "stage=dedupe recovered %d recent decisions, %d owe a review case",
            len(self.recovered),
            len(self.owed),
        )

    def _transact(
        self,
        messages: Sequence[Message],
        batch: DecodedBatch,
        scored: ScoredBatch,
        flagged: Sequence[Flagged],
        clock: StageClock,
    ) -> None:
        """The batch's writes and offsets as one Kafka transaction (FRAUD_DELIVERY_MODE=
        transactions, :mod:`services.scorer.transactional`); an aborted one is replayed.
        Nothing of it is visible before the commit, so the review cases' reasons are
        computed inside the transaction, after the decisions are queued."""
        assert self.transactional is not None

        def produce() -> None:
            deliveries = self._send(batch, scored)
            self.crash.reached("after_send")
            cases = self.reasons.explain_now(flagged)
            produce_decisions(self.producer, self.topics, [], cases, group=deliveries)

        try:
            self.transactional.write(messages, produce, self.consumer.consumer_group_metadata)
        except (TransactionAborted, MembershipLost) as exc:
            metrics.BATCHES_ABANDONED.labels("aborted").inc()
            log.warning("stage=commit transaction of %d records aborted: %s", len(messages), exc)
            self.group.rewind(messages)
            return
        clock.lap("commit")
        self.crash.reached("after_commit")
        self.settler.decided += len(scored.decisions)

    def _send(self, batch: DecodedBatch, scored: ScoredBatch) -> Deliveries:
        """Queue the batch's dead letters, decisions and review cases; their acks, counted."""
        deliveries = Deliveries()
        for letter in batch.dead_letters:
            value, key = encode_dead_letter(letter)
            self.producer.produce(self.topics.dlq, value, key, group=deliveries)
        produce_decisions(
            self.producer,
            self.topics,
            scored.decisions,
            scored.review_cases,
            group=deliveries,
            partition_of=batch.partition_of(),  # recovery reads the assigned partitions only
        )
        return deliveries

    def _with_backoff(self, step: Callable[[], T], generation: int) -> T:
        """Run ``step``; while Redis is down, keep the partitions paused (and the membership
        alive) and retry with back-off; when Redis lost the state, rebuild it first."""
        delay = 0.05
        while True:
            try:
                result = step()
                self.faults.end("redis")
                return result
            except FeatureStateLost as exc:
                if self.state is None:
                    raise
                self.state.recover(exc, self.group.keep_alive)
                self.group.metadata = self.state.metadata
            except FeatureStoreUnavailable as exc:
                if not self.faults.active("redis"):
                    metrics.BACKPRESSURE.labels("redis").inc()
                self.faults.begin("redis", f"Redis unavailable: {exc.detail}")
                self.group.wait(delay)
                delay = min(delay * 2, self.settings.max_backoff_s)
                if not self.running:
                    raise
            self.group.check(generation)

    # -- lifecycle --------------------------------------------------------------------
    def stop(self, *_: object) -> None:
        self.running = False

    def close(self) -> None:
        try:
            self.settle(synchronous=True)
        except Exception as exc:  # not settled: not committed either, so it replays
            log.warning("stage=commit last batch not settled: %s", exc)
        self.group.close()
        self.reasons.close()
        self.champion.stop()
        log.info("stage=stop decided=%d", self.decided)


def build_scorer(settings: ScorerSettings, scorer_class: type[Scorer] = Scorer) -> Scorer:
    """The scorer with its Redis feature store (following the state epoch), decision
    ledger and champion watcher."""
    client = redis_client(settings)
    features = open_feature_store(client, settings)
    ledger = DecisionLedger(client, settings.redis_prefix, settings.dedupe_ttl_s)
    champion = ChampionWatcher(
        settings.registry(),
        FEATURE_NAMES,
        FEATURE_SET_ID,
        interval_s=settings.reload_interval_s,
    )
    if settings.listens_for_promotions(settings.reload_on_events):
        champion.listen(
            ModelEventsListener(
                settings.kafka(),
                settings.topics().model_events,
                champion.wake,
                member=settings.member_id(),
            )
        )

    state = StateGuard(
        EpochStore(client, settings.redis_prefix),
        features,
        FaultState(),
        rebuild_from_transactions(client, settings),
        owner=settings.member_id(),
    )
    return scorer_class(settings, features, ledger, champion, state)


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
    settle_collector(settings.gc_young_threshold)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)

    def _stop(signum: int, frame: FrameType | None) -> None:
        scorer.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    scorer.champion.start()
    try:
        scorer.run()
    except DeliveryRefused as exc:
        raise SystemExit(f"scorer stopped: {exc}") from exc
