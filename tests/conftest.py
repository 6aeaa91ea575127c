"""Shared fixtures: the real broker and the real Redis, isolated per test.

* ``kafka_bootstrap`` (session): ``FRAUD_TEST_KAFKA_BOOTSTRAP`` when set (CI starts one
  broker for the whole run), else a noida-db broker started on a free port for the session.
* ``topics`` (function): a :class:`Topics` with a uuid prefix, every topic created.
* ``redis_url`` (session) / ``redis_client`` / ``redis_prefix`` (function): the real Redis
  (``FRAUD_TEST_REDIS_URL``, default the machine's 127.0.0.1:6379, else a redis-server
  started for the session); each test gets its own key prefix, deleted afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from services.stack.components import redis_answers, start_broker, start_redis, stop_broker
from services.stack.process import free_port, stop
from streams.kafka import ensure_topics
from streams.topics import Topics


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("FRAUD_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    data = tmp_path_factory.mktemp("kafka")
    process = start_broker(f"127.0.0.1:{free_port()}", data / "data", data / "broker.log")
    try:
        yield process.address
    finally:
        stop_broker(process)


@pytest.fixture()
def topics(kafka_bootstrap: str) -> Topics:
    deployment = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.")
    ensure_topics(kafka_bootstrap, deployment)
    return deployment


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("FRAUD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    if redis_answers(url):
        yield url
        return
    data: Path = tmp_path_factory.mktemp("redis")
    process = start_redis(data, data / "redis.log")
    try:
        yield process.address
    finally:
        stop(process)


@pytest.fixture()
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"test{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


@pytest.fixture()
def redis_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)
