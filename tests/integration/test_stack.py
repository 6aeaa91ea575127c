"""`fraudctl stack up | status | down` on the real broker binary and the real Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.settings import CommonSettings
from services.stack import stack
from services.stack.process import free_port
from streams.kafka import broker_reachable
from streams.topics import ALL_TOPICS, Topics

pytestmark = pytest.mark.integration


def test_up_twice_is_harmless_and_down_stops_only_what_up_started(
    tmp_path: Path, redis_url: str
) -> None:
    settings = CommonSettings(
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        redis_url=redis_url,
        state_dir=tmp_path / "state",
        topic_prefix="stacktest.",
    )
    first = stack.up(settings, start_missing=True)  # an embedded broker on a port of its own
    try:
        assert first.kafka.ready and first.kafka.started_here and first.kafka.pid
        assert first.redis.ready and not first.redis.started_here  # the machine's Redis: used
        assert set(first.topics.values()) == {"created"} and len(first.topics) == len(ALL_TOPICS)

        second = stack.up(settings, start_missing=True)
        assert second.kafka.pid == first.kafka.pid  # nothing new started
        assert set(second.topics.values()) == {"exists"}

        status = stack.status(settings)
        assert status.kafka.ready and status.redis.ready and status.kafka.pid == first.kafka.pid
    finally:
        stopped = stack.down(settings)
    assert stopped == ["kafka"]
    assert not broker_reachable(settings.kafka_bootstrap, timeout_s=1.0)
    assert stack.down(settings) == []  # nothing left that up started


def test_delete_topics_removes_only_existing_named_topics(
    kafka_bootstrap: str, topics: Topics
) -> None:
    from streams.kafka import admin_client, delete_topics, ensure_topics

    ensure_topics(kafka_bootstrap, topics)
    names = [name for name, _ in topics.all()]
    deleted = delete_topics(kafka_bootstrap, [*names, f"{topics.prefix}never-created"])
    assert sorted(deleted) == sorted(names)
    remaining = set(admin_client(kafka_bootstrap).list_topics(timeout=10).topics)
    assert not remaining & set(names)
    assert delete_topics(kafka_bootstrap, names) == []


def test_the_stack_redis_keeps_its_data_across_a_crash(tmp_path: Path) -> None:
    """AOF fsynced every second: a Redis killed with SIGKILL (no shutdown save) comes back
    with what it held a second before, on the same port and data folder."""
    import os
    import signal
    import time

    import redis

    from services.stack.components import start_redis
    from services.stack.process import stop

    data, log = tmp_path / "redis", tmp_path / "redis.log"
    first = start_redis(data, log)
    port = int(first.address.rsplit(":", 1)[1].split("/")[0])
    try:
        client = redis.Redis.from_url(first.address)
        client.set("fraud:epoch", "e1")
        client.set("fraud:card:{c1}", b"\x01" * 64)
        time.sleep(1.5)  # one appendfsync period
        os.killpg(first.pid, signal.SIGKILL)
    finally:
        stop(first)
    second = start_redis(data, log, port=port)
    try:
        client = redis.Redis.from_url(second.address)
        assert second.address == first.address
        assert client.get("fraud:epoch") == b"e1"
        assert client.get("fraud:card:{c1}") == b"\x01" * 64
    finally:
        stop(second)


def test_a_stopped_embedded_broker_keeps_every_record_it_acknowledged(tmp_path: Path) -> None:
    """Stopped while a producer writes as fast as it can, the broker comes back with every
    record it acknowledged (a signal alone lost up to 100,000 of 150,000)."""
    import threading
    import time

    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import NewTopic

    from services.stack.components import start_broker, stop_broker
    from streams.kafka import admin_client

    bootstrap = f"127.0.0.1:{free_port()}"
    acked = [0]
    writing = threading.Event()
    writing.set()

    def report(err: object, _msg: object) -> None:
        if err is None:
            acked[0] += 1

    def write() -> None:
        producer = Producer(
            {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1, "log_level": 0}
        )
        i = 0
        while writing.is_set():
            try:
                producer.produce("acked", b"r%d" % i, on_delivery=report)
                i += 1
            except BufferError:
                producer.poll(0.01)
            if i % 100 == 0:
                producer.poll(0)
        producer.purge()
        producer.poll(0)

    broker = start_broker(bootstrap, tmp_path / "kafka", tmp_path / "kafka.log")
    try:  # whichever broker runs is stopped, whatever fails
        admin = admin_client(bootstrap)
        for attempt in range(5):  # a just-started broker may not have its controller yet
            try:
                admin.create_topics([NewTopic("acked", 1, 1)])["acked"].result(30)
                break
            except KafkaException:
                if attempt == 4:
                    raise
                time.sleep(2.0)
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        try:
            deadline = time.monotonic() + 120
            while acked[0] < 50_000 and time.monotonic() < deadline:
                writer.join(0.05)
            stop_broker(broker)
            acknowledged = acked[0]
        finally:
            writing.clear()
            writer.join(10)
        broker = start_broker(bootstrap, tmp_path / "kafka", tmp_path / "kafka.log")
        reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "check"})
        _, high = reader.get_watermark_offsets(TopicPartition("acked", 0), timeout=10)
        reader.close()
    finally:
        stop_broker(broker)
    assert acknowledged >= 50_000
    assert high >= acknowledged
