"""The echo service (the benchmark's latency floor) copies every record, key and produce
timestamp, and commits what it copied (real broker)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

from loadtest.echo import PRODUCED_AT_HEADER, run_echo
from streams.kafka import producer_config
from streams.topics import TRANSACTIONS, Topics
from tests.integration.scorer_helpers import committed_equals_end, read_all

pytestmark = pytest.mark.integration


def test_echo_copies_records_with_their_key_and_timestamp(
    kafka_bootstrap: str, topics: Topics
) -> None:
    producer = Producer(producer_config(kafka_bootstrap, client_id="test-echo"))
    sent = {}
    start_ms = int(time.time() * 1000)  # recent: older records fall to retention
    for i in range(120):
        key, value, stamp = f"card{i % 7}".encode(), f"payload-{i}".encode(), start_ms - 1000 + i
        producer.produce(topics.transactions, value, key=key, timestamp=stamp)
        sent[value] = (key, stamp)
    assert producer.flush(30) == 0
    group = f"{topics.prefix}echo"

    copied = run_echo(kafka_bootstrap, topics.transactions, topics.scored, group, max_idle_s=3.0)

    assert copied == 120
    copies = read_all(kafka_bootstrap, topics.scored)
    echoed = {m.value(): (m.key(), m.timestamp()[1]) for m in copies}
    assert echoed == sent
    in_header = {m.value(): int(dict(m.headers() or ())[PRODUCED_AT_HEADER]) for m in copies}
    assert in_header == {value: stamp for value, (_, stamp) in sent.items()}
    assert committed_equals_end(
        kafka_bootstrap, group, topics.transactions, topics.partition_count(TRANSACTIONS)
    )
