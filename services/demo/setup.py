"""The demo's preparation (history, champion, profiles) and its live traffic thread.

Training is the ``fraudctl train`` path (load -> offline features -> ``train_from_table``
-> register -> promote) with the short-history windows of the closed-loop e2e test.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from confluent_kafka import KafkaError, Message, Producer

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from features.profiles.feast_repo import REPO_DIR
from services.demo.plan import CARD_TESTING_PER_DAY, SIMULATOR_SEED, DemoPlan
from streams.errors import DeliveryFailed
from streams.kafka import producer_config, warm_up_producer
from streams.simulator import GroundTruthStore, Simulator, SimulatorConfig, write_history
from streams.simulator.source import LiveSource
from streams.simulator.stream import stream_transactions

LABEL_DELAY_DAYS = 1


def simulator_config() -> SimulatorConfig:
    return SimulatorConfig.small(seed=SIMULATOR_SEED, card_testing_per_day=CARD_TESTING_PER_DAY)


def simulate_history(plan: DemoPlan) -> int:
    """``plan.history_days`` days ending today; returns the transaction count."""
    start = (datetime.now(UTC) - timedelta(days=plan.history_days)).date()
    manifest = write_history(
        plan.history_dir, simulator_config(), plan.history_days, start, overwrite=True
    )
    return int(manifest["stats"]["rows"])


def train_champion(plan: DemoPlan) -> tuple[str, dict[str, object]]:
    """Train, register and promote the first champion; returns (version, test metrics).

    The registry's ``registered`` / ``promoted`` events wait in its outbox (the audit log)
    until they are announced on ``model.events``."""
    from features.offline import build_training_table
    from models.data import load_training_data
    from models.pipeline import TrainConfig, train_from_table
    from models.registry import ModelRegistry

    loaded = load_training_data(plan.history_dir, label_delay_days=LABEL_DELAY_DAYS)
    table = build_training_table(
        loaded.transactions, loaded.labels, label_delay_days=LABEL_DELAY_DAYS
    )
    outcome = train_from_table(
        table,
        list(FEATURE_NAMES),
        FEATURE_SET_ID,
        config=TrainConfig(
            train_days=14,
            delay_days=LABEL_DELAY_DAYS,
            test_days=3,
            val_days=3,
            reference_rows=1000,
        ),
        source=loaded.source,
        fingerprint=loaded.fingerprint,
        warnings=loaded.warnings,
    )
    registry = ModelRegistry(plan.run_dir / "registry")
    version = registry.register(outcome.bundle)
    registry.promote(version.version, "fraudctl demo: first champion")
    return version.version, outcome.metrics


def materialize_profiles(plan: DemoPlan, redis_url: str) -> int:
    """Feast profiles of the history into Redis under the run's project; returns terminals.

    The Feast repository is copied into the run folder so its registry and source file
    never touch the one shipped with the code.
    """
    from features.profiles.materialize import materialize

    shutil.copytree(REPO_DIR, plan.feast_repo, dirs_exist_ok=True)
    report = materialize(
        plan.history_dir,
        redis_url=redis_url,
        repo_dir=plan.feast_repo,
        project=plan.feast_project,
        delay_days=LABEL_DELAY_DAYS,
        state_prefix=plan.redis_prefix,
    )
    return int(report.terminals)


class Traffic(threading.Thread):
    """Live transactions, one simulated day per segment; card testing from the switch on."""

    def __init__(
        self,
        plan: DemoPlan,
        bootstrap: str,
        topic: str,
        truth: GroundTruthStore,
        on_switch: Callable[[], None],
    ) -> None:
        super().__init__(name="demo-traffic", daemon=True)
        self.plan = plan
        self.bootstrap = bootstrap
        self.topic = topic
        self.truth = truth
        self.on_switch = on_switch
        self.simulator = Simulator(simulator_config(), run_id=plan.run_id[:6])
        # one source for every segment: a segment ends mid-day, and a fresh source would
        # replay the rest of that day (same transaction ids) in the next segment
        self.source = LiveSource(self.simulator, first_day=plan.history_days)
        self.produced = 0
        self.segments = 0
        self.switched_at: float | None = None
        self.stop_after_segments: int | None = None  # set once the story is complete
        self.error: BaseException | None = None
        self.delivery_failures: list[str] = []
        self._running = True

    def stop(self) -> None:
        self._running = False

    def finish_after(self, more_segments: int) -> None:
        if self.stop_after_segments is None:
            self.stop_after_segments = self.segments + more_segments

    @property
    def done(self) -> bool:
        return not self.is_alive()

    @property
    def stopping(self) -> bool:
        return not self._running

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.delivery_failures.append(str(err))

    def run(self) -> None:
        try:
            # One producer for every segment, warmed up first: a fresh idempotent producer
            # holds its first writes ~0.5 s for a producer id, which every segment would
            # otherwise add to its first transactions' latency.
            producer = Producer(
                producer_config(
                    self.bootstrap, client_id="demo-simulator", on_delivery=self._on_delivery
                )
            )
            warm_up_producer(producer, self.bootstrap, self.topic)
            while self._running:
                if self.stop_after_segments is not None and (
                    self.segments >= self.stop_after_segments
                ):
                    break
                card_testing = self.segments >= self.plan.switch_segment
                if card_testing and self.switched_at is None:
                    self.switched_at = time.monotonic()
                    self.on_switch()
                report = stream_transactions(
                    self.simulator,
                    bootstrap=self.bootstrap,
                    topic=self.topic,
                    rate=self.plan.rate,
                    duration_s=self.plan.segment_s,
                    truth=self.truth,
                    source=self.source,
                    new_pattern_after_s=0.0 if card_testing else None,
                    producer=producer,
                )
                if self.delivery_failures:
                    raise DeliveryFailed(self.topic, self.delivery_failures[0])
                self.produced += report.count
                self.segments += 1
        except BaseException as exc:  # shown on the dashboard; the demo stops the loop
            self.error = exc
