"""The faust feedback processor on the real broker (and real Redis for terminal risk):
labels before and after their decisions, a SIGKILL mid-stream and a restart, unknown and
malformed labels to the DLQ - and exactly one training row per labelled transaction."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import redis
from confluent_kafka import Consumer, TopicPartition

from features.definitions import FEATURE_NAMES, FEATURE_SET_ID
from features.training_store import TrainingStore
from streams.events import DeadLetter, Decision, Label
from streams.feedback.app import EXIT_STALLED
from streams.kafka import consumer_config, producer_config
from streams.producer import AckedProducer
from streams.serde import Decoder, encode
from streams.topics import Topics
from tests.processes import ServiceProcess

pytestmark = pytest.mark.integration

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
N = 400


def decision(i: int) -> Decision:
    return Decision(
        transaction_id=f"tx{i:05d}",
        card_id=f"C{i % 17}",
        terminal_id=f"T{i % 5}",
        event_time=T0 + timedelta(minutes=i),
        amount=10.0 + i,
        score=0.9,
        decision="review",
        model_version="v7",
        feature_set=FEATURE_SET_ID,
        features=[i + j / 8 for j in range(len(FEATURE_NAMES))],
    )


def label(i: int, value: str, at: datetime, source: str = "analyst") -> Label:
    return Label(
        transaction_id=f"tx{i:05d}",
        label=value,  # type: ignore[arg-type]
        analyst="ana" if source == "analyst" else "cb",
        labelled_at=at,
        source=source,  # type: ignore[arg-type]
    )


def start_processor(env: dict[str, str], log_path: Path) -> ServiceProcess:
    """``fraudctl serve feedback`` in its own process group."""
    return ServiceProcess(["serve", "feedback"], env, log_path)


def wait_for(check: Callable[[], bool], process: ServiceProcess, timeout_s: float = 120.0) -> None:
    """Until ``check()``; on a timeout the failure carries the end of ``process``'s log
    (a stalled faust worker says why only there)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    tail = process.output()[-6000:]
    raise AssertionError(f"condition not met within {timeout_s}s; end of the log:\n{tail}")


@pytest.fixture()
def send(kafka_bootstrap: str, topics: Topics) -> Iterator[Callable[..., None]]:
    producer = AckedProducer(producer_config(kafka_bootstrap, client_id="test-feedback"))

    def _send(decisions: list[Decision] = (), labels: list[Label] = (), raw: bytes = b"") -> None:  # type: ignore[assignment]
        for d in decisions:
            producer.produce(topics.scored, encode(d), d.card_id)
        for lab in labels:
            producer.produce(topics.labels, encode(lab), lab.transaction_id)
        if raw:
            producer.produce(topics.labels, raw, b"broken")
        producer.wait_acked()

    yield _send


