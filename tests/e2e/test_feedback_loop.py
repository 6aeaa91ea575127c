"""The closed loop, end to end, on the real broker + Redis with the real processes.

champion (trained here on a short simulated history) serves live simulated traffic ->
card testing (scenario 4, never seen by the champion) switches on -> the oracle reviewer
labels flagged cases, the chargeback feed labels missed fraud after a delay -> feedback
processor -> training store -> retrainer: drift detected, challenger trained, gates pass,
promoted -> the scorer reloads. Then: AP on the new pattern's traffic before vs after,
exactly one decision per transaction across the swap, every flagged case labelled once by
the oracle and every missed fraud once by the chargeback feed (as the review processes'
``fraud_labels_total`` counts them), and a gate drill (shuffled labels) rejected with the
champion untouched.

Compressed time: traffic runs at RATE tx/s and a simulated day holds ~DAY_TX transactions,
so the retrainer stretches served time by ``RATE / DAY_TX`` days per second.

Processes (all ``fraudctl``): ``serve scorer``, ``review --auto`` (oracle from the
simulator's ground truth in Redis, same ``FRAUD_REDIS_PREFIX``), ``review --chargebacks``,
``serve feedback``, ``serve retrainer``. The test itself only streams transactions and
records decisions and labels with a plain consumer.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import redis
from confluent_kafka import Consumer
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import average_precision_score

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from features.offline import build_training_table
from models.data import load_training_data
from models.pipeline import TrainConfig, train_from_table
from models.registry import ModelRegistry
from services.demo.plan import DRIFT_IGNORE
from services.retrainer.promotion import Verdict
from services.retrainer.service import build
from services.retrainer.settings import RetrainerSettings, gates_window_days
from services.stack.process import free_port
from streams.events import Decision, Label, ModelEvent
from streams.kafka import consumer_config
from streams.serde import Decoder, decision_decoder, model_event_decoder
from streams.simulator import GroundTruthStore, Simulator, SimulatorConfig, write_history
from streams.simulator.stream import stream_transactions
from streams.topics import Topics
from tests.processes import ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

RATE = 100.0  # transactions per second
DAY_TX = 1000.0  # ~transactions per simulated day in the small world
COMPRESSION = 86_400.0 * RATE / DAY_TX
HISTORY_DAYS = 21
SEGMENT_S = 10.0  # one stream call per ~simulated day
PATTERN_AFTER_SEGMENTS = 2  # card testing from the 3rd segment (20 s in)
CHECK_ROWS = 9_000  # first retrainer check ~90 s in: 70 s of card testing served
AFTER_PROMOTION_SEGMENTS = 5
MAX_SEGMENTS = 40
CHARGEBACK_DELAY_S = 4.0
# Review capacity: the top 2% of validation traffic. At 0.5% the challenger's threshold
# rests on ~10 validation rows and can flag none of a short evaluation window (gate 4).
REVIEW_RATE = 0.02
MATURITY_S = 12.0
# Accumulating and calendar features are reported, not tested, in compressed time: the
# demo and this test share that one definition.


def _config() -> SimulatorConfig:
    return SimulatorConfig.small(seed=11, card_testing_per_day=8.0)


def _train_champion(state: Path, history: Path) -> str:
    """The ``fraudctl train`` path on a short history: load -> offline features -> train."""
    loaded = load_training_data(history, label_delay_days=1)
    table = build_training_table(loaded.transactions, loaded.labels, label_delay_days=1)
    outcome = train_from_table(
        table,
        list(FEATURE_NAMES),
        FEATURE_SET_ID,
        config=TrainConfig(
            train_days=14,
            delay_days=1,
            test_days=3,
            val_days=3,
            reference_rows=1000,
            review_rate=REVIEW_RATE,
        ),
        source=loaded.source,
        fingerprint=loaded.fingerprint,
    )
    registry = ModelRegistry(state / "registry")
    version = registry.register(outcome.bundle)
    registry.promote(version.version, "e2e champion")
    return version.version


class Recorder(threading.Thread):
    """Decisions (``transactions.scored``) and labels (``fraud.labels``), as they arrive."""

    def __init__(self, bootstrap: str, topics: Topics) -> None:
        super().__init__(daemon=True)
        self.topics = topics
        self.consumer = Consumer(
            consumer_config(bootstrap, group_id=f"{topics.prefix}recorder", client_id="e2e-rec")
        )
        self.decisions: list[Decision] = []
        self.labels: list[Label] = []
        self.running = True

    def run(self) -> None:
        label_decoder = Decoder(Label)
        self.consumer.subscribe([self.topics.scored, self.topics.labels])
        while self.running:
            for m in self.consumer.consume(500, 0.2):
                if m.error() is not None:
                    continue
                if m.topic() == self.topics.labels:
                    label = label_decoder.decode(m.value())
                    if isinstance(label, Label):
                        self.labels.append(label)
                else:
                    decision = decision_decoder.decode(m.value())
                    if isinstance(decision, Decision):
                        self.decisions.append(decision)
        self.consumer.close()

    def labelled(self, source: str) -> Counter[str]:
        return Counter(lb.transaction_id for lb in list(self.labels) if lb.source == source)


def _labels_total(port: int) -> dict[str, float]:
    """``fraud_labels_total`` by source, scraped from a review process's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        sample.labels["source"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "fraud_labels"
        for sample in family.samples
        if sample.name == "fraud_labels_total"
    }


