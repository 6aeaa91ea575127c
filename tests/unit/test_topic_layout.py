"""The topic layout: partitions, replication factor and min.insync.replicas per topic from
settings, reaching the creation requests; a configured broker or Redis that does not
answer makes `stack up` fail instead of starting a local one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.settings import CommonSettings
from services.stack import stack
from services.stack.process import free_port
from streams.errors import ConfigError, StackError
from streams.events import Transaction
from streams.intake import DecodedBatch
from streams.kafka import TopicState, new_topic
from streams.topics import ALL_TOPICS, DLQ, MODEL_EVENTS, REVIEW, SCORED, TRANSACTIONS, Topics

pytestmark = pytest.mark.unit


def test_without_a_layout_every_topic_has_its_spec_partitions_and_one_replica() -> None:
    topics = CommonSettings().topics()
    for spec in ALL_TOPICS:
        assert topics.partition_count(spec) == spec.partitions
        assert topics.replication_factor(spec) == 1
        assert topics.min_insync_replicas(spec) is None
    request = new_topic(topics, TRANSACTIONS)
    assert "min.insync.replicas" not in request.config
    assert request.replication_factor == 1 and request.num_partitions == 6


def test_a_json_layout_sets_each_topic_and_the_default_replication(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "FRAUD_TOPIC_LAYOUT",
        '{"default": {"replication_factor": 3, "min_insync_replicas": 2},'
        ' "transactions": {"partitions": 48}, "model.events": {"min_insync_replicas": 3}}',
    )
    topics = CommonSettings().topics()
    assert topics.partition_count(TRANSACTIONS) == 48
    assert topics.partition_count(SCORED) == 48  # decisions follow their transactions
    assert topics.partition_count(REVIEW) == REVIEW.partitions
    assert {topics.replication_factor(spec) for spec in ALL_TOPICS} == {3}
    assert topics.min_insync_replicas(DLQ) == 2
    assert topics.min_insync_replicas(MODEL_EVENTS) == 3
    request = new_topic(topics, TRANSACTIONS)
    assert (request.num_partitions, request.replication_factor) == (48, 3)
    assert request.config["min.insync.replicas"] == "2"
    assert request.config["retention.ms"] == str(TRANSACTIONS.retention_ms)


def test_one_variable_per_value_with_dots_written_as_underscores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FRAUD_TOPIC_LAYOUT__TRANSACTIONS__PARTITIONS", "12")
    monkeypatch.setenv("FRAUD_TOPIC_LAYOUT__TRANSACTIONS_SCORED__PARTITIONS", "24")
    monkeypatch.setenv("FRAUD_TOPIC_LAYOUT__FRAUD_REVIEW__REPLICATION_FACTOR", "2")
    topics = CommonSettings().topics()
    assert topics.partition_count(TRANSACTIONS) == 12
    assert topics.partition_count(SCORED) == 24
    assert topics.replication_factor(REVIEW) == 2
    assert topics.replication_factor(TRANSACTIONS) == 1


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"transactions": {"partitions": 12}, "transactions.scored": {"partitions": 6}}, "fewer"),
        ({"transaction": {"partitions": 12}}, "no topic 'transaction'"),
        ({"default": {"partitions": 12}}, "replication only"),
        ({"default": {"replication_factor": 2, "min_insync_replicas": 3}}, "between 1 and"),
    ],
)
def test_a_layout_that_cannot_work_is_refused(layout: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message):
        CommonSettings(topic_layout=layout)


def test_a_typo_in_a_layout_field_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_TOPIC_LAYOUT", '{"transactions": {"partition": 12}}')
    with pytest.raises(ValueError, match="partition"):
        CommonSettings()


def test_existing_topics_that_differ_from_the_settings_say_how() -> None:
    state = TopicState("t.transactions", 12, 3, 2, existing_partitions=6, existing_replicas=1)
    assert state.differs == "6 partitions, settings say 12; 1 replicas, settings say 3"
    same = TopicState("t.transactions", 6, 1, None, existing_partitions=6, existing_replicas=1)
    assert same.differs == ""
    assert TopicState("x", 6, 1, None, None, 0).differs == "missing"


def test_a_decision_goes_to_the_partition_its_transaction_was_read_from() -> None:
    txs = [
        Transaction(
            transaction_id=f"tx{i}",
            event_time=datetime(2026, 1, 1, tzinfo=UTC),
            card_id="C1",
            customer_id="U1",
            terminal_id="T1",
            amount=10.0,
        )
        for i in range(3)
    ]
    batch = DecodedBatch(transactions=txs, partitions=[4, 0, 2])
    assert batch.partition_of() == {"tx0": 4, "tx1": 0, "tx2": 2}
    assert DecodedBatch(transactions=txs).partition_of() == {}


def test_stack_up_fails_when_the_configured_broker_does_not_answer(tmp_path: Path) -> None:
    settings = CommonSettings(
        kafka_bootstrap=f"127.0.0.1:{free_port()}", state_dir=tmp_path, stack_wait_s=0.5
    )
    with pytest.raises(StackError, match="configured broker FRAUD_KAFKA_BOOTSTRAP"):
        stack.up(settings)
    assert not (tmp_path / "kafka").exists()  # nothing started in its place


def test_stack_up_exits_non_zero_when_the_configured_redis_does_not_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.cli import app

    monkeypatch.setattr(stack, "broker_reachable", lambda *_a, **_k: True)
    monkeypatch.setattr(stack, "ensure_topics", lambda *_a, **_k: {})
    monkeypatch.setenv("FRAUD_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("FRAUD_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("FRAUD_STACK_WAIT_S", "0.5")
    result = CliRunner().invoke(app, ["stack", "up"])
    assert result.exit_code == 1
    assert "configured Redis FRAUD_REDIS_URL" in result.output
    assert not (tmp_path / "redis").exists()


def test_stack_up_start_missing_starts_what_a_configured_address_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI and tests name a free port for the broker and ask `stack up --start-missing` to
    start the embedded one there."""
    from services.cli import app

    asked: list[bool | None] = []

    def fake_up(settings: CommonSettings, start_missing: bool | None = None) -> object:
        asked.append(start_missing)
        raise StackError("stopped here")

    monkeypatch.setattr(stack, "up", fake_up)
    monkeypatch.setenv("FRAUD_STATE_DIR", str(tmp_path))
    assert CliRunner().invoke(app, ["stack", "up", "--start-missing"]).exit_code == 1
    assert CliRunner().invoke(app, ["stack", "up"]).exit_code == 1
    assert asked == [True, None]


def test_topics_of_a_deployment_share_one_layout() -> None:
    topics = Topics(prefix="p.", partitions={"transactions": 3})
    assert next(name for name, _ in topics.all()) == "p.transactions"
    assert topics.problems() == []


def test_a_redis_cluster_url_selects_the_cluster_paths() -> None:
    assert CommonSettings(redis_url="redis-cluster://10.0.0.1:7000").redis_cluster
    assert CommonSettings(redis_url="rediss-cluster://10.0.0.1:7000").redis_cluster
    assert not CommonSettings(redis_url="redis://10.0.0.1:6379/0").redis_cluster


def test_the_feedback_apps_own_topics_take_the_layouts_replication(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from services.feedback.settings import FeedbackSettings
    from streams.feedback.app import build_app

    monkeypatch.setenv("FRAUD_TOPIC_LAYOUT", '{"default": {"replication_factor": 3}}')
    monkeypatch.setenv("FRAUD_STATE_DIR", str(tmp_path))

    class Idle:  # nothing flows: only the app's configuration is looked at
        def stop(self) -> None: ...

    app, _ = build_app(FeedbackSettings().app_config(), sink=Idle())  # type: ignore[arg-type]
    assert app.conf.topic_replication_factor == 3