def test_join_survives_out_of_order_labels_and_a_killed_processor(
    kafka_bootstrap: str,
    topics: Topics,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
    send: Callable[..., None],
) -> None:
    project = f"p{redis_prefix}"
    env = _env(kafka_bootstrap, topics, redis_url, redis_prefix, tmp_path)
    store = TrainingStore(tmp_path / "state" / "training")
    labelled_at = datetime.now(UTC) - timedelta(minutes=5)
    # 1. labels *before* their decisions (first half of the ids), a malformed label
    early = [label(i, "fraud" if i % 4 == 0 else "legit", labelled_at) for i in range(N // 2)]
    send(labels=early, raw=b'{"transaction_id": "tx1", "label": "maybe"')

    process = start_processor(env, tmp_path / "p1.log")
    try:
        send(decisions=[decision(i) for i in range(N // 2)])
        wait_for(lambda: len(store.read()) >= N // 4, process)
        group = f"{topics.prefix}feedback"
        wait_for(lambda: _committed(kafka_bootstrap, group, topics.scored) > 0, process)
        process.kill()  # 2. crash mid-stream, after the processor committed offsets
    finally:
        if process.alive():
            process.kill()
    committed_at_crash = _committed(kafka_bootstrap, group, topics.scored)
    # 3. more decisions while it is down; labels *after* decisions for the second half,
    #    a chargeback that overrides an analyst label, a label for an unknown transaction
    send(decisions=[decision(i) for i in range(N // 2, N)])
    late = [label(i, "fraud" if i % 4 == 0 else "legit", labelled_at) for i in range(N // 2, N)]
    chargeback = label(1, "fraud", labelled_at + timedelta(minutes=1), source="chargeback")
    unknown = Label(transaction_id="tx-none", label="fraud", analyst="ana", labelled_at=labelled_at)
    send(labels=[*late, chargeback, unknown])

    # the restart runs as under its supervisor: a worker whose fetcher stalls after the
    # restart (faust on the embedded broker, now and then) exits with status 75 and is
    # started again, as production's supervisor does
    restarted, runs = _supervised(
        {**env, "FRAUD_STALL_S": "20"}, tmp_path / "p2.log", lambda: len(store.audit()) >= N + 1
    )
    try:
        letters = _dead_letters(kafka_bootstrap, topics, {"invalid_value", "unknown_transaction"})
    finally:
        assert restarted.terminate(30.0) == 0, restarted.output()[-3000:]

    assert "stage=rewind" in restarted.output()  # the dead member's offsets were moved back
    assert "stage=progress rebalancing=False recovered=True" in restarted.output()
    # the restart read decisions the dead worker had committed (the rewind), up to all N:
    # without the rewind it would route exactly N - committed_at_crash. Not "== N": faust
    # now and then skips a record right after its seek on restart - the race the rewind
    # exists for - which here costs a replayed record (seen: 399 of 400 under load), never
    # a new one (the frame below holds every transaction exactly once). After a stalled
    # run the last run starts from that run's commits, so only the upper bound holds
    replayed = _counter(restarted.output(), "routed_decisions")
    assert replayed <= N
    if runs == 1:
        assert N - committed_at_crash < replayed
    frame = store.read()
    assert list(frame["transaction_id"]) == [f"tx{i:05d}" for i in range(N)]
    expected_fraud = [1 if (i % 4 == 0 or i == 1) else 0 for i in range(N)]
    assert list(frame["is_fraud"]) == expected_fraud
    assert frame.loc[1, "label_source"] == "chargeback"
    assert frame.loc[7, list(FEATURE_NAMES)].tolist() == decision(7).features
    assert set(frame["model_version"]) == {"v7"}
    # exactly one physical row per label applied: no replay wrote anything twice
    physical = sum(pq.read_metadata(p).num_rows for p in store.rows_dir.rglob("*.parquet"))
    assert physical == N + 1
    trail = store.audit()
    assert len(trail) == N + 1
    assert int(trail["superseded"].sum()) == 1

    # at-least-once: a replay may dead-letter a record again; its source position identifies it
    unique = {(d.source_topic, d.partition, d.offset): d for d in letters}
    assert sorted(d.reason for d in unique.values()) == ["invalid_value", "unknown_transaction"]
    unknown_letter = next(d for d in unique.values() if d.reason == "unknown_transaction")
    assert unknown_letter.original == encode(unknown)
    assert unknown_letter.source_topic == topics.labels

    _check_terminal_risk(redis_url, redis_prefix, project, frame)


def test_a_stalled_worker_exits_and_its_restart_catches_up(
    kafka_bootstrap: str,
    topics: Topics,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
    send: Callable[..., None],
) -> None:
    """A worker that holds its partitions yet fetches nothing (the test hook pauses them,
    as a stalled fetcher does) exits with status 75 once records have waited ``stall_s``
    behind unmoving committed offsets; the restarted worker lands every label once."""
    env = _env(kafka_bootstrap, topics, redis_url, redis_prefix, tmp_path)
    env["FRAUD_STALL_S"] = "10"
    store = TrainingStore(tmp_path / "state" / "training")
    labelled_at = datetime.now(UTC) - timedelta(minutes=5)
    half = N // 2
    send(
        decisions=[decision(i) for i in range(half)],
        labels=[label(i, "fraud" if i % 4 == 0 else "legit", labelled_at) for i in range(half)],
    )
    stalled = start_processor({**env, "FRAUD_PAUSE_AFTER": "40"}, tmp_path / "p1.log")
    try:
        wait_for(lambda: not stalled.alive(), stalled)
    finally:
        status = stalled.terminate(5.0)
    assert status == EXIT_STALLED, stalled.output()[-3000:]
    assert "stage=stall partitions=" in stalled.output()
    assert len(store.read()) < half  # it stopped short: the pause held it

    restarted = start_processor(env, tmp_path / "p2.log")
    try:
        wait_for(lambda: len(store.read()) >= half, restarted)
    finally:
        assert restarted.terminate(30.0) == 0, restarted.output()[-3000:]
    assert "stage=stall partitions=" not in restarted.output()
    frame = store.read()
    assert list(frame["transaction_id"]) == [f"tx{i:05d}" for i in range(half)]
    assert list(frame["is_fraud"]) == [1 if i % 4 == 0 else 0 for i in range(half)]


def _supervised(
    env: dict[str, str], log_path: Path, done: Callable[[], bool], attempts: int = 3
) -> tuple[ServiceProcess, int]:
    """Run the processor until ``done()``, starting it again (same log) each time it exits
    with the stall status; returns the running process and how many runs it took."""
    for run in range(1, attempts + 1):
        process = start_processor(env, log_path)
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline and process.alive() and not done():
            time.sleep(0.5)
        if done():
            return process, run
        if process.alive():
            break
        assert process.terminate(1.0) == EXIT_STALLED, process.output()[-3000:]
    tail = process.output()[-6000:]
    process.kill()
    raise AssertionError(f"not done after {run} run(s); end of the log:\n{tail}")


def _env(
    bootstrap: str, topics: Topics, redis_url: str, redis_prefix: str, tmp_path: Path
) -> dict[str, str]:
    return {
        "FRAUD_KAFKA_BOOTSTRAP": bootstrap,
        "FRAUD_TOPIC_PREFIX": topics.prefix,
        "FRAUD_REDIS_URL": redis_url,
        "FRAUD_REDIS_PREFIX": redis_prefix,
        "FRAUD_FEAST_PROJECT": f"p{redis_prefix}",
        "FRAUD_STATE_DIR": str(tmp_path / "state"),
        "FRAUD_LABEL_WAIT_S": "8",
        "FRAUD_TICK_S": "1",
        "FRAUD_PROGRESS_LOG_S": "2",
    }


def _check_terminal_risk(redis_url: str, prefix: str, project: str, frame: pd.DataFrame) -> None:
    from features.profiles.layout import FeastLayout

    client = redis.Redis.from_url(redis_url)
    layout = FeastLayout(project=project)
    terminals = sorted(set(frame["terminal_id"]))
    try:
        frauds = frame[frame["is_fraud"] == 1]
        for terminal, group in frauds.groupby("terminal_id"):
            guard = client.hkeys(f"{prefix}:trisk:{{{terminal}}}:fr")
            applied = {k.decode()[2:] for k in guard if k.startswith(b"t:")}
            assert applied == set(group["transaction_id"]), terminal
            assert client.exists(layout.entity_key(str(terminal))) == 1
    finally:
        client.delete(*layout.entity_keys(terminals))


def _committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = Consumer(consumer_config(bootstrap, group_id=group, client_id="test-offsets"))
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in parts], timeout=10)
        return sum(max(tp.offset, 0) for tp in committed)
    finally:
        consumer.close()


def _counter(log: str, name: str) -> int:
    stop = [line for line in log.splitlines() if "stage=stop" in line][-1]
    return int(stop.split(f"{name}=")[1].split(",")[0])


def _dead_letters(bootstrap: str, topics: Topics, reasons: set[str]) -> list[DeadLetter]:
    consumer = Consumer(
        consumer_config(bootstrap, group_id=f"{topics.prefix}dlq-reader", client_id="test-dlq")
    )
    consumer.subscribe([topics.dlq])
    decoder = Decoder(DeadLetter, max_bytes=64 * 1024 * 1024, check_pan=False)
    letters: list[DeadLetter] = []
    deadline = time.monotonic() + 90
    while not reasons <= {d.reason for d in letters} and time.monotonic() < deadline:
        for message in consumer.consume(100, 0.5):
            if message.error() is None:
                letter = decoder.decode(message.value())
                assert isinstance(letter, DeadLetter)
                letters.append(letter)
    consumer.close()
    return letters
