"""Acceptance (Locust): a headless load test against a real scorer process.

A ``fraudctl serve scorer`` subprocess on the real broker + Redis with a champion trained
through the real path (``champion_state``), then ``fraudctl loadtest`` (Locust headless,
a subprocess of it): every transaction Locust sent has an end-to-end latency sample in
Locust's CSV (none missing, none failed), that count is what the broker holds, and the
SLA exit code is honoured both ways.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from loadtest.feed import TransactionFeed
from streams.kafka import consumer_config
from streams.topics import TRANSACTIONS, Topics
from tests.integration.scorer_helpers import produce, scorer_env, wait_for_decisions
from tests.processes import FRAUDCTL, ROOT, ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

RATE = 200  # transactions per second, offered by 4 Locust users
DURATION_S = 30


@pytest.fixture()
def scorer(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    tmp_path: Path,
) -> Iterator[dict[str, str]]:
    """A running scorer that has decided one warm-up transaction (it owns its partitions)."""
    env = scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, champion_state, "lt0")
    process = ServiceProcess(["serve", "scorer", "--metrics-port", "0"], env, tmp_path / "log")
    try:
        produce(kafka_bootstrap, topics.transactions, [TransactionFeed(world="small").next()])
        decided = wait_for_decisions(kafka_bootstrap, topics.scored, 1, timeout_s=60)
        assert len(decided) == 1, process.output()
        yield env
    finally:
        process.terminate()


def _loadtest(env: dict[str, str], out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [*FRAUDCTL, "loadtest", "--world", "small", "--out-dir", str(out), *args]
    return subprocess.run(
        argv,
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _stats(out: Path) -> dict[str, dict[str, str]]:
    (path,) = out.glob("locust-*_stats.csv")
    with path.open() as handle:
        return {f"{row['Type']} {row['Name']}": row for row in csv.DictReader(handle)}


def _messages_on(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = Consumer(consumer_config(bootstrap, group_id="counter", client_id="counter"))
    total = 0
    for p in range(partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        total += high - low
    consumer.close()
    return total


def test_every_transaction_sent_gets_an_e2e_sample_and_the_sla_decides_the_exit_code(
    scorer: dict[str, str], kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    met = tmp_path / "met"
    run = _loadtest(
        scorer,
        met,
        *("--rate", str(RATE), "--duration", str(DURATION_S), "--users", "4"),
        *("--sla-p99-ms", "2000", "--sla-max-fail-ratio", "0"),
    )
    rows = _stats(met)
    e2e, acks = rows["kafka e2e decision"], rows["kafka produce ack"]
    sent = int(acks["Request Count"])
    on_broker = _messages_on(
        kafka_bootstrap, topics.transactions, topics.partition_count(TRANSACTIONS)
    )
    assert sent == on_broker - 1, run.stdout + run.stderr  # all but the warm-up are Locust's
    assert abs(sent - RATE * DURATION_S) <= 0.05 * RATE * DURATION_S
    assert int(e2e["Request Count"]) == sent  # one e2e sample per transaction sent
    assert int(e2e["Failure Count"]) == 0 == int(acks["Failure Count"])  # none missing
    assert 0 < float(e2e["50%"]) <= float(e2e["99%"]) <= float(e2e["Max Response Time"])
    verdict = json.loads(next(met.glob("locust-*_sla.json")).read_text())
    assert verdict["kafka"]["decided"] == sent and verdict["kafka"]["timed_out"] == 0
    assert "SLA PASS" in run.stdout and run.returncode == 0, run.stdout + run.stderr

    missed = tmp_path / "missed"
    impossible = _loadtest(
        scorer, missed, "--rate", "50", "--duration", "5", "--sla-p99-ms", "0.001"
    )
    assert impossible.returncode == 1, impossible.stdout + impossible.stderr
    assert "SLA FAIL" in impossible.stdout
    assert int(_stats(missed)["kafka e2e decision"]["Failure Count"]) == 0
