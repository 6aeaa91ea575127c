"""The real scorer processes: crash + restart, a second process joining, hot model reload."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from models.registry import ModelBundle, ModelRegistry
from services.scorer.service import build_scorer
from streams.events import Decision
from streams.kafka import ensure_topics
from streams.topics import Topics
from tests.integration.conftest import SmallWorld, private_state
from tests.integration.scorer_helpers import (
    DecisionCounter,
    decode_decisions,
    produce,
    read_all,
    scorer_env,
    scorer_settings,
    wait_for_decisions,
)
from tests.processes import ServiceProcess

pytestmark = pytest.mark.e2e


def _scorer(env: dict[str, str], log: Path, instance: str) -> ServiceProcess:
    return ServiceProcess(
        ["serve", "scorer", "--metrics-port", "0"], {**env, "FRAUD_INSTANCE_ID": instance}, log
    )


def _by_id(decisions: list[Decision]) -> dict[str, Decision]:
    return {d.transaction_id: d for d in decisions}


@pytest.fixture()
def second_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"test{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


def test_sigkill_mid_stream_then_restart_decides_each_transaction_once(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    second_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
    tmp_path: Path,
) -> None:
    transactions = small_world.as_live_events(10_000, rate=1_000.0)
    env = scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, champion_state, "crashy")
    first = _scorer(env, tmp_path / "first.log", "crashy")
    sender = threading.Thread(
        target=produce, args=(kafka_bootstrap, topics.transactions, transactions, 1_000.0)
    )
    counter = DecisionCounter(kafka_bootstrap, topics.scored)
    sender.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and counter.count() < 2_000:
        pass  # kill it once it is really deciding, well before the stream ends
    first.kill()
    killed_at = counter.count(poll_s=1.0)
    counter.close()
    second = _scorer(env, tmp_path / "second.log", "crashy")
    sender.join(120)
    decisions = wait_for_decisions(kafka_bootstrap, topics.scored, 10_000, timeout_s=180)
    assert second.terminate() == 0, second.output()[-3000:]

    counts = Counter(d.transaction_id for d in decisions)
    assert 0 < killed_at < 10_000, "the kill must land mid-stream"
    assert len(counts) == 10_000 and set(counts) == {t.transaction_id for t in transactions}
    assert max(counts.values()) == 1, counts.most_common(3)

    # Reference: the same stream through a scorer that never crashed.
    reference = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.")
    ensure_topics(kafka_bootstrap, reference)
    produce(kafka_bootstrap, reference.transactions, transactions)
    ref_env = scorer_env(kafka_bootstrap, redis_url, reference, second_prefix, champion_state, "r")
    build_scorer(scorer_settings(ref_env)).run(max_idle_s=4.0)
    expected = _by_id(decode_decisions(read_all(kafka_bootstrap, reference.scored)))
    got = _by_id(decisions)
    assert expected.keys() == got.keys()
    different = [t for t in got if got[t].features != expected[t].features]
    assert different == []
    assert all(abs(got[t].score - expected[t].score) < 1e-9 for t in got)


def test_two_scorers_started_a_second_apart_share_20000_transactions_once(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
    tmp_path: Path,
) -> None:
    """Two scorers started a second apart, as a loaded box starts them, mid-stream.

    The second joins just after the first got every partition: the window in which
    cooperative-sticky on the embedded broker orphaned the partitions the first gave up
    (nobody consumed them again; see streams.kafka)."""
    transactions = small_world.as_events(20_000)
    env = scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, champion_state, "a")
    sender = threading.Thread(
        target=produce, args=(kafka_bootstrap, topics.transactions, transactions, 2_000.0)
    )
    sender.start()
    first = _scorer(env, tmp_path / "a.log", "a")
    time.sleep(1.0)
    second = _scorer(env, tmp_path / "b.log", "b")
    sender.join(120)
    decisions = wait_for_decisions(kafka_bootstrap, topics.scored, 20_000, timeout_s=180)
    group = (first, second)
    exits = [p.terminate() for p in group]
    logs = [p.output() for p in group]

    counts = Counter(d.transaction_id for d in decisions)
    assert len(counts) == 20_000 and max(counts.values()) == 1, counts.most_common(3)
    assert exits == [0, 0], [log[-2000:] for log in logs]
    decided = [int(log.rsplit("decided=", 1)[1].split()[0]) for log in logs]
    assert sum(decided) == 20_000 and min(decided) > 0, decided


def test_hot_reload_switches_version_without_gap_and_refuses_a_bad_model(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    trained_bundle: ModelBundle,
    small_world: SmallWorld,
    tmp_path: Path,
) -> None:
    state = private_state(champion_state, tmp_path / "state")
    registry = ModelRegistry(state / "registry")
    transactions = small_world.as_events(12_000)
    env = scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, state, "reload")
    scorer = _scorer(env, tmp_path / "scorer.log", "reload")
    counter = DecisionCounter(kafka_bootstrap, topics.scored)
    sender = threading.Thread(
        target=produce, args=(kafka_bootstrap, topics.transactions, transactions, 1_000.0)
    )
    sender.start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and counter.count() < 1_000:
        pass  # the champion v0001 is serving
    broken = registry.register(dataclasses.replace(trained_bundle, onnx=b"not an onnx model"))
    registry.promote(broken.version, reason="test: a corrupt model must be refused")
    time.sleep(2.0)
    good = registry.register(trained_bundle)
    registry.promote(good.version, reason="test: hot reload")
    counter.close()
    sender.join(120)
    decisions = wait_for_decisions(kafka_bootstrap, topics.scored, 12_000, timeout_s=180)
    assert scorer.terminate() == 0
    log = scorer.output()

    counts = Counter(d.transaction_id for d in decisions)
    assert len(counts) == 12_000 and max(counts.values()) == 1
    versions = Counter(d.model_version for d in decisions)
    assert set(versions) == {"v0001", good.version}, versions
    assert broken.version not in versions
    assert f"refused model {broken.version}" in log
    assert f"model v0001 -> {good.version}" in log
