"""The retrainer on the real broker: drift -> challenger -> gates -> promoted; drill; failure.

The world (a champion, then served traffic with a pattern it never saw, labelled) comes
from :mod:`tests.retrainer_world`.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Consumer

from features.definitions import FEATURE_NAMES
from services.retrainer.events import EventPublisher
from services.retrainer.promotion import Verdict, champion_scores
from services.retrainer.service import Retrainer, build
from services.retrainer.settings import RetrainerSettings
from streams.events import ModelEvent
from streams.kafka import consumer_config
from streams.serde import model_event_decoder
from streams.topics import Topics
from tests.retrainer_world import World, build_world, serve

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("retrainer"))


def _settings(
    tmp_path: Path, topics: Topics, bootstrap: str, world: World, **kw: object
) -> RetrainerSettings:
    shutil.copytree(world.registry_dir, tmp_path / "registry")
    values: dict[str, object] = {
        "kafka_bootstrap": bootstrap,
        "topic_prefix": topics.prefix,
        "state_dir": tmp_path,
        "metrics_port": 0,
        "history_dir": world.history_dir,
        "history_days": 7,
        "label_maturity_s": 0.0,
        "window_rows": 3000,
        "min_window_rows": 1000,
        "check_every_s": 2.0,
        "check_every_rows": 10**9,
        "min_new_labels": 10**9,
        "cooldown_s": 3600.0,
        "train_days": 28,
        "test_days": 4,
        "val_days": 3,
        "reference_rows": 1000,
        "gate_min_labels": 200,
        "gate_min_frauds": 10,
    }
    values.update(kw)
    return RetrainerSettings(**values)  # type: ignore[arg-type]


def _events(bootstrap: str, topics: Topics) -> list[ModelEvent]:
    consumer = Consumer(
        consumer_config(bootstrap, group_id=f"{topics.prefix}read", client_id="test")
    )
    consumer.subscribe([topics.model_events])
    out: list[ModelEvent] = []
    idle = time.monotonic()
    while time.monotonic() - idle < 3.0:
        for message in consumer.consume(100, 0.5):
            if message.error() is None:
                event = model_event_decoder.decode(message.value())
                assert isinstance(event, ModelEvent)
                out.append(event)
                idle = time.monotonic()
    consumer.close()
    return out


def _build(settings: RetrainerSettings) -> tuple[Retrainer, EventPublisher]:
    retrainer, publisher = build(settings, client_id="test-retrainer")
    return retrainer, publisher.start()


def test_drift_triggers_a_challenger_that_passes_the_gates_and_is_promoted(
    tmp_path: Path, topics: Topics, kafka_bootstrap: str, world: World
) -> None:
    # first check once every served row is in (a check on a part would train on a part)
    settings = _settings(
        tmp_path,
        topics,
        kafka_bootstrap,
        world,
        check_every_s=3600.0,
        check_every_rows=len(world.served),
    )
    retrainer, publisher = _build(settings)
    serve(world, topics, kafka_bootstrap, retrainer.store)
    thread = threading.Thread(target=retrainer.run, kwargs={"max_seconds": 400}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 400
    while not retrainer.verdicts and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.5)
    retrainer.stop()
    thread.join(30)
    publisher.close()

    assert retrainer.verdicts, "no challenger was judged"
    verdict: Verdict = retrainer.verdicts[0]
    print("\n".join(verdict.reasons()))
    assert verdict.promoted and verdict.champion_before == "v0001"
    assert [r.passed for r in verdict.gates.results] == [True] * 5
    champion = retrainer.registry.champion()
    assert champion is not None and champion.version == verdict.version == "v0002"
    events = _events(kafka_bootstrap, topics)
    kinds = [e.kind for e in events]
    assert "drift_report" in kinds and "quality_report" in kinds
    drift = next(e for e in events if e.kind == "drift_report")
    assert drift.details["drifted"] and drift.details["drifted_features"]
    assert drift.model_version == "v0001"
    promoted = [e for e in events if e.kind == "promoted"]
    assert [(e.model_version, e.previous_version) for e in promoted] == [("v0002", "v0001")]
    assert "gate 5 reference_drift: pass" in promoted[0].reasons[0]
    # the challenger ranks the held-out window far better than the champion did
    assert verdict.numbers["gate3_average_precision"] > verdict.gates.results[2].bound + 0.1


def test_gate_drill_shuffled_labels_is_rejected_and_the_champion_stays(
    tmp_path: Path, topics: Topics, kafka_bootstrap: str, world: World
) -> None:
    settings = _settings(tmp_path, topics, kafka_bootstrap, world)
    retrainer, publisher = _build(settings)
    serve(world, topics, kafka_bootstrap, retrainer.store)
    consumer = retrainer.consumer(group_id=f"{topics.prefix}drill")
    retrainer.catch_up(consumer, idle_s=3.0)
    consumer.close()
    assert retrainer.served.seen == len(world.served)

    verdict = retrainer.retrain_once("gate drill", shuffle_labels=True)
    publisher.close()

    assert isinstance(verdict, Verdict)
    print("\n".join(verdict.reasons()))
    assert not verdict.promoted
    failed = {r.name for r in verdict.gates.results if not r.passed}
    assert "average_precision" in failed
    assert retrainer.registry.champion().version == "v0001"  # type: ignore[union-attr]
    assert retrainer.registry.status(verdict.version) == "rejected"
    rejected = [e for e in _events(kafka_bootstrap, topics) if e.kind == "rejected"]
    assert [e.model_version for e in rejected] == [verdict.version]
    assert any("gate 3 average_precision: FAIL" in reason for reason in rejected[0].reasons)


CARD_TESTING = 4  # the simulator's scenario number of the pattern the champion never saw


def test_the_promoted_policy_is_refit_on_recent_served_traffic_and_says_why(
    tmp_path: Path, topics: Topics, kafka_bootstrap: str, world: World
) -> None:
    settings = _settings(tmp_path, topics, kafka_bootstrap, world)
    retrainer, publisher = _build(settings)
    serve(world, topics, kafka_bootstrap, retrainer.store)
    consumer = retrainer.consumer(group_id=f"{topics.prefix}refit")
    retrainer.catch_up(consumer, idle_s=3.0)
    consumer.close()

    verdict = retrainer.retrain_once("drift")
    publisher.close()

    assert isinstance(verdict, Verdict) and verdict.promoted, verdict
    champion = retrainer.registry.champion()
    assert champion is not None and champion.version == verdict.version
    policy = champion.policy()  # policy.json: what the scorers load
    basis = policy.basis
    assert basis["fitted_on"] == "recent labelled served traffic"
    capacity = basis["review_capacity_per_day"]
    window = basis["window"]
    # the gates' window: the last test_days of served traffic, all labelled (maturity 0)
    days = (world.served["event_time"] - world.served["event_time"].min()).dt.days
    recent = world.served[(days >= days.max() + 1 - settings.test_days).to_numpy()]
    assert window["rows"] == len(recent) and window["days"] == pytest.approx(4, abs=0.05)
    scores = champion_scores(champion, recent[list(FEATURE_NAMES)].to_numpy(np.float32))
    pattern = (recent["scenario"] == CARD_TESTING).to_numpy() & recent["is_fraud"].astype(bool)
    refit_caught = int(np.sum(policy.flagged(scores) & pattern))
    trained_caught = int(np.sum((scores >= basis["replaces"]["review_threshold"]) & pattern))
    print(
        f"new-pattern frauds flagged: refit {refit_caught} / trained {trained_caught} "
        f"of {int(pattern.sum())}; {verdict.policy}"
    )
    assert refit_caught >= 0.5 * pattern.sum()
    assert refit_caught >= trained_caught
    outcomes = policy.decide(scores)
    assert int(np.sum(outcomes == "review")) <= capacity * window["days"] + 1
    declined = outcomes == "decline"
    assert recent["is_fraud"].to_numpy()[declined].mean() >= basis["decline_precision_target"]
    # the gates judged the policy it serves: gate 4 names its threshold
    assert f"at {policy.review_threshold:.4g})" in verdict.gates.results[3].detail
    events = _events(kafka_bootstrap, topics)
    mine = [e for e in events if e.model_version == verdict.version]
    assert [e.kind for e in mine] == ["registered", "promoted"]
    for event in mine:
        assert event.details["policy"]["refitted"] is True
        assert event.details["policy"]["basis"] == basis
    assert "policy refit on" in mine[1].reasons[0]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"training_timeout_s": 0.05}, "retraining timeout"),
        ({"history_days": 0}, "no labelled served rows"),
    ],
)
def test_a_failed_training_keeps_the_champion_and_says_why(
    tmp_path: Path,
    topics: Topics,
    kafka_bootstrap: str,
    world: World,
    overrides: dict[str, object],
    expected: str,
) -> None:
    settings = _settings(tmp_path, topics, kafka_bootstrap, world, **overrides)
    retrainer, publisher = _build(settings)  # nothing served, nothing labelled
    outcome = retrainer.retrain_once("manual")
    publisher.close()

    assert isinstance(outcome, str) and expected in outcome
    assert retrainer.registry.champion().version == "v0001"  # type: ignore[union-attr]
    assert [v.version for v in retrainer.registry.list()] == ["v0001"]
    events = [e for e in _events(kafka_bootstrap, topics) if e.kind == "rejected"]
    assert len(events) == 1 and events[0].model_version == "untrained"
    assert expected in events[0].reasons[0]
    assert events[0].reasons[1] == "champion v0001 keeps serving"
