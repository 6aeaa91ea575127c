"""A consumer's fetch is bounded below librdkafka's 50 MB default, yet every record a
topic admits can still be fetched (the real broker's side: tests/integration/
test_next_batch.py::test_a_record_larger_than_the_fetch_bound_still_arrives)."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer

from services.settings import CommonSettings
from streams.kafka import FETCH_MAX_BYTES, consumer_config
from streams.topics import ALL_TOPICS

pytestmark = pytest.mark.unit


def test_one_fetch_is_bounded_like_the_prefetch_queue_and_records_still_fit() -> None:
    config = consumer_config("127.0.0.1:1", group_id="g", client_id="c")
    assert config["fetch.max.bytes"] == FETCH_MAX_BYTES
    assert config["queued.max.messages.kbytes"] * 1024 == FETCH_MAX_BYTES
    largest = max(spec.max_message_bytes for spec in ALL_TOPICS)
    assert FETCH_MAX_BYTES < largest <= config["max.partition.fetch.bytes"]
    Consumer(config).close()  # librdkafka accepts the combination


def test_an_operator_sets_another_fetch_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_KAFKA_CONFIG", '{"fetch.max.bytes": "1048576"}')
    config = consumer_config(CommonSettings().kafka(), group_id="g", client_id="c")
    assert config["fetch.max.bytes"] == "1048576"
