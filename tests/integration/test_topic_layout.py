"""The topic layout on the real broker: topics created as settings lay them out, decisions
written to their transaction's partition number, and recovery reading only the
partitions a scorer was assigned."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import ConfigResource
from typer.testing import CliRunner

from services.scorer.recovery import recover
from services.scorer.service import build_scorer
from services.settings import CommonSettings
from streams.errors import TopicLayoutRefused
from streams.kafka import admin_client, describe_topics, ensure_topics, producer_config
from streams.serde import encode
from streams.topics import Topics
from tests.integration.conftest import SmallWorld
from tests.integration.scorer_helpers import (
    decode_decisions,
    read_all,
    scorer_env,
    scorer_settings,
)

pytestmark = pytest.mark.integration


def _prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


def test_topics_are_created_with_the_configured_partitions_and_min_insync(
    kafka_bootstrap: str,
) -> None:
    topics = CommonSettings(
        topic_prefix=_prefix(),
        topic_layout={"transactions": {"partitions": 4}, "default": {"min_insync_replicas": 1}},
    ).topics()
    assert set(ensure_topics(kafka_bootstrap, topics).values()) == {"created"}
    states = {s.name: s for s in describe_topics(kafka_bootstrap, topics)}
    assert states[topics.transactions].existing_partitions == 4
    assert states[topics.scored].existing_partitions == 4
    assert [s.differs for s in states.values()] == [""] * len(states)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topics.transactions)
    admin = admin_client(kafka_bootstrap)
    config = admin.describe_configs([resource])[resource].result(30)
    assert config["min.insync.replicas"].value == "1"


def test_more_replicas_than_brokers_is_refused_with_the_setting_named(
    kafka_bootstrap: str,
) -> None:
    topics = CommonSettings(
        topic_prefix=_prefix(), topic_layout={"transactions": {"replication_factor": 3}}
    ).topics()
    with pytest.raises(TopicLayoutRefused, match="FRAUD_TOPIC_LAYOUT"):
        ensure_topics(kafka_bootstrap, topics, only=["transactions"])


def test_fraudctl_topics_create_follows_the_layout_and_show_reports_differences(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.cli import app

    prefix = _prefix()
    monkeypatch.setenv("FRAUD_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("FRAUD_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("FRAUD_TOPIC_LAYOUT__TRANSACTIONS__PARTITIONS", "3")
    created = CliRunner().invoke(app, ["topics", "create", "--json"])
    assert created.exit_code == 0, created.output
    rows = {row["name"]: row for row in json.loads(created.output)}
    assert rows[f"{prefix}transactions"]["existing_partitions"] == 3
    assert rows[f"{prefix}transactions.scored"]["existing_partitions"] == 3
    assert {row["status"] for row in rows.values()} == {"created"}

    monkeypatch.setenv("FRAUD_TOPIC_LAYOUT__TRANSACTIONS__PARTITIONS", "5")
    shown = CliRunner().invoke(app, ["topics", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    rows = {row["name"]: row for row in json.loads(shown.output)}
    assert rows[f"{prefix}transactions"]["differs"] == "3 partitions, settings say 5"


def test_recovery_reads_only_the_assigned_partitions(kafka_bootstrap: str, topics: Topics) -> None:
    producer = Producer(producer_config(kafka_bootstrap, client_id="test-decisions"))
    for partition in (0, 1, 2):
        for i in range(5):
            body = {"transaction_id": f"p{partition}-{i}", "decision": "approve"}
            producer.produce(topics.scored, json.dumps(body).encode(), partition=partition)
    assert producer.flush(30) == 0

    found = recover(kafka_bootstrap, topics, tail=100, partitions={0, 2})
    assert found.complete
    assert found.decided == {f"p{p}-{i}" for p in (0, 2) for i in range(5)}
    every = recover(kafka_bootstrap, topics, tail=100)
    assert len(every.decided) == 15


def test_each_decision_lands_in_its_transactions_partition_number(
    kafka_bootstrap: str,
    redis_url: str,
    topics: Topics,
    redis_prefix: str,
    champion_state: Path,
    small_world: SmallWorld,
) -> None:
    """Transactions placed by hand (not by their key's hash) still find their decision in
    the same partition number of transactions.scored."""
    transactions = small_world.as_events(600)
    producer = Producer(producer_config(kafka_bootstrap, client_id="test-producer"))
    placed = {}
    for i, tx in enumerate(transactions):
        placed[tx.transaction_id] = (i * 7) % 6
        producer.produce(
            topics.transactions, encode(tx), key=tx.card_id, partition=placed[tx.transaction_id]
        )
    assert producer.flush(30) == 0

    env = scorer_env(kafka_bootstrap, redis_url, topics, redis_prefix, champion_state, "s0")
    build_scorer(scorer_settings(env)).run(max_idle_s=4.0)

    messages = read_all(kafka_bootstrap, topics.scored)
    decisions = decode_decisions(messages)
    assert len(decisions) == 600
    landed = {
        d.transaction_id: int(m.partition()) for d, m in zip(decisions, messages, strict=True)
    }
    assert landed == placed
