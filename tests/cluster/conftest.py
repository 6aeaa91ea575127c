"""The cluster tier: a real local Redis Cluster (3 primaries, 3 replicas) started from the
``redis-server`` binary for the session, and stopped after it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster

from services.stack.redis_cluster import LocalCluster, start_cluster
from tests.integration.conftest import (  # noqa: F401 - the scorer's session fixtures
    champion_state,
    small_world,
    trained_bundle,
)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture()
def cluster_client(redis_cluster: LocalCluster) -> RedisCluster:
    return RedisCluster(host="127.0.0.1", port=redis_cluster.ports[0])


@pytest.fixture()
def cluster_prefix() -> str:
    return f"test{uuid.uuid4().hex[:10]}"
