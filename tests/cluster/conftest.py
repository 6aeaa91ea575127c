"""The cluster tier: real local Redis Clusters (3 primaries, 3 replicas) started from the
``redis-server`` binary. Tests that only read and write share one cluster for the session;
a test that moves slots or fails a primary over gets a cluster of its own
(``own_cluster``), so what it leaves behind cannot reach another test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster

from services.stack.redis_cluster import LocalCluster, start_cluster
from tests.cluster.moves import client_of
from tests.integration.conftest import (  # noqa: F401 - the scorer's session fixtures
    champion_state,
    small_world,
    trained_bundle,
)


@pytest.fixture(scope="session")
def _shared_clusters() -> Iterator[list[LocalCluster]]:
    started: list[LocalCluster] = []
    try:
        yield started
    finally:
        for cluster in started:
            cluster.stop()


@pytest.fixture()
def redis_cluster(
    _shared_clusters: list[LocalCluster], tmp_path_factory: pytest.TempPathFactory
) -> LocalCluster:
    """The session's shared cluster; started again if a test left it unhealthy."""
    if not _shared_clusters or not _shared_clusters[-1].healthy():
        if _shared_clusters:
            _shared_clusters[-1].stop()
        _shared_clusters.append(start_cluster(tmp_path_factory.mktemp("redis-cluster")))
    return _shared_clusters[-1]


@pytest.fixture()
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture()
def cluster_client(redis_cluster: LocalCluster) -> RedisCluster:
    return client_of(redis_cluster)


@pytest.fixture()
def cluster_prefix() -> str:
    return f"test{uuid.uuid4().hex[:10]}"
