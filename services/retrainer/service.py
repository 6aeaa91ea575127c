"""The retrainer service, top to bottom.

    transactions.scored --> served log (bounded) --every N s / N rows--> checks
        drift   (champion reference vs recent served vectors + scores) --> gauges, drift_report
        quality (champion scores vs labels from the training store)     --> gauges, quality_report
        policy  (drift | quality drop | enough new labels, with a cool-down) --> training job
    training job (spawned process, timeout) --> gates --> register + promote | register + reject
    any training failure: the champion keeps serving; a ``rejected`` event says why
    every event --> an outbox (a local, fsynced file) --> model.events, on its own thread

It never blocks its consumer on training: the job runs in its own process and is polled
between batches. It never waits for the broker either: events wait in the outboxes while
the broker is away (see :mod:`services.retrainer.events`), and a check that fails (a
corrupt store, a full disk) is logged and tried again at the next one. Offsets are
auto-committed - a monitor may skip or re-read a few rows after a crash, which only
shifts its window.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

import pandas as pd
from confluent_kafka import Consumer

from features.definitions import FEATURE_NAMES
from features.training_store import TrainingStore
from models.drift import DriftError, DriftReport
from models.quality import QualityReport
from models.registry_open import Registry
from services.retrainer import metrics
from services.retrainer.challenger import ChallengerRun, TrainingJob, labelled_served_rows
from services.retrainer.events import EventPublisher, event_publisher
from services.retrainer.monitor import (
    ChampionContext,
    assess,
    drift_event,
    load_context,
    quality_event,
    record_drift,
    record_quality,
)
from services.retrainer.policy import RetrainPolicy
from services.retrainer.promotion import Verdict, decide
from services.retrainer.refit import RecentTraffic
from services.retrainer.served import ServedLog
from services.retrainer.settings import RetrainerSettings
from services.storage_metrics import quarantined_part
from streams.events import Decision, ModelEvent
from streams.kafka import consumer_config
from streams.serde import decision_decoder

log = logging.getLogger("fraud.retrainer")
Publish = Callable[[ModelEvent], None]


class Retrainer:
    def __init__(
        self,
        settings: RetrainerSettings,
        registry: Registry,
        store: TrainingStore,
        publish: Publish,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self.publish = publish
        self.clock = clock
        self.served = ServedLog(FEATURE_NAMES, settings.served_rows)
        self.policy = RetrainPolicy(
            cooldown_s=settings.cooldown_s,
            min_new_labels=settings.min_new_labels,
            on_drift=settings.trigger_on_drift,
            on_quality=settings.trigger_on_quality,
        )
        self.context: ChampionContext | None = None
        self.job: TrainingJob | None = None
        self.job_trigger = ""
        self.last_run_at: datetime | None = None
        self.last_check = clock()
        self.rows_at_check = 0
        self.verdicts: list[Verdict] = []
        self.running = True

    # -- input ------------------------------------------------------------------------
    def add(self, decisions: list[Decision]) -> None:
        self.served.append(decisions)
        metrics.SERVED_ROWS.set(len(self.served))

    def check_due(self) -> bool:
        return (
            self.served.seen - self.rows_at_check >= self.settings.check_every_rows
            or self.clock() - self.last_check >= self.settings.check_every_s
        )

    # -- checks -----------------------------------------------------------------------
    def refresh_champion(self) -> ChampionContext | None:
        champion = self.registry.champion()
        if champion is None:
            self.context = None
        elif self.context is None or self.context.version != champion.version:
            self.context = load_context(
                champion,
                alpha=self.settings.drift_alpha,
                correction=self.settings.drift_correction,
                min_rows=self.settings.min_window_rows,
                min_effect=self.settings.drift_min_effect,
                ignore=self.settings.drift_ignore,
            )
            log.info("stage=monitor watching champion %s", champion.version)
        return self.context

    def labelled(self) -> pd.DataFrame:
        return labelled_served_rows(
            self.served.frame(),
            self.store.read(),
            now=datetime.now(UTC),
            maturity_s=self.settings.label_maturity_s,
        )

    def check_guarded(self) -> None:
        """:meth:`check`, whose failure is logged and counted, never fatal: the service
        keeps consuming and tries again at the next check."""
        try:
            self.check()
        except Exception as exc:
            metrics.CHECKS.labels("all", "failed").inc()
            log.exception("stage=check failed (%s); the next check runs as usual", exc)

    def check(self) -> tuple[DriftReport | None, QualityReport | None, list[str]]:
        """Both monitors, their reports published; returns them and the trigger reasons."""
        self.last_check = self.clock()
        self.rows_at_check = self.served.seen
        context = self.refresh_champion()
        if context is None:
            return None, None, []
        drift = self._drift(context)
        labelled = self.labelled()
        quality = assess(
            context,
            labelled,
            tolerance=self.settings.quality_tolerance,
            min_labels=self.settings.quality_min_labels,
            min_frauds=self.settings.quality_min_frauds,
        )
        record_quality(quality)
        self._announce(quality_event(quality))
        new_labels = self._new_labels()
        reasons = self.policy.should_start(
            self.clock(),
            drift=drift is not None and drift.any_drift,
            quality_drop=quality.dropped,
            new_labels=new_labels,
        )
        log.info(
            "stage=check champion=%s drift=%s quality_drop=%s new_labels=%d trigger=%s",
            context.version,
            None if drift is None else drift.any_drift,
            quality.dropped,
            new_labels,
            reasons,
        )
        if reasons:
            self.start_training("+".join(reasons), labelled)
        return drift, quality, reasons

    def _drift(self, context: ChampionContext) -> DriftReport | None:
        window, scores = self.served.tail(self.settings.window_rows, context.version)
        try:
            report = context.detector.check(window, scores)
        except DriftError as exc:
            log.info("stage=drift skipped: %s", exc)
            metrics.CHECKS.labels("drift", "skipped").inc()
            return None
        record_drift(report)
        self._announce(drift_event(context.version, report))
        return report

    def _new_labels(self) -> int:
        champion = self.registry.champion()
        since = [datetime.fromisoformat(champion.created_at)] if champion else []
        if self.last_run_at is not None:
            since.append(self.last_run_at)
        if not since:
            return 0
        return self.store.count_since(max(since))

    # -- training -----------------------------------------------------------------------
    def start_training(
        self, trigger: str, labelled: pd.DataFrame | None = None, *, shuffle_labels: bool = False
    ) -> None:
        s = self.settings
        rows = self.labelled() if labelled is None else labelled
        self.policy.started(self.clock())
        self.last_run_at = datetime.now(UTC)
        self.job_trigger = trigger
        log.info(
            "stage=train starting challenger (%s) on %d labelled served rows", trigger, len(rows)
        )
        self.job = TrainingJob(
            s.training_timeout_s,
            rows,
            s.history_dir,
            s.history_days,
            s.train_config(),
            compression=s.time_compression,
            shuffle_labels=shuffle_labels,
        )

    def poll_training(self) -> Verdict | str | None:
        """A finished job's verdict, the failure text, or None while it runs (or none)."""
        if self.job is None:
            return None
        done = self.job.poll()
        if done is None:
            return None
        seconds = self.job.elapsed_s
        self.job = None
        self.policy.finished()
        metrics.TRAINING_SECONDS.set(seconds)
        if isinstance(done, ChallengerRun):
            return self._decide(done)
        return self._failed(done)

    def _decide(self, run: ChallengerRun) -> Verdict | str:
        window, _ = self.served.tail(self.settings.window_rows)
        # the freshest served rows size the review band (ADR 0012)
        traffic = RecentTraffic(*self.served.latest(self.settings.window_rows))
        try:
            verdict = decide(
                self.registry,
                run,
                window,
                self.settings.gate_config(),
                trigger=self.job_trigger,
                refit=self.settings.refit_config(),
                traffic=traffic,
            )
        except Exception as exc:  # judging must not kill the monitor either
            return self._failed(exc)
        metrics.RETRAINS.labels("promoted" if verdict.promoted else "rejected").inc()
        self.verdicts.append(verdict)
        wake = getattr(self.publish, "wake", None)
        if callable(wake):  # announce the registry's change now, not at the next idle check
            wake()
        log.info("stage=gates %s rows=%s %s", verdict.version, run.rows, verdict.reasons())
        self.refresh_champion()
        return verdict

    def _failed(self, error: BaseException) -> str:
        champion = self.registry.champion()
        serving = champion.version if champion else "none"
        kind = "timeout" if isinstance(error, TimeoutError) else "failed"
        text = f"retraining {kind} ({self.job_trigger}): {type(error).__name__}: {error}"
        metrics.RETRAINS.labels(kind).inc()
        log.error("stage=train %s; champion %s keeps serving", text, serving)
        self._announce(
            ModelEvent(
                kind="rejected",
                model_version="untrained",
                at=datetime.now(UTC),
                previous_version=serving,
                reasons=[text, f"champion {serving} keeps serving"],
                details={"stage": "training", "error": type(error).__name__},
            )
        )
        return text

    def _announce(self, event: ModelEvent) -> None:
        """Queue an event for ``model.events``; a full or broken disk is logged, not fatal."""
        try:
            self.publish(event)
        except OSError as exc:
            log.error("stage=event could not queue %s %s: %s", event.kind, event.model_version, exc)

    # -- the loop -----------------------------------------------------------------------
    def consumer(self, group_id: str | None = None, start: str = "earliest") -> Consumer:
        s = self.settings
        config = consumer_config(
            s.kafka(),
            group_id=group_id or s.group_id,
            client_id=s.group_id,
            assignment_strategy=s.kafka_assignment_strategy,
        )
        config.update(
            {
                "enable.auto.commit": True,
                "enable.auto.offset.store": True,
                "auto.offset.reset": start,
                "queued.max.messages.kbytes": 16384,
            }
        )
        consumer = Consumer(config)
        consumer.subscribe([s.topics().scored])
        return consumer

    def consume(self, consumer: Consumer, timeout_s: float = 0.5) -> int:
        messages = consumer.consume(1000, timeout_s)
        decisions = []
        for message in messages:
            if message.error() is not None:
                continue
            decoded = decision_decoder.decode(message.value())
            if isinstance(decoded, Decision):
                decisions.append(decoded)
        if decisions:
            self.add(decisions)
        return len(messages)

    def run(self, max_seconds: float | None = None) -> None:
        consumer = self.consumer()
        started = self.clock()
        log.info(
            "stage=start group=%s topic=%s", self.settings.group_id, self.settings.topics().scored
        )
        try:
            self.refresh_champion()
            while self.running:
                self.consume(consumer)
                self.poll_training()
                if self.check_due():
                    self.check_guarded()
                if max_seconds is not None and self.clock() - started > max_seconds:
                    break
        finally:
            consumer.close()
            if self.job is not None:
                self.job.close()
            log.info("stage=stop served=%d verdicts=%d", self.served.seen, len(self.verdicts))

    def stop(self, *_: object) -> None:
        self.running = False

    def catch_up(self, consumer: Consumer, idle_s: float = 3.0) -> int:
        """Read until nothing new arrives for ``idle_s`` (the one-shot mode)."""
        quiet_since = self.clock()
        while self.clock() - quiet_since < idle_s:
            if self.consume(consumer):
                quiet_since = self.clock()
        return self.served.seen

    def retrain_once(self, trigger: str, *, shuffle_labels: bool = False) -> Verdict | str:
        """Train, judge and decide now, waiting for the result (``fraudctl retrain --once``)."""
        self.refresh_champion()
        self.start_training(trigger, shuffle_labels=shuffle_labels)
        assert self.job is not None
        while True:
            outcome = self.poll_training()
            if outcome is not None:
                return outcome
            time.sleep(0.2)


def build(
    settings: RetrainerSettings, *, client_id: str = "retrainer"
) -> tuple[Retrainer, EventPublisher]:
    """The retrainer and its event publisher (not started: ``start()`` it, or ``drain``)."""
    registry = settings.registry()
    publisher = event_publisher(settings, registry, client_id=client_id)
    store = TrainingStore(
        settings.training_root,
        on_quarantine=quarantined_part,
        endpoint_url=settings.s3_endpoint_url,
    )
    return Retrainer(settings, registry, store, publisher), publisher


def main(settings: RetrainerSettings) -> None:
    from prometheus_client import start_http_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    retrainer, publisher = build(settings)
    publisher.start()
    if settings.metrics_port:
        start_http_server(settings.metrics_port)

    def _stop(signum: int, frame: FrameType | None) -> None:
        retrainer.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        retrainer.run()
    finally:
        publisher.close()
