"""The benchmark's latency reader in append-time mode (real broker): it counts only the
records after its mark, computes append time minus produce time from each record, and
refuses an output topic that does not stamp append times."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest
from confluent_kafka import Producer

from loadtest.bench_setup import BenchError
from loadtest.echo import PRODUCED_AT_HEADER
from loadtest.latency import APPEND_TIME_CONFIG, OutputReader
from streams.kafka import ensure_topics, producer_config
from streams.topics import SCORED, Topics

pytestmark = pytest.mark.integration


def _produce_echoes(bootstrap: str, topic: str, produced_ms: list[int]) -> None:
    producer = Producer(producer_config(bootstrap, client_id="test-reader"))
    for i, stamp in enumerate(produced_ms):
        producer.produce(
            topic,
            f"payload-{i}".encode(),
            key=f"card{i % 5}".encode(),
            headers=[(PRODUCED_AT_HEADER, str(stamp).encode())],
        )
    assert producer.flush(30) == 0


def _reader(bootstrap: str, topics: Topics) -> OutputReader:
    return OutputReader(bootstrap, topics.scored, topics.partition_count(SCORED), "echo")


def test_append_time_reader_measures_append_minus_produce_after_its_mark(
    kafka_bootstrap: str,
) -> None:
    topics = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.")
    ensure_topics(kafka_bootstrap, topics, only=[SCORED.base], extra_config=APPEND_TIME_CONFIG)
    now_ms = int(time.time() * 1000)
    _produce_echoes(kafka_bootstrap, topics.scored, [now_ms] * 30)  # before the mark
    reader = _reader(kafka_bootstrap, topics)
    try:
        reader.mark()
        ages_ms = [1_000 + 10 * i for i in range(200)]
        before_ms = time.time() * 1000
        _produce_echoes(kafka_bootstrap, topics.scored, [int(before_ms) - a for a in ages_ms])
        after_ms = time.time() * 1000

        latencies, first, last = reader.collect(200, 30.0, idle_s=2.0)
    finally:
        reader.close()

    assert len(latencies) == 200
    # append time lies between the produce calls and their acknowledgement
    expected = np.sort(np.asarray(ages_ms, dtype=np.float64))
    assert np.all(np.sort(latencies) >= expected - 1)
    assert np.all(np.sort(latencies) <= expected + (after_ms - before_ms) + 1)
    assert before_ms / 1e3 - 0.001 <= first <= last <= after_ms / 1e3 + 0.001


def test_append_time_reader_refuses_a_topic_with_producer_timestamps(
    kafka_bootstrap: str, topics: Topics
) -> None:
    reader = _reader(kafka_bootstrap, topics)
    try:
        reader.mark()
        _produce_echoes(kafka_bootstrap, topics.scored, [int(time.time() * 1000)] * 5)
        with pytest.raises(BenchError, match="append times"):
            reader.collect(5, 30.0, idle_s=2.0)
    finally:
        reader.close()


def test_append_time_reader_reads_a_step_output_larger_than_one_fetch_response(
    kafka_bootstrap: str,
) -> None:
    """~110 MB over six partitions: the embedded broker answers a fetch with everything up
    to the log end, so reading all partitions at once exceeded librdkafka's 100 MB limit."""
    topics = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.")
    ensure_topics(kafka_bootstrap, topics, only=[SCORED.base], extra_config=APPEND_TIME_CONFIG)
    partitions = topics.partition_count(SCORED)
    count, payload = 84_000, b"d" * 1300
    reader = _reader(kafka_bootstrap, topics)
    try:
        reader.mark()
        producer = Producer(producer_config(kafka_bootstrap, client_id="test-reader-big"))
        stamp = str(int(time.time() * 1000)).encode()
        for i in range(count):
            producer.produce(
                topics.scored,
                payload,
                partition=i % partitions,
                headers=[(PRODUCED_AT_HEADER, stamp)],
            )
            if i % 10_000 == 0:
                producer.poll(0)
        assert producer.flush(60) == 0

        latencies, first, last = reader.collect(count, 60.0, idle_s=2.0)
    finally:
        reader.close()

    assert count * len(payload) > 100_000_000
    assert len(latencies) == count
    assert np.all(np.isfinite(latencies)) and np.all(latencies >= 0)
    assert first <= last