def _events(bootstrap: str, topics: Topics) -> list[ModelEvent]:
    consumer = Consumer(consumer_config(bootstrap, group_id=f"{topics.prefix}ev", client_id="e"))
    consumer.subscribe([topics.model_events])
    out: list[ModelEvent] = []
    idle = time.monotonic()
    while time.monotonic() - idle < 3.0:
        for m in consumer.consume(100, 0.5):
            if m.error() is None:
                event = model_event_decoder.decode(m.value())
                if isinstance(event, ModelEvent):
                    out.append(event)
                    idle = time.monotonic()
    consumer.close()
    return out


def _produced_ids(bootstrap: str, topics: Topics) -> list[str]:
    import msgspec

    consumer = Consumer(consumer_config(bootstrap, group_id=f"{topics.prefix}tx", client_id="t"))
    consumer.subscribe([topics.transactions])
    ids: list[str] = []
    idle = time.monotonic()
    while time.monotonic() - idle < 3.0:
        for m in consumer.consume(1000, 0.5):
            if m.error() is None:
                ids.append(msgspec.json.decode(m.value() or b"{}")["transaction_id"])
                idle = time.monotonic()
    consumer.close()
    return ids


def _ap(decisions: list[Decision], truth: dict[str, tuple[int, int]]) -> tuple[float, int, int]:
    labels = np.array([truth[d.transaction_id][0] for d in decisions], dtype=np.int8)
    scores = np.array([d.score for d in decisions])
    if len(np.unique(labels)) < 2:
        return float("nan"), len(labels), int(labels.sum())
    return float(average_precision_score(labels, scores)), len(labels), int(labels.sum())


