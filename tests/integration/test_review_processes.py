"""The non-interactive review modes on the real broker + Redis: the chargeback feed labels
missed fraud once (offsets committed after the acks), ``fraudctl review --auto`` runs as a
process, serves ``fraud_labels_total`` on /metrics and stops cleanly on SIGTERM."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from services.review import service
from services.review.settings import ReviewSettings
from services.stack.process import free_port
from streams.events import Decision
from streams.kafka import producer_config
from streams.producer import AckedProducer
from streams.serde import encode
from streams.simulator.truth import GroundTruthStore
from streams.topics import Topics
from tests.integration.test_review_session import read_labels, send_cases
from tests.processes import ServiceProcess

pytestmark = pytest.mark.integration

T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
# transaction -> (decision, ground truth: 1 fraud / 0 legit / None unknown)
SCORED = {
    "tx0": ("approve", 1),
    "tx1": ("approve", 1),
    "tx2": ("approve", 0),
    "tx3": ("approve", None),
    "tx4": ("review", 1),
    "tx5": ("decline", 1),
    "tx6": ("approve", 0),
}


def send_decisions(bootstrap: str, topics: Topics) -> None:
    producer = AckedProducer(producer_config(bootstrap, client_id="test-scored"))
    for transaction_id, (outcome, _) in SCORED.items():
        decision = Decision(
            transaction_id=transaction_id,
            card_id=f"C{transaction_id}",
            terminal_id="T1",
            event_time=T0,
            amount=12.5,
            score=0.9 if outcome != "approve" else 0.05,
            decision=outcome,  # type: ignore[arg-type]
            model_version="v1",
            feature_set="fs",
            features=[0.0],
        )
        producer.produce(topics.scored, encode(decision), decision.card_id)
    producer.wait_acked()


def settings_for(
    kafka_bootstrap: str, topics: Topics, redis_url: str, redis_prefix: str
) -> ReviewSettings:
    return ReviewSettings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topics.prefix,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        metrics_port=0,
    )


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_chargebacks_label_missed_fraud_once_and_count_it(
    kafka_bootstrap: str,
    topics: Topics,
    redis_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
) -> None:
    truth = GroundTruthStore(redis_client, redis_prefix, ttl_s=600)
    truth.write_batch([(t, fraud, 1) for t, (_, fraud) in SCORED.items() if fraud is not None])
    send_decisions(kafka_bootstrap, topics)
    settings = settings_for(kafka_bootstrap, topics, redis_url, redis_prefix)
    before = counted("fraud_labels_total", source="chargeback")

    sent = service.run_chargebacks(settings, delay_s=0.5, idle_exit_s=2.0)
    again = service.run_chargebacks(settings, delay_s=0.5, idle_exit_s=2.0)

    labels = read_labels(kafka_bootstrap, topics)
    assert sorted(lb.transaction_id for lb in labels) == ["tx0", "tx1"]  # approved, truly fraud
    assert {(lb.label, lb.source, lb.analyst) for lb in labels} == {
        ("fraud", "chargeback", "chargeback")
    }
    assert (sent, again) == (2, 0)  # the second run starts after the committed batch
    assert counted("fraud_labels_total", source="chargeback") - before == 2


def scrape(port: int) -> dict[tuple[str, str], float]:
    """``{(sample name, label value): value}`` of the review metrics on a process's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, sample.labels.get("source") or sample.labels.get("verdict", "")): sample.value
        for family in text_string_to_metric_families(text)
        if family.name in ("fraud_labels", "fraud_review_cases_closed")
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(180)
def test_oracle_process_labels_serves_its_counts_and_stops_on_sigterm(
    tmp_path: Path,
    kafka_bootstrap: str,
    topics: Topics,
    redis_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
) -> None:
    send_cases(kafka_bootstrap, topics, 6)  # tx000..tx005 and one undecodable case
    truth = GroundTruthStore(redis_client, redis_prefix, ttl_s=600)
    truth.write_batch([(f"tx{i:03d}", int(i % 2 == 0), 1) for i in range(5)])  # tx005 unknown
    port = free_port()
    env = {
        "FRAUD_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "FRAUD_TOPIC_PREFIX": topics.prefix,
        "FRAUD_REDIS_URL": redis_url,
        "FRAUD_REDIS_PREFIX": redis_prefix,
        "FRAUD_METRICS_PORT": str(port),
    }
    oracle = ServiceProcess(["review", "--auto"], env, tmp_path / "oracle.log")
    expected = {
        ("fraud_labels_total", "oracle"): 5.0,
        ("fraud_review_cases_closed_total", "fraud"): 3.0,
        ("fraud_review_cases_closed_total", "legit"): 2.0,
        ("fraud_review_cases_closed_total", "skip"): 1.0,
        ("fraud_review_cases_closed_total", "dead_letter"): 1.0,
    }
    try:
        wait_for(lambda: "stage=start" in oracle.output(), 60, "oracle start")
        wait_for(lambda: scrape(port) == expected, 60, f"counts {expected}")
    finally:
        code = oracle.terminate()
    labels = {lb.transaction_id: lb.label for lb in read_labels(kafka_bootstrap, topics)}
    assert labels == {f"tx{i:03d}": ("fraud" if i % 2 == 0 else "legit") for i in range(5)}
    assert code == 0, oracle.output()[-2000:]
    assert "stage=stop mode=oracle" in oracle.output()