def test_closed_loop_detects_drift_retrains_promotes_and_rejects_a_broken_challenger(
    tmp_path: Path,
    kafka_bootstrap: str,
    topics: Topics,
    redis_url: str,
    redis_prefix: str,
) -> None:
    config = _config()
    history = tmp_path / "history"
    start = (datetime.now(UTC) - timedelta(days=HISTORY_DAYS)).date()
    write_history(history, config, HISTORY_DAYS, date.fromisoformat(start.isoformat()))
    state = tmp_path / "state"
    champion = _train_champion(state, history)
    registry = ModelRegistry(state / "registry")

    env = {
        "FRAUD_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "FRAUD_TOPIC_PREFIX": topics.prefix,
        "FRAUD_REDIS_URL": redis_url,
        "FRAUD_REDIS_PREFIX": redis_prefix,
        "FRAUD_STATE_DIR": str(state),
        "FRAUD_FEAST_PROJECT": f"e2e{uuid.uuid4().hex[:8]}",
        # retrainer: compressed time, first check once card testing has been served a while
        "FRAUD_HISTORY_DIR": str(history),
        "FRAUD_HISTORY_DAYS": "7",
        "FRAUD_TIME_COMPRESSION": str(COMPRESSION),
        "FRAUD_LABEL_MATURITY_S": str(MATURITY_S),
        "FRAUD_WINDOW_ROWS": "3000",
        "FRAUD_MIN_WINDOW_ROWS": "1000",
        "FRAUD_CHECK_EVERY_ROWS": str(CHECK_ROWS),
        "FRAUD_CHECK_EVERY_S": "3600",
        "FRAUD_MIN_NEW_LABELS": str(10**9),
        "FRAUD_COOLDOWN_S": "3600",
        "FRAUD_TRAIN_DAYS": "28",
        "FRAUD_TEST_DAYS": str(gates_window_days(MATURITY_S, SEGMENT_S)),
        "FRAUD_VAL_DAYS": "2",
        "FRAUD_REFERENCE_ROWS": "1000",
        "FRAUD_REVIEW_RATE": str(REVIEW_RATE),
        "FRAUD_TRAINING_TIMEOUT_S": "400",
        "FRAUD_DRIFT_IGNORE": json.dumps(DRIFT_IGNORE),
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    scorer = ServiceProcess(["serve", "scorer", "--metrics-port", "0"], env, logs / "scorer.log")
    oracle_port, chargeback_port = free_port(), free_port()
    oracle = ServiceProcess(
        ["review", "--auto"], {**env, "FRAUD_METRICS_PORT": str(oracle_port)}, logs / "oracle.log"
    )
    chargebacks = ServiceProcess(
        ["review", "--chargebacks", "--delay-s", str(CHARGEBACK_DELAY_S)],
        {**env, "FRAUD_METRICS_PORT": str(chargeback_port)},
        logs / "chargebacks.log",
    )
    feedback = ServiceProcess(["serve", "feedback"], env, logs / "feedback.log")
    retrainer = ServiceProcess(
        ["serve", "retrainer", "--metrics-port", "0"], env, logs / "retrainer.log"
    )
    services = {
        "scorer": scorer,
        "oracle": oracle,
        "chargebacks": chargebacks,
        "feedback": feedback,
        "retrainer": retrainer,
    }
    truth = GroundTruthStore(redis.Redis.from_url(redis_url), redis_prefix)
    recorder = Recorder(kafka_bootstrap, topics)
    try:
        for name, service in services.items():
            _wait_for(_logged(service, "stage=start"), 90, f"{name} start")
        recorder.start()
        simulator = Simulator(config, run_id=uuid.uuid4().hex[:6])
        switch_at: datetime | None = None
        promoted_at: datetime | None = None
        after = 0
        for segment in range(MAX_SEGMENTS):
            card_testing = segment >= PATTERN_AFTER_SEGMENTS
            if card_testing and switch_at is None:
                switch_at = datetime.now(UTC)
            stream_transactions(
                simulator,
                bootstrap=kafka_bootstrap,
                topic=topics.transactions,
                rate=RATE,
                duration_s=SEGMENT_S,
                truth=truth,
                first_day=HISTORY_DAYS + segment,
                new_pattern_after_s=0.0 if card_testing else None,
            )
            current = registry.champion()
            if promoted_at is None and current is not None and current.version != champion:
                promoted_at = datetime.now(UTC)
            if promoted_at is not None:
                after += 1
                if after >= AFTER_PROMOTION_SEGMENTS:
                    break
            for name, service in services.items():
                assert service.alive(), f"{name} died: {service.output()[-4000:]}"
        assert promoted_at is not None, retrainer.output()[-4000:]
        produced = _produced_ids(kafka_bootstrap, topics)
        _wait_for(
            lambda: len({d.transaction_id for d in recorder.decisions}) >= len(set(produced)),
            120,
            "every transaction decided",
        )
        decisions = list(recorder.decisions)
        flagged = {d.transaction_id for d in decisions if d.decision != "approve"}
        approved = [d.transaction_id for d in decisions if d.decision == "approve"]
        truth_all = truth.read_batch([d.transaction_id for d in decisions])
        missed = {t for t in approved if truth_all[t][0] == 1}
        _wait_for(
            lambda: (
                set(recorder.labelled("oracle")) >= flagged
                and set(recorder.labelled("chargeback")) >= missed
            ),
            120,
            "every flagged case and every missed fraud labelled",
        )
        for name, service in services.items():
            assert service.alive(), f"{name} died: {service.output()[-4000:]}"
        scraped = {
            "oracle": _labels_total(oracle_port),
            "chargeback": _labels_total(chargeback_port),
        }
    finally:
        recorder.running = False
        recorder.join(30)
        for service in services.values():
            service.terminate()

    # -- the review processes: each flagged case labelled once, from ground truth; each
    #    missed fraud charged back once; their fraud_labels_total counts what they sent --
    by_oracle = recorder.labelled("oracle")
    by_chargeback = recorder.labelled("chargeback")
    assert set(by_oracle) == flagged and max(by_oracle.values()) == 1
    assert set(by_chargeback) == missed and max(by_chargeback.values(), default=1) == 1
    for label in recorder.labels:
        expected = "fraud" if truth_all[label.transaction_id][0] == 1 else "legit"
        assert label.label == expected, label
    assert scraped["oracle"] == {"oracle": float(len(flagged))}
    assert scraped["chargeback"] == {"chargeback": float(len(missed))}

    # -- no transaction lost or decided twice across the swap --------------------------
    counts = Counter(d.transaction_id for d in decisions)
    assert set(counts) == set(produced)
    assert max(counts.values()) == 1
    new_version = registry.champion().version  # type: ignore[union-attr]
    served_by = Counter(d.model_version for d in decisions)
    assert served_by[champion] > 0 and served_by[new_version] > 0

    # -- the monitor saw the shift; the retrainer promoted through the gates -----------
    events = _events(kafka_bootstrap, topics)
    drift = [e for e in events if e.kind == "drift_report" and e.details.get("drifted")]
    assert drift, "no drift report with drift"
    promoted = [e for e in events if e.kind == "promoted" and e.model_version == new_version]
    assert promoted and promoted[0].previous_version == champion
    assert all(f"gate {n} " in promoted[0].reasons[0] for n in range(1, 6))

    # -- AP on the new pattern's traffic: before vs after the promotion ----------------
    assert switch_at is not None
    before = [d for d in decisions if d.model_version == champion and d.event_time >= switch_at]
    after_swap = [d for d in decisions if d.model_version == new_version]
    ap_before, n_before, f_before = _ap(before, truth_all)
    ap_after, n_after, f_after = _ap(after_swap, truth_all)
    print(
        f"\nAP on card-testing-era traffic: champion {champion} {ap_before:.3f} "
        f"({n_before} tx, {f_before} fraud) -> challenger {new_version} {ap_after:.3f} "
        f"({n_after} tx, {f_after} fraud); labels: oracle {len(by_oracle)}, "
        f"chargeback {len(by_chargeback)}; "
        f"drift reports {len(drift)}; promoted {promoted_at - switch_at} after the switch"
    )
    print("\n".join(promoted[0].reasons[0].split("; ")))
    assert ap_after > ap_before + 0.1

    # -- gate drill: a challenger trained on shuffled labels is rejected ---------------
    with pytest.MonkeyPatch.context() as patch:  # the same FRAUD_* settings as the process
        for key, value in env.items():
            patch.setenv(key, value)
        settings = RetrainerSettings(metrics_port=0)
    drill, _unstarted = build(settings, client_id="e2e-drill")  # its events stay queued
    consumer = drill.consumer(group_id=f"{topics.prefix}drill")
    drill.catch_up(consumer, idle_s=3.0)
    consumer.close()
    verdict = drill.retrain_once("gate drill", shuffle_labels=True)
    assert isinstance(verdict, Verdict), verdict
    print("gate drill:\n" + "\n".join(verdict.reasons()))
    assert not verdict.promoted
    assert registry.status(verdict.version) == "rejected"
    assert registry.champion().version == new_version  # type: ignore[union-attr]


def _logged(service: ServiceProcess, text: str) -> Callable[[], bool]:
    return lambda: text in service.output()


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")
